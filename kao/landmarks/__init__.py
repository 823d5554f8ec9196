"""Face landmarks: MediaPipe FaceMesh (468 3D points), iris points and the 68-point iBUG layout.

Example: ``faces = kao.landmarks.FaceMesh().run(rgb, kao.detect(rgb))``; each face then has
`mesh` (468, 3), `iris` (10, 3) and `landmarks_68` (68, 2), in pixels of `rgb`."""

from __future__ import annotations

from kao.landmarks.facemesh import FaceMesh, five_points
from kao.landmarks.ibug68 import MESH_TO_68, landmarks_68

__all__ = ["MESH_TO_68", "FaceMesh", "five_points", "landmarks_68"]
