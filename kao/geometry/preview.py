"""A preview of 3D face meshes: the photo beside a flat-shaded, z-buffered render of each
face's mesh from the camera's viewpoint (`kao.geometry.raster`)."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from kao.face import Face
from kao.geometry.canonical import canonical_model
from kao.geometry.pose import camera_frame
from kao.geometry.raster import rasterize

LIGHT = np.array([-0.4, 0.5, 1.0]) / np.linalg.norm([-0.4, 0.5, 1.0])
"""Direction toward the light, camera frame (x right, y up, z toward the camera): from the
upper left, in front."""
AMBIENT = 0.25
BACKGROUND = 40
SKIN = np.array([225.0, 205.0, 190.0])
MAX_SIDE = 1024
"""Previews of larger photos are scaled down to this longer side (per panel)."""


def shade(faces: Sequence[Face], width: int, height: int) -> np.ndarray:
    """A height x width x 3 uint8 render of the meshes of `faces` (image pixels, as in the
    photo): each triangle lit by `LIGHT` (Lambert, `AMBIENT` floor), nearest surface in front;
    faces without a mesh are skipped."""
    triangles = canonical_model().triangles
    meshes = [face.mesh for face in faces if face.mesh is not None]
    image = np.full((height, width, 3), BACKGROUND, np.uint8)
    if not meshes:
        return image
    points = np.concatenate(meshes)
    every = np.concatenate([triangles + 468 * index for index in range(len(meshes))])
    ids, _ = rasterize(points, every, width, height)
    corners = camera_frame(points)[every]
    normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    light = AMBIENT + (1.0 - AMBIENT) * np.clip(normals @ LIGHT, 0.0, 1.0)
    colours = np.clip(light[:, None] * SKIN, 0, 255).astype(np.uint8)
    covered = ids >= 0
    image[covered] = colours[ids[covered]]
    return image


def preview(rgb: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
    """The photo (H x W x 3 uint8 RGB) and the shaded render of its faces' meshes side by
    side: an H' x 2W' x 3 uint8 image, H' x W' the photo scaled to at most `MAX_SIDE`."""
    height, width = rgb.shape[:2]
    factor = min(1.0, MAX_SIDE / max(height, width))
    size = (max(round(width * factor), 1), max(round(height * factor), 1))
    scaled_faces = [
        Face(
            box=face.box * factor,
            score=face.score,
            keypoints=face.keypoints * factor,
            mesh=None if face.mesh is None else face.mesh * factor,
        )
        for face in faces
    ]
    photo = rgb if factor == 1.0 else cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    return np.hstack([photo, shade(scaled_faces, size[0], size[1])])
