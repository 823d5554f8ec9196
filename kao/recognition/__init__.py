"""Face recognition: embeddings, verification and grouping."""

from __future__ import annotations

from kao.recognition.embedder import FaceEmbedder, NoFaceError, default_embedder, embed
from kao.recognition.verify import Verification, verify

__all__ = ["FaceEmbedder", "NoFaceError", "Verification", "default_embedder", "embed", "verify"]
