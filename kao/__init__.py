"""kao (顔): face analysis on a CPU.

Example: ``faces = kao.detect("group.jpg")`` gives a list of `kao.Face`, best score first,
each with ``box`` [x1, y1, x2, y2], ``score`` and 5 ``keypoints`` in original-image pixels;
``kao.analyze("group.jpg")`` adds landmarks, pose, gaze, age, gender, emotion and mask.

Names are imported on first use (``import kao`` loads no model runtime), so ``kao --help``
and ``import kao`` stay fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Public name -> the module that defines it.
_EXPORTS: dict[str, str] = {
    "EMOTIONS": "kao.face",
    "KEYPOINT_NAMES": "kao.face",
    "Face": "kao.face",
    "Label": "kao.face",
    "Pose": "kao.face",
    "age_face": "kao.aging",
    "aligned_faces": "kao.align",
    "FaceAnalyzer": "kao.analysis",
    "analyze": "kao.analysis",
    "count_people": "kao.crowd",
    "CrowdCount": "kao.crowd",
    "FaceDetector": "kao.detection",
    "detect": "kao.detection",
    "ImageError": "kao.errors",
    "KaoError": "kao.errors",
    "ModelError": "kao.errors",
    "FaceDatabase": "kao.gallery.database",
    "Identified": "kao.gallery.database",
    "load_image": "kao.image",
    "FaceEmbedder": "kao.recognition",
    "NoFaceError": "kao.recognition",
    "embed": "kao.recognition",
    "verify": "kao.recognition",
    "Grouping": "kao.recognition.cluster",
    "group": "kao.recognition.cluster",
}

__all__ = [
    "EMOTIONS",
    "KEYPOINT_NAMES",
    "CrowdCount",
    "Face",
    "FaceAnalyzer",
    "FaceDatabase",
    "FaceDetector",
    "FaceEmbedder",
    "Grouping",
    "Identified",
    "ImageError",
    "KaoError",
    "Label",
    "ModelError",
    "NoFaceError",
    "Pose",
    "age_face",
    "aligned_faces",
    "analyze",
    "count_people",
    "detect",
    "embed",
    "group",
    "load_image",
    "verify",
]

if TYPE_CHECKING:
    from kao.aging import age_face
    from kao.align import aligned_faces
    from kao.analysis import FaceAnalyzer, analyze
    from kao.crowd import CrowdCount, count_people
    from kao.detection import FaceDetector, detect
    from kao.errors import ImageError, KaoError, ModelError
    from kao.face import EMOTIONS, KEYPOINT_NAMES, Face, Label, Pose
    from kao.gallery.database import FaceDatabase, Identified
    from kao.image import load_image
    from kao.recognition import FaceEmbedder, NoFaceError, embed, verify
    from kao.recognition.cluster import Grouping, group


def __getattr__(name: str) -> Any:
    """Imports a public name's module on first use and caches the name in this module."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'kao' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
