"""Drawing landmarks on a copy of a photo: the FaceMesh triangles, the 68 points, the irises."""

from __future__ import annotations

import cv2
import numpy as np

from kao.face import Face

MESH_COLOUR = (80, 220, 120)
POINT_COLOUR = (255, 60, 60)
IRIS_COLOUR = (60, 160, 255)


def draw_landmarks(
    rgb: np.ndarray, faces: list[Face], *, triangles: np.ndarray | None = None
) -> np.ndarray:
    """A copy of `rgb` (H x W x 3 uint8) with each face's mesh (its `triangles`, (T, 3) vertex
    indices, as thin lines; e.g. `kao.geometry.canonical_model().triangles`), 68 points and
    iris circles drawn; faces without landmarks are skipped."""
    out = np.ascontiguousarray(rgb.copy())
    for face in faces:
        scale = max(face.width / 200.0, 1.0)
        if face.mesh is not None and triangles is not None:
            polygons = np.round(face.mesh[triangles, :2]).astype(np.int32)
            cv2.polylines(out, list(polygons), True, MESH_COLOUR, 1, cv2.LINE_AA)
        if face.landmarks_68 is not None:
            for x, y in np.round(face.landmarks_68).astype(int):
                cv2.circle(out, (int(x), int(y)), round(2 * scale), POINT_COLOUR, -1, cv2.LINE_AA)
        if face.iris is not None:
            for eye in (face.iris[:5], face.iris[5:]):
                centre = eye[0, :2]
                radius = float(np.linalg.norm(eye[1:, :2] - centre, axis=1).mean())
                cv2.circle(
                    out,
                    (round(float(centre[0])), round(float(centre[1]))),
                    max(round(radius), 1),
                    IRIS_COLOUR,
                    1,
                    cv2.LINE_AA,
                )
    return out
