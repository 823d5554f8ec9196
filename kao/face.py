"""The `Face` record that travels through kao's stages and is enriched by each one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

KEYPOINT_NAMES = ("right_eye", "left_eye", "nose_tip", "right_mouth_corner", "left_mouth_corner")
"""Order of the 5 keypoints. Right/left are the subject's: the right eye is on the image's left."""
EMOTIONS = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprised")
"""The 7 emotion classes, in the fixed order kao prints and stores them."""


@dataclass(frozen=True)
class Label:
    """A class decision: `label` (e.g. "female", "mask") and its probability `score` in [0, 1]."""

    label: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "score": round(float(self.score), 4)}


@dataclass(frozen=True)
class Pose:
    """Head pose in degrees: `yaw` (positive: the face turns to the image's right, i.e. the
    subject's left), `pitch` (positive: looks up), `roll` (positive: the head tilts clockwise
    in the image)."""

    yaw: float
    pitch: float
    roll: float

    def to_dict(self) -> dict[str, float]:
        return {
            "yaw": round(self.yaw, 2),
            "pitch": round(self.pitch, 2),
            "roll": round(self.roll, 2),
        }


@dataclass
class Face:
    """One face found in an image.

    Attributes:
        box: float32 array of shape (4,), ``[x1, y1, x2, y2]`` in pixels of the original image.
        score: detection confidence in [0, 1].
        keypoints: float32 array of shape (5, 2), ``(x, y)`` pixels, in `KEYPOINT_NAMES` order.
        embedding: float32 array of shape (D,), L2-normalised, once the face has been embedded
            (see `kao.embed`), else None.

    Set by `kao.analyze` (each None until its stage has run):
        mesh: float32 (468, 3) FaceMesh points, x and y in pixels of the original image, z in
            pixels too (depth, smaller is nearer the camera).
        iris: float32 (10, 3) iris points: 5 of the right eye (centre first), then 5 of the left.
        landmarks_68: float32 (68, 2) pixels, the classic iBUG 68-point layout.
        pose: head pose (`Pose`, degrees).
        gaze: where the eyes look, JSON-ready dict (degrees; see `kao.geometry`).
        age: apparent age in years.
        gender: `Label` "male" / "female" with its probability.
        emotion: probability of each of `EMOTIONS` (they sum to 1).
        mask: `Label` "mask" / "no_mask" with its probability.
    """

    box: np.ndarray
    score: float
    keypoints: np.ndarray
    embedding: np.ndarray | None = None
    mesh: np.ndarray | None = None
    iris: np.ndarray | None = None
    landmarks_68: np.ndarray | None = None
    pose: Pose | None = None
    gaze: dict[str, Any] | None = None
    age: float | None = None
    gender: Label | None = None
    emotion: dict[str, float] | None = None
    mask: Label | None = None

    def __repr__(self) -> str:
        """The box, score and set attributes; arrays as their shape (a face's repr stays one
        short line, not 128 embedding values)."""
        shown = [f"box={[round(float(v), 1) for v in self.box]}", f"score={self.score:.3f}"]
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if name in ("box", "score") or value is None:
                continue
            if isinstance(value, np.ndarray):
                value = f"<{'x'.join(map(str, value.shape))} {value.dtype}>"
            elif isinstance(value, float):
                value = round(value, 1)
            elif isinstance(value, dict):
                value = "{...}"
            shown.append(f"{name}={value}")
        return f"Face({', '.join(shown)})"

    @property
    def width(self) -> float:
        """Box width in pixels."""
        return float(self.box[2] - self.box[0])

    @property
    def height(self) -> float:
        """Box height in pixels."""
        return float(self.box[3] - self.box[1])

    @property
    def area(self) -> float:
        """Box area in square pixels."""
        return self.width * self.height

    def to_dict(self, *, embedding: bool = False, mesh: bool = False) -> dict[str, Any]:
        """JSON-ready form: box and keypoints rounded to 0.1 px, score to 4 decimals, then every
        attribute that has been set (age, gender, emotion, mask, pose, gaze, landmarks_68); with
        `embedding`, the embedding as a list of floats; with `mesh`, the 468 mesh points and
        the iris points (when the face has them)."""
        record: dict[str, Any] = {
            "box": [round(float(v), 1) for v in self.box],
            "score": round(float(self.score), 4),
            "keypoints": _points(self.keypoints),
        }
        if self.age is not None:
            record["age"] = round(float(self.age), 1)
        for key, label in (("gender", self.gender), ("mask", self.mask)):
            if label is not None:
                record[key] = label.to_dict()
        if self.emotion is not None:
            record["emotion"] = {k: round(float(self.emotion[k]), 4) for k in EMOTIONS}
        if self.pose is not None:
            record["pose"] = self.pose.to_dict()
        if self.gaze is not None:
            record["gaze"] = self.gaze
        if self.landmarks_68 is not None:
            record["landmarks_68"] = _points(self.landmarks_68)
        if mesh and self.mesh is not None:
            record["mesh"] = _points(self.mesh)
        if mesh and self.iris is not None:
            record["iris"] = _points(self.iris)
        if embedding and self.embedding is not None:
            record["embedding"] = [float(v) for v in self.embedding]
        return record


def _points(points: np.ndarray) -> list[list[float]]:
    """Rows of `points` (N, 2 or 3) as lists rounded to 0.1 px."""
    return [[round(float(v), 1) for v in row] for row in points]
