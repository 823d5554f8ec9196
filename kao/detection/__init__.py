"""Face detection: `FaceDetector` (YuNet with whole-image and detail passes) and `detect`."""

from __future__ import annotations

import threading
from typing import Any

from kao.detection.detector import MODELS, FaceDetector, analysis_detector
from kao.face import Face
from kao.image import ImageInput, load_image

__all__ = ["MODELS", "FaceDetector", "analysis_detector", "detect"]

_detectors: dict[tuple[tuple[str, Any], ...], FaceDetector] = {}
_lock = threading.Lock()


def detect(image: ImageInput, **options: Any) -> list[Face]:
    """Faces in `image`, best score first, each with its `quality` (`kao.quality.face_quality`).

    `image` is a path, encoded bytes, a numpy array (H x W grey, or H x W x 3 **RGB**, or
    H x W x 4 RGBA; uint8) or a PIL image. `options` are `FaceDetector`'s (min_score, min_size,
    ...); one detector per set of options is created on first use and reused."""
    key = tuple(sorted(options.items()))
    with _lock:
        detector = _detectors.get(key)
        if detector is None:
            detector = _detectors[key] = FaceDetector(**options)
    from kao.quality import rated

    rgb = load_image(image, copy=False)
    return rated(rgb, detector.detect(rgb))
