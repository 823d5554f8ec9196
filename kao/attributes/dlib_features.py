"""What the age, gender and mask models read from a face: dlib-aligned chips and the dlib face
descriptor, computed once per crop and shared between the models.

Every attribute crop is framed the same way (`attribute_crop`): a `CROP_SIZE` square, upright by
the eyes, around the box dlib's shape predictor expects (the detector's box moved to dlib's
framing), `CROP_SCALE` times its side; so the predictor's box in any crop is its central
1 / `CROP_SCALE` square. A ready crop (`cropped=True`) is read with the same convention."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace

import cv2
import numpy as np

from kao.align import face_crop
from kao.errors import KaoError, ModelError
from kao.face import Face
from kao.models import model_path
from kao.recognition.dlib_onnx import DlibOnnxNetwork
from kao.recognition.dlib_resnet import CHIP_PADDING, CHIP_SIZE, DLIB_BOX

CROP_SIZE = 160
"""Side of an attribute crop, pixels."""
CROP_SCALE = 1.6
"""Side of the crop over the side of dlib's face box inside it."""
CACHE_SIZE = 64
"""Crops whose features are remembered (the models of one face read the same crop)."""


@dataclass(frozen=True)
class FaceFeatures:
    """The features of N crops.

    points: (N, 5, 2) float32 dlib's 5 alignment points, crop pixels.
    embeddings: (N, 128) float32 dlib face descriptors of one view, L2-normalised.
    crops: the crops (CROP_SIZE x CROP_SIZE x 3 uint8 RGB), to cut more chips from."""

    points: np.ndarray
    embeddings: np.ndarray
    crops: tuple[np.ndarray, ...]


def attribute_crop(rgb: np.ndarray, face: Face) -> np.ndarray:
    """The CROP_SIZE x CROP_SIZE x 3 uint8 crop of `face` (found in `rgb`) the attribute
    models read."""
    x1, y1, x2, y2 = (float(v) for v in face.box)
    width, height = x2 - x1, y2 - y1
    box = np.array(
        [
            x1 - DLIB_BOX[0] * width,
            y1 + DLIB_BOX[1] * height,
            x2 + DLIB_BOX[2] * width,
            y2 - DLIB_BOX[3] * height,
        ],
        np.float32,
    )
    return face_crop(rgb, replace(face, box=box), CROP_SIZE, scale=CROP_SCALE)


def _as_crop(crop: np.ndarray) -> np.ndarray:
    """`crop` (H x W x 3 uint8) resized to CROP_SIZE square; KaoError if it is no RGB image."""
    crop = np.asarray(crop)
    if crop.dtype != np.uint8 or crop.ndim != 3 or crop.shape[2] != 3 or min(crop.shape[:2]) < 8:
        raise KaoError(f"a face crop must be H x W x 3 uint8 RGB, got {crop.shape} {crop.dtype}")
    if crop.shape[:2] != (CROP_SIZE, CROP_SIZE):
        crop = cv2.resize(crop, (CROP_SIZE, CROP_SIZE), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(crop)


class FeatureExtractor:
    """dlib's 5-point shape predictor and face descriptor on attribute crops (thread-safe).

    Args:
        threads: ONNX Runtime threads of the descriptor network (default 1: faster on chips)."""

    def __init__(self, threads: int | None = None) -> None:
        try:
            import dlib
        except ImportError as error:
            raise ModelError(
                f"the attribute models need dlib (pip install dlib-bin): {error}"
            ) from error
        self._dlib = dlib
        self._predictor = dlib.shape_predictor(
            str(model_path("dlib_face_recognition", "shape_predictor_5_face_landmarks.dat"))
        )
        self._network = DlibOnnxNetwork(threads or 1)
        margin = CROP_SIZE * (1 - 1 / CROP_SCALE) / 2
        self._rectangle = dlib.rectangle(
            round(margin), round(margin), round(CROP_SIZE - margin), round(CROP_SIZE - margin)
        )
        self._lock = threading.Lock()
        self._cache: OrderedDict[bytes, tuple[np.ndarray, np.ndarray]] = OrderedDict()

    def features(self, crops: Sequence[np.ndarray]) -> FaceFeatures:
        """Features of `crops` (each H x W x 3 uint8 RGB framed as `attribute_crop` frames)."""
        ready = tuple(_as_crop(crop) for crop in crops)
        keys = [hashlib.blake2b(crop.tobytes(), digest_size=16).digest() for crop in ready]
        with self._lock:
            known = {key: self._cache[key] for key in keys if key in self._cache}
            missing = [i for i, key in enumerate(keys) if key not in known]
            shapes = [self._predictor(ready[i], self._rectangle) for i in missing]
        if missing:
            chips = np.stack(
                [
                    self._dlib.get_face_chip(ready[i], shape, size=CHIP_SIZE, padding=CHIP_PADDING)
                    for i, shape in zip(missing, shapes, strict=True)
                ]
            )
            vectors = self._network.descriptors(chips)
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
            with self._lock:
                for i, shape, vector in zip(missing, shapes, vectors, strict=True):
                    points = np.array([[p.x, p.y] for p in shape.parts()], np.float32)
                    known[keys[i]] = self._cache[keys[i]] = (points, vector)
                while len(self._cache) > CACHE_SIZE:
                    self._cache.popitem(last=False)
        points = np.stack([known[key][0] for key in keys]) if keys else np.zeros((0, 5, 2))
        vectors = np.stack([known[key][1] for key in keys]) if keys else np.zeros((0, 128))
        return FaceFeatures(points.astype(np.float32), vectors.astype(np.float32), ready)

    def chips(self, features: FaceFeatures, size: int, padding: float) -> np.ndarray:
        """dlib face chips of `features`' crops, aligned on their 5 points: (N, size, size, 3)
        uint8, as `dlib.get_face_chip(image, shape, size, padding)` cuts them."""
        out = []
        for crop, points in zip(features.crops, features.points, strict=True):
            parts = [self._dlib.point(round(float(x)), round(float(y))) for x, y in points]
            shape = self._dlib.full_object_detection(self._rectangle, parts)
            out.append(self._dlib.get_face_chip(crop, shape, size=size, padding=padding))
        return np.stack(out) if out else np.zeros((0, size, size, 3), np.uint8)


_shared: FeatureExtractor | None = None
_shared_lock = threading.Lock()


def shared_extractor() -> FeatureExtractor:
    """The one `FeatureExtractor` the attribute models share (so a crop is read once)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = FeatureExtractor()
        return _shared
