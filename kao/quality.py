"""How well a face can be read: `face_quality` gives each face a `kao.face.Quality`, a score in
[0, 1] and its parts; `MIN_SIZE` says below which face size, and `MIN_PARTS` below which
sharpness and exposure, each attribute is not read (`unreadable`).

The parts (each measured on the face's upright square crop, the detector's box's longer side,
resized to `CROP` x `CROP` pixels grey, area averaging when shrinking, bilinear when enlarging):

- size: the box's shorter side in pixels; its part of the score rises linearly from 0 at
  `SIZE_ZERO` px to 1 at `SIZE_FULL` px;
- sharpness: v / (v + `SHARPNESS_HALF`), v the variance of the crop's Laplacian (grey levels
  0-255): 0.5 at v = `SHARPNESS_HALF`. A small face enlarged to `CROP` px reads as blurred, as a
  blurred one does (on 78 UTKFace and LFW faces: a median of 0.72 sharp, 0.50 blurred with a
  Gaussian of 1.5 px, 0.26 with 3 px, 0.36 shrunk to 32 px, 0.12 to 16 px; contrast counts
  too: the same faces darkened to a quarter read 0.15);
- exposure: (1 - share of clipped pixels, grey <= 4 or >= 251) times a brightness term: 1 while
  the crop's mean grey level is within `BRIGHT_BAND` of mid-grey (128), falling linearly to 0
  `BRIGHT_FALL` levels further (so dark skin in good light is not a fault);
- yaw and pitch: the head pose of the mesh (`kao.geometry.head_pose`) when FaceMesh fitted the
  face, else estimated from the 5 keypoints (`keypoint_pose`: yaw within about 2 degrees of the
  mesh's on 78 UTKFace and LFW faces, pitch rough, about 11 degrees); their part of the score is
  1 up to `POSE_EASY` degrees (the larger of |yaw| and |pitch|), falling linearly to 0 at
  `POSE_HARD`;
- landmarks: whether FaceMesh fitted the face (its presence at least
  `kao.landmarks.facemesh.MIN_PRESENCE`); None on a face FaceMesh has not been run on (one
  `kao.analyze` has not seen: its `missing` is None), as in a detection record.

The score is the smallest of the size, sharpness, exposure and pose parts (the weakest link,
named in `Quality.weakest`), halved when FaceMesh ran and did not fit."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import cv2
import numpy as np

from kao.align import face_crop
from kao.face import Face, Quality

CROP = 64
"""Side of the grey crop sharpness and exposure are measured on, pixels."""
MAX_CUT = 512
"""Largest side at which a face is cut before it is shrunk to `CROP` (bounds the time)."""
SIZE_ZERO, SIZE_FULL = 16.0, 64.0
"""Face sizes (box's shorter side, pixels) where the size part is 0 and reaches 1."""
SHARPNESS_HALF = 200.0
"""Laplacian variance (grey levels squared) at which sharpness is 0.5."""
BRIGHT_BAND, BRIGHT_FALL = 68.0, 50.0
"""Mean grey levels from 128 that still count as well exposed, and over how many more levels
the brightness term falls to 0."""
CLIPPED_DARK, CLIPPED_BRIGHT = 4, 251
"""Grey levels at or below / at or above which a pixel counts as clipped."""
POSE_EASY, POSE_HARD = 20.0, 60.0
"""Head turn (degrees, the larger of |yaw| and |pitch|) where the pose part starts to fall, and
where it reaches 0."""
NO_LANDMARKS = 0.5
"""Factor of the score when FaceMesh did not fit the face."""
YAW_DEPTH = 0.61
"""Keypoint yaw: the nose tip's sideways offset from the eyes-mouth midline, in inter-ocular
distances, is `YAW_DEPTH` x tan(yaw) (fitted on 78 UTKFace and LFW faces against the mesh)."""
PITCH_LEVEL, PITCH_SLOPE = 0.579, -0.145
"""Keypoint pitch: the nose tip's height between the eyes' and the mouth's midpoints (0 at the
eyes, 1 at the mouth) is `PITCH_LEVEL` + `PITCH_SLOPE` x tan(pitch) (fitted as `YAW_DEPTH`)."""
MIN_SIZE = {"age": 24, "gender": 16, "emotion": 32, "mask": 16}
"""The smallest face (box's shorter side, pixels) on which each attribute is read; below it the
attribute is None and `too_small` gives the reason. Each is the smallest size of the
accuracy-versus-size curves (faces shrunk to 96, 64, 48, 32, 24 and 16 px, then enlarged by the
attribute crops as a small face in a photo is) at which the attribute keeps at least 85% of its
full-size gain over the trivial answer (the median age; the commoner gender, emotion or mask
class), and never under 16 px, the smallest size measured (docs/BENCHMARKS.md): age MAE 5.2
years at full size, 6.4 at 24 px (88%), 8.2 at 16 px (69%; the median age scores 14.9) on 2,000
UTKFace faces; gender accuracy 0.928, 0.889 at 16 px (91%); emotion accuracy 0.703 on FER2013's
public test, 0.644 at 32 px (87%), 0.562 at 24 px (69%); mask accuracy (the network read at
0.5, scripts/mask_size_curve.py) 0.991 on the held-out mask images at full size, 0.969 at 16
px (95%)."""

MIN_PARTS: dict[str, dict[str, float]] = {
    "age": {"sharpness": 0.2, "exposure": 0.75},
    "gender": {"exposure": 0.25},
    "emotion": {"sharpness": 0.3, "exposure": 0.9},
}
"""The least sharpness and exposure at which each attribute is read (`unreadable`); sharpness
counts on faces of at least `CROP` px only (a smaller face reads as blurred because its crop
is enlarged; `MIN_SIZE` covers it). Chosen by `MIN_SIZE`'s rule, 85% of the full gain kept, on
faces blurred, darkened and brightened (scripts/quality_gates.py, docs/training/quality_gates.json:
half of UTKFace's test faces for age and gender, FER2013's held-out training images for
emotion; docs/BENCHMARKS.md has the curves on the other half and on FER2013's public test).
Gender holds at every sharpness measured (0.85 right under 0.1). Mask has no curve of its own
here and no quality minimum. No head-turn limit: UTKFace's faces hardly turn."""

MIN_ENROL_QUALITY = 0.2
"""The least `enrolment_quality` a face needs to be enrolled without `force`. On 300 LFW
genuine pairs with one photo degraded 11 ways (shrunk, blurred, darkened;
scripts/enrolment_quality.py, docs/BENCHMARKS.md), EdgeFace XS accepted 0.93 of the pairs whose
degraded face reached it and 0.67 of the others: it refuses faces of about 28 px and less and
strong blur, and keeps faces of 40 px and light blur."""


def _ramp(value: float, zero: float, full: float) -> float:
    """0 at `zero`, 1 at `full`, linear between, clipped to [0, 1]."""
    return float(np.clip((value - zero) / (full - zero), 0.0, 1.0))


def grey_crop(rgb: np.ndarray, face: Face) -> np.ndarray:
    """The face's upright square crop (the box's longer side) as CROP x CROP uint8 grey: cut at
    the face's own size (at most `MAX_CUT` px), then resized (area averaging when shrinking,
    bilinear when enlarging)."""
    side = int(np.clip(round(max(face.width, face.height)), 1, MAX_CUT))
    grey = cv2.cvtColor(face_crop(rgb, face, side, scale=1.0), cv2.COLOR_RGB2GRAY)
    if side == CROP:
        return grey
    shrink = side > CROP
    method = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    return cv2.resize(grey, (CROP, CROP), interpolation=method)


def sharpness(grey: np.ndarray) -> float:
    """v / (v + SHARPNESS_HALF) in [0, 1), v the variance of the Laplacian of `grey` (uint8)."""
    variance = float(cv2.Laplacian(grey.astype(np.float32), cv2.CV_32F).var())
    return variance / (variance + SHARPNESS_HALF)


def exposure(grey: np.ndarray) -> float:
    """(1 - clipped share) x brightness term of `grey` (uint8), in [0, 1] (module docstring)."""
    clipped = float(np.mean((grey <= CLIPPED_DARK) | (grey >= CLIPPED_BRIGHT)))
    off = abs(float(grey.mean()) - 128.0) - BRIGHT_BAND
    return (1.0 - clipped) * (1.0 - float(np.clip(off / BRIGHT_FALL, 0.0, 1.0)))


def keypoint_pose(keypoints: np.ndarray) -> tuple[float, float]:
    """(yaw, pitch) in degrees, as `kao.face.Pose`'s, estimated from the 5 keypoints (5, 2):
    the nose tip's place between the eyes and the mouth, read in the frame where the eyes are
    level (see `YAW_DEPTH`, `PITCH_LEVEL`)."""
    points = np.asarray(keypoints, np.float64)
    right_eye, left_eye, nose = points[0], points[1], points[2]
    eyes, mouth = (right_eye + left_eye) / 2, (points[3] + points[4]) / 2
    across = left_eye - right_eye
    distance = float(np.hypot(*across))
    if distance < 1e-6:
        return 0.0, 0.0
    x_axis = across / distance
    y_axis = np.array([-x_axis[1], x_axis[0]])
    nose_x, nose_y = float((nose - eyes) @ x_axis), float((nose - eyes) @ y_axis)
    mouth_x, mouth_y = float((mouth - eyes) @ x_axis), float((mouth - eyes) @ y_axis)
    if mouth_y < 1e-6:
        return 0.0, 0.0
    offset = (nose_x - mouth_x * nose_y / mouth_y) / distance
    yaw = float(np.degrees(np.arctan(offset / YAW_DEPTH)))
    pitch = float(np.degrees(np.arctan((nose_y / mouth_y - PITCH_LEVEL) / PITCH_SLOPE)))
    return yaw, pitch


def face_quality(rgb: np.ndarray, face: Face) -> Quality:
    """The `Quality` of `face` found in `rgb` (H x W x 3 uint8 RGB); see the module docstring.
    Its pose comes from `face.pose` when set, else from the keypoints."""
    grey = grey_crop(rgb, face)
    size = min(face.width, face.height)
    if face.pose is not None:
        yaw, pitch, pose_from = face.pose.yaw, face.pose.pitch, "mesh"
    else:
        (yaw, pitch), pose_from = keypoint_pose(face.keypoints), "keypoints"
    parts = {
        "size": _ramp(size, SIZE_ZERO, SIZE_FULL),
        "sharpness": sharpness(grey),
        "exposure": exposure(grey),
        "pose": 1.0 - _ramp(max(abs(yaw), abs(pitch)), POSE_EASY, POSE_HARD),
    }
    weakest = min(parts, key=parts.__getitem__)
    landmarks = None if face.missing is None and face.mesh is None else face.mesh is not None
    return Quality(
        score=parts[weakest] * (NO_LANDMARKS if landmarks is False else 1.0),
        size=size,
        sharpness=parts["sharpness"],
        exposure=parts["exposure"],
        yaw=yaw,
        pitch=pitch,
        pose_from=pose_from,
        landmarks=landmarks,
        weakest=weakest,
    )


def rated(rgb: np.ndarray, faces: Sequence[Face]) -> list[Face]:
    """`faces` (found in `rgb`, H x W x 3 uint8 RGB) with their `face_quality` set."""
    return [dataclasses.replace(face, quality=face_quality(rgb, face)) for face in faces]


def enrolment_quality(quality: Quality) -> float:
    """The weakest of the size, sharpness, exposure and pose parts of `quality` in [0, 1]: its
    score without the landmarks factor (enrolment runs no FaceMesh)."""
    return quality.score / NO_LANDMARKS if quality.landmarks is False else quality.score


def enrolment_problem(rgb: np.ndarray, face: Face) -> str | None:
    """Why `face` (found in `rgb`) is too poor to enrol: its `enrolment_quality` is under
    `MIN_ENROL_QUALITY` (e.g. "face quality 0.12 is under 0.2 for enrolment (weakest part:
    sharpness, 0.12)"); None when it may be enrolled."""
    quality = face_quality(rgb, face)
    value = enrolment_quality(quality)
    if value >= MIN_ENROL_QUALITY:
        return None
    parts = {"size": f"{quality.size:.0f} px", "sharpness": f"{quality.sharpness:.2f}"}
    parts |= {"exposure": f"{quality.exposure:.2f}"}
    parts |= {"pose": f"yaw {quality.yaw:.0f}, pitch {quality.pitch:.0f} degrees"}
    return (
        f"face quality {value:.2f} is under {MIN_ENROL_QUALITY} for enrolment (weakest part: "
        f"{quality.weakest}, {parts[quality.weakest]})"
    )


def unreadable(face: Face, attribute: str) -> str | None:
    """Why `attribute` (a key of `MIN_SIZE`) is not read on `face`: too small (`too_small`),
    or, once its `quality` is measured, too dark or bright (exposure under
    `MIN_PARTS`[attribute]["exposure"]: "face too dark or too bright to read (exposure 0.21,
    under 0.25)") or, at `CROP` px and more, too blurred (sharpness under its minimum: "face
    too blurred to read (sharpness 0.12, under 0.2)"); None when it is read."""
    reason = too_small(face, attribute)
    quality, least = face.quality, MIN_PARTS.get(attribute, {})
    if reason is not None or quality is None:
        return reason
    if quality.exposure < least.get("exposure", 0.0):
        return (
            f"face too dark or too bright to read (exposure {quality.exposure:.2f}, under "
            f"{least['exposure']:g})"
        )
    if quality.size >= CROP and quality.sharpness < least.get("sharpness", 0.0):
        return (
            f"face too blurred to read (sharpness {quality.sharpness:.2f}, under "
            f"{least['sharpness']:g})"
        )
    return None


def too_small(face: Face, attribute: str) -> str | None:
    """Why `attribute` (a key of `MIN_SIZE`) is not read on `face`, whose box's shorter side
    (`Quality.size`) is under its minimum: "face under 24 px: too small to read" (the same words
    for every attribute with that minimum, so that the CLI prints them once); None when it is
    read."""
    least = MIN_SIZE[attribute]
    if min(face.width, face.height) >= least:
        return None
    return f"face under {least} px: too small to read"
