"""`FaceEmbedder`: detection, alignment and embedding in one object."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from kao.detection import FaceDetector
from kao.errors import KaoError
from kao.face import Face
from kao.image import ImageInput, describe, load_image
from kao.recognition import edgeface
from kao.recognition.dlib_resnet import DIMENSION as DLIB_DIMENSION
from kao.recognition.dlib_resnet import MODEL_NAME as DLIB_MODEL
from kao.recognition.dlib_resnet import DlibEmbedder
from kao.recognition.edgeface import EdgeFaceEmbedder

RECOGNITION_MODELS = (*(edgeface.model_name(size) for size in edgeface.SIZES[::-1]), DLIB_MODEL)
"""The embedding models `FaceEmbedder` runs, by the name stored with their embeddings, the
default first: EdgeFace X-small and XX-small (512-d) and dlib's ResNet (128-d)."""
DEFAULT_MODEL = edgeface.model_name("xs")
"""EdgeFace XS: on LFW the most accurate of the three (0.9950 on the 6,000 pairs; 0.986 of
genuine pairs accepted at a false-accept rate of 1e-4, against dlib's 0.816) and 4 times faster
than dlib's ResNet on one core (6.6 against 27.1 ms a face; docs/BENCHMARKS.md)."""


def model_table() -> list[dict[str, Any]]:
    """Each of `RECOGNITION_MODELS` as {"name", "dimension", "threshold" (the calibrated
    Euclidean distance), "default" (bool), "weights" (where its network comes from)}, without
    loading any model: what `kao models list` and `GET /v1/models` show."""
    from kao.recognition.verify import calibration

    weights = {
        DLIB_MODEL: "model dlib_face_recognition (converted to ONNX at first use)",
        **{
            edgeface.model_name(size): f"bundled: kao/recognition/weights/edgeface_{size}.onnx"
            for size in edgeface.SIZES
        },
    }
    return [
        {
            "name": name,
            "dimension": DLIB_DIMENSION if name == DLIB_MODEL else edgeface.DIMENSION,
            "threshold": calibration(name).threshold,
            "default": name == DEFAULT_MODEL,
            "weights": weights[name],
        }
        for name in RECOGNITION_MODELS
    ]


class NoFaceError(KaoError):
    """An image in which a face was needed has none."""


def check_model(name: str) -> str:
    """`name` when it is one of `RECOGNITION_MODELS`, else KaoError listing them."""
    if name not in RECOGNITION_MODELS:
        raise KaoError(
            f"unknown recognition model {name!r}; choose one of {', '.join(RECOGNITION_MODELS)}"
        )
    return name


def recognition_model(name: str = DEFAULT_MODEL) -> DlibEmbedder | EdgeFaceEmbedder:
    """The embedding network `name` (one of `RECOGNITION_MODELS`) with its own alignment."""
    if check_model(name) == DLIB_MODEL:
        return DlibEmbedder()
    return EdgeFaceEmbedder(next(s for s in edgeface.SIZES if edgeface.model_name(s) == name))


class FaceEmbedder:
    """Finds faces and gives each an embedding (L2-normalised float32, `dimension` values).

    Args:
        detector: the `FaceDetector` to use (default: kao's default detector).
        model: the embedding model, one of `RECOGNITION_MODELS` (default: `DEFAULT_MODEL`,
            EdgeFace XS).
    """

    def __init__(self, detector: FaceDetector | None = None, model: str = DEFAULT_MODEL) -> None:
        self.model = recognition_model(model)
        self.detector = detector or FaceDetector()

    @property
    def model_name(self) -> str:
        """Name stored beside every embedding; embeddings of different models never mix."""
        return self.model.name

    @property
    def dimension(self) -> int:
        """Length of each embedding: 512 for EdgeFace, 128 for dlib's ResNet."""
        return self.model.dimension

    def embed(self, image: ImageInput) -> list[Face]:
        """Every face of `image`, best detection score first, each with its `embedding`."""
        rgb = load_image(image, copy=False)
        return self.embed_faces(rgb, self.detector.detect(rgb))

    def embed_faces(self, rgb: np.ndarray, faces: Sequence[Face]) -> list[Face]:
        """Copies of `faces` (found in `rgb`, H x W x 3 uint8) with their embeddings set."""
        vectors = self.model.embed(rgb, faces)
        return [
            replace(face, embedding=vector) for face, vector in zip(faces, vectors, strict=True)
        ]

    def embed_one(self, image: ImageInput, index: int | None = None) -> tuple[Face, int, int]:
        """The embedded face at 0-based position `index` of `image`'s detections (face number
        `index` + 1), or its largest face when `index` is None -> (face, index used, faces
        found).

        Raises NoFaceError when the image has no face, KaoError when `index` is out of range
        (the message numbers faces from 1, as people see them)."""
        rgb = load_image(image, copy=False)
        faces = self.detector.detect(rgb)
        if not faces:
            raise NoFaceError(f"{describe(image)}: no face found")
        if index is None:
            index = max(range(len(faces)), key=lambda i: faces[i].area)
        elif not 0 <= index < len(faces):
            raise KaoError(
                f"{describe(image)}: face {index + 1} asked for, but {len(faces)} found "
                f"(numbered 1 to {len(faces)})"
            )
        (embedded,) = self.embed_faces(rgb, [faces[index]])
        return embedded, index, len(faces)


_default: FaceEmbedder | None = None
_default_lock = threading.Lock()


def default_embedder() -> FaceEmbedder:
    """The shared `FaceEmbedder` with default settings, created on first use."""
    global _default
    with _default_lock:
        if _default is None:
            _default = FaceEmbedder()
        return _default


def embed(image: ImageInput) -> list[Face]:
    """Every face of `image` (path, bytes, RGB array or PIL image), best detection score
    first, each with its `embedding`: (512,) float32, L2-normalised (`DEFAULT_MODEL`)."""
    return default_embedder().embed(image)
