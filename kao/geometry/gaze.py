"""Where the eyes look, from the iris centres and the head's rigid fit (`kao.geometry.pose`).

Each eye is a sphere of radius `EYEBALL_RADIUS` (1.2 cm, the human average) whose centre is
fixed in the head frame of the canonical face (`EYEBALL_CENTRE`, cm, the left eye's; the right
eye's is its mirror image, x negated). Under the weak-perspective camera of the rigid fit the
iris centre seen in the image lies on the front of that sphere, so its offset from the sphere's
projected centre, divided by the projected radius, gives the eye's direction in the camera
frame: g = (dx, dy, sqrt(1 - dx^2 - dy^2)) (clipped to the visible half when the iris
lies outside the sphere's outline).

`EYEBALL_CENTRE` was fitted by `fit_eyeball_centre` (`scripts/fit_landmark_tables.py gaze`
reproduces it to 0.01 cm) on 300 LFW photos (a seeded random sample
of the images pairs.txt uses, largest face each), assuming the subjects look at the camera
(g = (0, 0, 1)): a linear least-squares problem over both eyes of every face, whose head poses
vary enough to fix the depth too. On 100 other LFW photos the combined gaze then has a median
of +1.2 deg yaw, -0.2 deg pitch and a mean absolute value of 8.9 deg yaw, 7.6 deg pitch (the
head poses of those photos: 10.1 and 7.0), so read single-photo gaze angles to about 10 deg.

`gaze(face)` gives, in degrees with `kao.face.Pose`'s signs (yaw positive toward the image's
right, pitch positive up, (0, 0) straight at the camera)::

    {"right_eye": {"yaw", "pitch"}, "left_eye": {"yaw", "pitch"},   # each eye, camera frame
     "yaw", "pitch",                  # both eyes' mean direction, camera frame
     "relative": {"yaw", "pitch"}}    # that direction relative to the head (eyes in the head)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from kao.errors import KaoError
from kao.face import Face
from kao.geometry.pose import RigidFit, camera_frame, direction_angles, fit_canonical

EYEBALL_RADIUS = 1.2
"""Eyeball radius in cm (canonical-model units)."""
EYEBALL_CENTRE = np.array([3.17, 2.74, 3.56])
"""Centre of the left eye's eyeball in the canonical head frame (cm); see the module docstring."""
_MIRROR = np.array([-1.0, 1.0, 1.0])


def _eye_centres(fit: RigidFit, centre: np.ndarray) -> np.ndarray:
    """(2, 3) camera-frame centres of the right then left eyeball."""
    return fit.to_camera(np.stack([centre * _MIRROR, centre]))


def _iris_centres(face: Face) -> np.ndarray:
    """(2, 2) camera-frame x, y of the right then left iris centre."""
    return camera_frame(face.iris[[0, 5]])[:, :2]  # type: ignore[index]


def eye_directions(face: Face, fit: RigidFit | None = None) -> np.ndarray:
    """(2, 3) unit gaze vectors of the right then left eye, camera frame (x right, y up, z
    toward the camera). Needs `face.mesh` and `face.iris`."""
    if face.mesh is None or face.iris is None:
        raise KaoError("gaze needs the face's mesh and iris: run kao.landmarks.FaceMesh first")
    fit = fit or fit_canonical(face.mesh)
    offset = (_iris_centres(face) - _eye_centres(fit, EYEBALL_CENTRE)[:, :2]) / (
        fit.scale * EYEBALL_RADIUS
    )
    length = np.linalg.norm(offset, axis=1, keepdims=True)
    offset = np.where(length > 1.0, offset / np.maximum(length, 1e-9), offset)
    depth = np.sqrt(np.clip(1.0 - (offset**2).sum(axis=1), 0.0, 1.0))
    return np.column_stack([offset, depth])


def _angles(vector: np.ndarray) -> dict[str, float]:
    yaw, pitch = direction_angles(vector)
    return {"yaw": round(yaw, 2), "pitch": round(pitch, 2)}


def gaze(face: Face) -> dict[str, Any]:
    """The JSON-ready gaze record of a face with mesh and iris (see the module docstring)."""
    fit = fit_canonical(face.mesh) if face.mesh is not None else None
    directions = eye_directions(face, fit)
    mean = directions.sum(axis=0)
    mean /= np.linalg.norm(mean)
    assert fit is not None
    return {
        "right_eye": _angles(directions[0]),
        "left_eye": _angles(directions[1]),
        **_angles(mean),
        "relative": _angles(fit.rotation.T @ mean),
    }


def fit_eyeball_centre(faces: Sequence[Face]) -> np.ndarray:
    """The left eyeball centre (3,) in the canonical head frame (cm) that best explains
    `faces` (each with mesh and iris) if every one of them looks straight at the camera: each
    eye's iris centre is then its eyeball centre's projection (least squares, both eyes)."""
    rows, values = [], []
    for face in faces:
        fit = fit_canonical(face.mesh)  # type: ignore[arg-type]
        iris = _iris_centres(face)
        for eye, mirror in ((0, _MIRROR), (1, np.ones(3))):
            # camera xy = scale * R[:2] @ (mirror * centre) + t[:2]
            rows.append(fit.scale * fit.rotation[:2] * mirror)
            values.append(iris[eye] - fit.translation[:2])
    if not rows:
        raise KaoError("no faces to fit the eyeball centre on")
    solution, *_ = np.linalg.lstsq(np.concatenate(rows), np.concatenate(values), rcond=None)
    return solution
