"""Model files: the registry of known models and the store that finds and verifies them."""

from __future__ import annotations

from kao.models.registry import REGISTRY, ModelFile, ModelSpec, get
from kao.models.store import model_path, search_dirs

__all__ = ["REGISTRY", "ModelFile", "ModelSpec", "get", "model_path", "search_dirs"]
