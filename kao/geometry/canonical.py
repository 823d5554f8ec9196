"""MediaPipe's canonical 3D face (`mediapipe_face/canonical_face_model.obj`): the 468 FaceMesh
vertices of an average face in centimetres, its 898 triangles and a UV map.

Axes: x toward the image's right for a face looking at the camera (the subject's left), y up,
z out of the face toward the camera (the nose tip is at z = 7.6)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kao.errors import ModelError
from kao.models import model_path

SPEC_NAME = "mediapipe_face"
FILE = "canonical_face_model.obj"


@dataclass(frozen=True)
class CanonicalFace:
    """vertices (468, 3) float64 cm; triangles (898, 3) int64 vertex indices, counter-clockwise
    seen from the front; uvs (468, 2) float64 texture coordinates of each vertex in [0, 1]
    (v up, OBJ convention)."""

    vertices: np.ndarray
    triangles: np.ndarray
    uvs: np.ndarray


def read_obj(path: Path) -> CanonicalFace:
    """Parse the canonical model's OBJ (`v`, `vt` and `f v/vt` lines, triangles only)."""
    vertices: list[list[float]] = []
    texture: list[list[float]] = []
    faces: list[list[tuple[int, int]]] = []
    for line in path.read_text().splitlines():
        fields = line.split()
        if not fields:
            continue
        if fields[0] == "v":
            vertices.append([float(v) for v in fields[1:4]])
        elif fields[0] == "vt":
            texture.append([float(v) for v in fields[1:3]])
        elif fields[0] == "f":
            corners = [field.split("/") for field in fields[1:]]
            faces.append([(int(c[0]) - 1, int(c[1]) - 1) for c in corners])
    if len(vertices) != 468 or any(len(face) != 3 for face in faces):
        raise ModelError(f"{path}: expected 468 vertices and triangles only")
    uvs = np.full((len(vertices), 2), np.nan)
    for face in faces:
        for vertex, uv in face:
            uvs[vertex] = texture[uv]
    if np.isnan(uvs).any():
        raise ModelError(f"{path}: a vertex has no texture coordinate")
    triangles = np.array([[vertex for vertex, _ in face] for face in faces], np.int64)
    return CanonicalFace(np.array(vertices, np.float64), triangles, uvs)


@functools.cache
def canonical_model() -> CanonicalFace:
    """The canonical face, read once from the model store."""
    return read_obj(model_path(SPEC_NAME, FILE))
