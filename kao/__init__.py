"""kao (顔): face analysis on a CPU.

Example: ``faces = kao.detect("group.jpg")`` gives a list of `kao.Face`, best score first,
each with ``box`` [x1, y1, x2, y2], ``score`` and 5 ``keypoints`` in original-image pixels;
``kao.analyze("group.jpg")`` adds landmarks, pose, gaze, age, gender, emotion and mask.
"""

from __future__ import annotations

from kao.analysis import FaceAnalyzer, analyze
from kao.detection import FaceDetector, detect
from kao.errors import ImageError, KaoError, ModelError
from kao.face import EMOTIONS, KEYPOINT_NAMES, Face, Label, Pose
from kao.image import load_image
from kao.recognition import FaceEmbedder, NoFaceError, embed, verify

__version__ = "0.1.0"

__all__ = [
    "EMOTIONS",
    "KEYPOINT_NAMES",
    "Face",
    "FaceAnalyzer",
    "FaceDetector",
    "FaceEmbedder",
    "ImageError",
    "KaoError",
    "Label",
    "ModelError",
    "NoFaceError",
    "Pose",
    "analyze",
    "detect",
    "embed",
    "load_image",
    "verify",
]
