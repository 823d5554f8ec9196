"""Other tools measured beside kao in `kao eval` and `kao bench`.

face_recognition 1.3 (dlib's HOG detector) is installed by `scripts/setup.sh --baselines`:
it needs dlib, which `pip install face_recognition` would compile from source, so the setup
installs the prebuilt `dlib-bin` and face_recognition without its dependencies."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import TYPE_CHECKING

import numpy as np

from kao.errors import KaoError

if TYPE_CHECKING:
    from kao.detection import FaceDetector

Detect = Callable[[np.ndarray], np.ndarray]
"""RGB image (H, W, 3) uint8 -> detections (N, 5): x1, y1, x2, y2, score."""


def import_face_recognition() -> ModuleType:
    """The face_recognition 1.3 module, imported without its side effect on Pillow: it sets
    `PIL.ImageFile.LOAD_TRUNCATED_IMAGES`, after which every image read in the process (kao's
    too) would accept a truncated file; the setting is put back. KaoError when it is not
    installed."""
    from PIL import ImageFile

    before = ImageFile.LOAD_TRUNCATED_IMAGES
    try:
        import face_recognition
    except ImportError as error:
        raise KaoError(
            "face_recognition is not installed; run `bash scripts/setup.sh --baselines` "
            f"(it installs dlib-bin and face_recognition 1.3): {error}"
        ) from error
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = before
    return face_recognition


def face_recognition_hog(upsample: int = 1) -> Detect:
    """`face_recognition.face_locations(image, upsample, model="hog")` as a detector. It returns
    no scores, so every face scores 1.0 (its AP is a single precision/recall point)."""
    face_recognition = import_face_recognition()

    def detect(rgb: np.ndarray) -> np.ndarray:
        found = face_recognition.face_locations(rgb, upsample, model="hog")
        rows = [(left, top, right, bottom, 1.0) for top, right, bottom, left in found]
        return np.asarray(rows, np.float64).reshape(-1, 5)

    return detect


def kao_detector(**options: object) -> Detect:
    """kao's `FaceDetector` with `options`, as a detector returning (N, 5) arrays."""
    from kao.detection import FaceDetector

    return as_detect(FaceDetector(**options))  # type: ignore[arg-type]


def as_detect(detector: FaceDetector) -> Detect:
    """`detector` as a function of an RGB image returning (N, 5) arrays."""

    def detect(rgb: np.ndarray) -> np.ndarray:
        faces = detector.detect(rgb)
        return np.asarray([[*f.box, f.score] for f in faces], np.float64).reshape(-1, 5)

    return detect
