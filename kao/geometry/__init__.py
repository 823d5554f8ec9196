"""3D geometry of faces with FaceMesh points: head pose, gaze, textured mesh files, previews.

Example (faces from `kao.landmarks.FaceMesh().run`): ``head_pose(face)`` -> `kao.face.Pose`,
``gaze(face)`` -> dict, ``write_mesh(Path("face.obj"), rgb, face)``, ``preview(rgb, faces)``."""

from __future__ import annotations

from kao.geometry.canonical import CanonicalFace, canonical_model
from kao.geometry.export import write_mesh, write_obj, write_ply
from kao.geometry.gaze import gaze
from kao.geometry.pose import RigidFit, fit_canonical, head_pose
from kao.geometry.preview import preview, shade

__all__ = [
    "CanonicalFace",
    "RigidFit",
    "canonical_model",
    "fit_canonical",
    "gaze",
    "head_pose",
    "preview",
    "shade",
    "write_mesh",
    "write_obj",
    "write_ply",
]
