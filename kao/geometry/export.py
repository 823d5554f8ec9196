"""Textured 3D face meshes from FaceMesh points: Wavefront OBJ (+ MTL + PNG texture) and PLY.

Vertices are a face's 468 mesh points with y and z negated, so that a viewer shows the face
upright and facing it: x = image x (pixels), y = -image y, z = -depth (pixels; larger is
nearer the camera). Triangles (898, counter-clockwise seen from the front) and texture
coordinates come from MediaPipe's canonical face; the texture is the photo warped into that
UV layout (each canonical UV triangle filled from the photo triangle under the same three
mesh points), a `TEXTURE_SIZE` square PNG."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from kao.errors import KaoError
from kao.face import Face
from kao.geometry.canonical import canonical_model
from kao.geometry.pose import camera_frame
from kao.geometry.raster import rasterize

TEXTURE_SIZE = 512
FORMATS = (".obj", ".ply")


def _mesh(face: Face) -> np.ndarray:
    if face.mesh is None:
        raise KaoError("a 3D mesh needs the face's landmarks: run kao.landmarks.FaceMesh first")
    return face.mesh


def uv_texture(rgb: np.ndarray, face: Face, size: int = TEXTURE_SIZE) -> np.ndarray:
    """The face's texture (size x size x 3 uint8) in the canonical UV layout: texel (row, col)
    holds the photo pixel under the same place of the mesh; texels outside the UV map are
    grey."""
    model = canonical_model()
    uv_pixels = np.column_stack(
        [model.uvs[:, 0] * size - 0.5, (1.0 - model.uvs[:, 1]) * size - 0.5, np.zeros(468)]
    )
    ids, weights = rasterize(uv_pixels, model.triangles, size, size)
    corners = _mesh(face)[model.triangles[np.maximum(ids, 0)], :2]  # (S, S, 3, 2)
    source = (weights[..., None] * corners).sum(axis=2).astype(np.float32)
    texture = cv2.remap(
        rgb, source[..., 0], source[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    texture[ids < 0] = 128
    return texture


def write_obj(path: Path, rgb: np.ndarray, face: Face) -> list[Path]:
    """Write `path` (.obj), its material `<stem>.mtl` and texture `<stem>_texture.png` beside
    it; returns the three paths."""
    model = canonical_model()
    vertices = camera_frame(_mesh(face))
    material, texture = path.with_suffix(".mtl"), path.with_name(f"{path.stem}_texture.png")
    Image.fromarray(uv_texture(rgb, face)).save(texture)
    material.write_text(
        f"newmtl face\nKa 1 1 1\nKd 1 1 1\nKs 0 0 0\nillum 1\nmap_Kd {texture.name}\n"
    )
    lines = [
        "# kao face mesh: 468 FaceMesh vertices (x, -y, -depth pixels)",
        f"mtllib {material.name}",
    ]
    lines += [f"v {x:.3f} {y:.3f} {z:.3f}" for x, y, z in vertices]
    lines += [f"vt {u:.6f} {v:.6f}" for u, v in model.uvs]
    lines.append("usemtl face")
    lines += [f"f {a}/{a} {b}/{b} {c}/{c}" for a, b, c in model.triangles + 1]
    path.write_text("\n".join(lines) + "\n")
    return [path, material, texture]


def vertex_colours(rgb: np.ndarray, face: Face) -> np.ndarray:
    """(468, 3) uint8 photo colour under each mesh point (bilinear)."""
    mesh = _mesh(face).astype(np.float32)
    sampled = cv2.remap(
        rgb,
        mesh[None, :, 0],
        mesh[None, :, 1],
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return sampled[0]


def write_ply(path: Path, rgb: np.ndarray, face: Face) -> list[Path]:
    """Write `path` (.ply, ASCII): the 468 vertices with their photo colour (red, green, blue)
    and canonical texture coordinates (s, t), and the 898 triangles; returns [path]."""
    model = canonical_model()
    vertices, colours = camera_frame(_mesh(face)), vertex_colours(rgb, face)
    header = [
        "ply",
        "format ascii 1.0",
        "comment kao face mesh: x, -y, -depth pixels",
        f"element vertex {len(vertices)}",
        *(f"property float {name}" for name in ("x", "y", "z")),
        *(f"property uchar {name}" for name in ("red", "green", "blue")),
        *(f"property float {name}" for name in ("s", "t")),
        f"element face {len(model.triangles)}",
        "property list uchar int vertex_indices",
        "end_header",
    ]
    rows = [
        f"{x:.3f} {y:.3f} {z:.3f} {r} {g} {b} {u:.6f} {v:.6f}"
        for (x, y, z), (r, g, b), (u, v) in zip(vertices, colours, model.uvs, strict=False)
    ]
    rows += [f"3 {a} {b} {c}" for a, b, c in model.triangles]
    path.write_text("\n".join(header + rows) + "\n")
    return [path]


def write_mesh(path: Path, rgb: np.ndarray, face: Face) -> list[Path]:
    """Write one face's mesh in the format of `path`'s suffix (.obj or .ply); the files made."""
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise KaoError(f"{path}: unknown mesh format {suffix!r} (use .obj or .ply)")
    return write_obj(path, rgb, face) if suffix == ".obj" else write_ply(path, rgb, face)
