"""The `Face` record that travels through kao's stages and is enriched by each one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

KEYPOINT_NAMES = ("right_eye", "left_eye", "nose_tip", "right_mouth_corner", "left_mouth_corner")
"""Order of the 5 keypoints. Right/left are the subject's: the right eye is on the image's left."""
EMOTIONS = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprised")
"""The 7 emotion classes, in the fixed order kao prints and stores them."""
DETECTION_KEYS = ("box", "score", "keypoints", "quality")
"""The keys of a detection record (`kao.detect`, `kao detect --json`, `/v1/detect`); quality is
null on a face whose quality was not measured (`FaceDetector.detect` alone)."""
ANALYSIS_KEYS = ("age", "gender", "emotion", "mask", "pose", "gaze", "landmarks_68")
"""The keys an analysis record adds to `DETECTION_KEYS`, then ``"missing"`` (and ``"mesh"``
and ``"iris"`` when the mesh is asked for)."""
MESH_KEYS = ("mesh", "iris")
NOT_COMPUTED = "not computed (kao.analyze did not run on this face)"
"""The reason given for an attribute that is None on a face without a recorded reason."""


def face_index(number: int | None) -> int | None:
    """The 0-based list position of face `number` (faces are numbered from 1 where people see
    or type them; see `Face`), None for None."""
    return None if number is None else number - 1


@dataclass(frozen=True)
class Label:
    """A class decision: `label` (e.g. "female", "mask") and its probability `score` in [0, 1]."""

    label: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        """{"label": str, "score": float rounded to 4 decimals}, as in the JSON output."""
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
        """{"yaw", "pitch", "roll"} in degrees rounded to 2 decimals, as in the JSON output."""
        return {
            "yaw": round(self.yaw, 2),
            "pitch": round(self.pitch, 2),
            "roll": round(self.roll, 2),
        }


@dataclass(frozen=True)
class Quality:
    """How well a face can be read (`kao.quality.face_quality` computes it and documents each
    part): `score` in [0, 1] (the weakest part, halved without landmarks), `size` the box's
    shorter side in pixels, `sharpness` and `exposure` in [0, 1], `yaw` and `pitch` in degrees
    (as `Pose`), `pose_from` "mesh" or "keypoints" (where yaw and pitch come from), `landmarks`
    whether FaceMesh fitted the face (None where it was not run: a detection record), and
    `weakest` the name of the part that sets the score ("size", "sharpness", "exposure" or
    "pose")."""

    score: float
    size: float
    sharpness: float
    exposure: float
    yaw: float
    pitch: float
    pose_from: str
    landmarks: bool | None
    weakest: str

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON: score, sharpness and exposure rounded to 3 decimals, size to
        0.1 px, angles to 0.1 degree."""
        return {
            "score": round(self.score, 3),
            "size": round(self.size, 1),
            "sharpness": round(self.sharpness, 3),
            "exposure": round(self.exposure, 3),
            "yaw": round(self.yaw, 1),
            "pitch": round(self.pitch, 1),
            "pose_from": self.pose_from,
            "landmarks": self.landmarks,
            "weakest": self.weakest,
        }


@dataclass
class Face:
    """One face found in an image.

    Faces are numbered from 1 wherever a person sees or types a number (the CLI's text and
    options, ``"face"`` in JSON, the HTTP API's parameters, drawings and the web page): face
    N is item N - 1 of the list `kao.detect` or `kao.analyze` returns, best score first.
    Python names that hold a 0-based list position say so (`index`).

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
        quality: how well the face can be read (`Quality`); an attribute is left None, with
            its reason in `missing`, on a face too small to read it (`kao.quality.MIN_SIZE`).
        missing: why each of those attributes is None, by attribute name (e.g. ``{"pose":
            "no landmarks: FaceMesh ..."}``); ``{}`` when every one is set, None on a face
            `kao.analyze` has not seen.

    Records (`to_dict`): a detection record has exactly `DETECTION_KEYS`; an analysis record
    (a face `kao.analyze` returned, or any face with an attribute set) has every key of
    `ANALYSIS_KEYS` too, None (JSON ``null``) where the attribute could not be found, and
    ``"missing"``: the reason for each of its null keys.
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
    quality: Quality | None = None
    missing: dict[str, str] | None = None

    def __repr__(self) -> str:
        """The box, score and set attributes; arrays as their shape (a face's repr stays one
        short line, not 128 embedding values)."""
        shown = [f"box={[round(float(v), 1) for v in self.box]}", f"score={self.score:.3f}"]
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if name in ("box", "score") or value is None or (name == "missing" and not value):
                continue
            if isinstance(value, np.ndarray):
                value = f"<{'x'.join(map(str, value.shape))} {value.dtype}>"
            elif isinstance(value, float):
                value = round(value, 1)
            elif isinstance(value, dict):
                value = "{...}"
            elif isinstance(value, Quality):
                value = round(value.score, 2)
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

    @property
    def analysed(self) -> bool:
        """Whether this face's record is an analysis record (see the class docstring)."""
        return self.missing is not None or any(
            getattr(self, key) is not None for key in (*ANALYSIS_KEYS, *MESH_KEYS)
        )

    def to_dict(self, *, embedding: bool = False, mesh: bool = False) -> dict[str, Any]:
        """JSON-ready record: box and keypoints rounded to 0.1 px, score to 4 decimals, quality
        as `Quality.to_dict` (null when not measured); for an analysis record (`analysed`) also
        every key of `ANALYSIS_KEYS` (age to 0.1 year, probabilities to 4 decimals, points to
        0.1 px; null where unknown), with `mesh` the
        468 mesh points and the 10 iris points, and ``"missing"``: {null key: reason}. With
        `embedding`, ``"embedding"``: the D floats (null before `kao.embed`)."""
        record: dict[str, Any] = {
            "box": [round(float(v), 1) for v in self.box],
            "score": round(float(self.score), 4),
            "keypoints": _points(self.keypoints),
            "quality": None if self.quality is None else self.quality.to_dict(),
        }
        if self.analysed:
            record.update(self._attributes(mesh))
            known = self.missing or {}
            record["missing"] = {
                key: known.get(key, NOT_COMPUTED)
                for key, value in record.items()
                if value is None and key != "quality"
            }
        if embedding:
            vector = self.embedding
            record["embedding"] = None if vector is None else [float(v) for v in vector]
        return record

    def _attributes(self, mesh: bool) -> dict[str, Any]:
        """The analysis keys of `to_dict` (with `mesh`, the mesh and iris too), None if unset."""
        emotion = self.emotion
        values: dict[str, Any] = {
            "age": None if self.age is None else round(float(self.age), 1),
            "gender": None if self.gender is None else self.gender.to_dict(),
            "emotion": None
            if emotion is None
            else {k: round(float(emotion[k]), 4) for k in EMOTIONS},
            "mask": None if self.mask is None else self.mask.to_dict(),
            "pose": None if self.pose is None else self.pose.to_dict(),
            "gaze": self.gaze,
            "landmarks_68": _optional_points(self.landmarks_68),
        }
        if mesh:
            values["mesh"] = _optional_points(self.mesh)
            values["iris"] = _optional_points(self.iris)
        return values


def _points(points: np.ndarray) -> list[list[float]]:
    """Rows of `points` (N, 2 or 3) as lists rounded to 0.1 px."""
    return [[round(float(v), 1) for v in row] for row in points]


def _optional_points(points: np.ndarray | None) -> list[list[float]] | None:
    """`_points` of `points`, or None when there are none."""
    return None if points is None else _points(points)
