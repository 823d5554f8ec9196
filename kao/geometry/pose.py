"""Head pose from the FaceMesh: a rigid fit of MediaPipe's canonical face to the 468 points.

The mesh (x right, y down, z away from the camera, pixels) is turned into the camera frame of
the canonical model (x right, y up, z toward the camera) and the canonical vertices are fitted
to it by a similarity transform (Umeyama / orthogonal Procrustes: rotation, uniform scale,
translation; least squares over all 468 points), which is exact for the weak-perspective
projection a face far from the camera has. The rotation R (canonical -> camera) is read as
yaw, pitch, roll (`kao.face.Pose`'s convention):

- yaw: the angle of the face's forward direction f = R (0, 0, 1) to the right, positive when
  the face turns toward the image's right (the subject's left);
- pitch: the angle of f above the horizontal plane, positive when the face looks up;
- roll: the remaining rotation about f, positive when the head tilts clockwise in the image.

So R = Ry(yaw) Rx(-pitch) Rz(-roll) with right-handed Rx, Ry, Rz about the camera's axes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kao.errors import KaoError
from kao.face import Face, Pose
from kao.geometry.canonical import canonical_model


@dataclass(frozen=True)
class RigidFit:
    """camera point = scale * rotation @ canonical point + translation; camera frame in pixels
    (x right, y up, z toward the camera), `rotation` (3, 3), `translation` (3,)."""

    rotation: np.ndarray
    scale: float
    translation: np.ndarray

    def to_camera(self, canonical: np.ndarray) -> np.ndarray:
        """(N, 3) canonical points (cm) in the camera frame (pixels)."""
        return self.scale * canonical @ self.rotation.T + self.translation

    def to_head(self, camera: np.ndarray) -> np.ndarray:
        """(N, 3) camera-frame points back in the canonical head frame (cm)."""
        return (camera - self.translation) @ self.rotation / self.scale


def camera_frame(points: np.ndarray) -> np.ndarray:
    """Image points (N, 3): x right, y down, z away (pixels) -> x right, y up, z toward the
    camera (float64)."""
    return np.asarray(points, np.float64) * np.array([1.0, -1.0, -1.0])


def image_frame(points: np.ndarray) -> np.ndarray:
    """The inverse of `camera_frame` (the same sign flips)."""
    return camera_frame(points)


def fit_canonical(mesh: np.ndarray) -> RigidFit:
    """The similarity transform that best maps the canonical vertices onto `mesh` (468, 3)
    image pixels, in the least-squares sense."""
    target = camera_frame(mesh)
    source = canonical_model().vertices
    source_mean, target_mean = source.mean(axis=0), target.mean(axis=0)
    a, b = source - source_mean, target - target_mean
    u, singular, vt = np.linalg.svd(b.T @ a)
    sign = np.sign(np.linalg.det(u @ vt))
    fix = np.diag([1.0, 1.0, sign])
    rotation = u @ fix @ vt
    scale = float((singular * np.diag(fix)).sum() / (a**2).sum())
    return RigidFit(rotation, scale, target_mean - scale * rotation @ source_mean)


def _rotation_x(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _rotation_y(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def direction_angles(vector: np.ndarray) -> tuple[float, float]:
    """(yaw, pitch) in degrees of a camera-frame direction: yaw positive toward the image's
    right, pitch positive up; (0, 0) is straight at the camera."""
    x, y, z = (float(v) for v in vector)
    return float(np.degrees(np.arctan2(x, z))), float(np.degrees(np.arctan2(y, np.hypot(x, z))))


def rotation_angles(rotation: np.ndarray) -> Pose:
    """The `Pose` of a canonical -> camera rotation (see the module docstring)."""
    yaw, pitch = direction_angles(rotation[:, 2])
    rest = (_rotation_y(np.radians(yaw)) @ _rotation_x(-np.radians(pitch))).T @ rotation
    roll = -float(np.degrees(np.arctan2(rest[1, 0], rest[0, 0])))
    return Pose(yaw=yaw, pitch=pitch, roll=roll)


def head_pose(face: Face) -> Pose:
    """Yaw, pitch and roll in degrees of a face that has a `mesh` (see `kao.landmarks`)."""
    if face.mesh is None:
        raise KaoError("head pose needs the face's mesh: run kao.landmarks.FaceMesh first")
    return rotation_angles(fit_canonical(face.mesh).rotation)
