"""Face aging with age-group prototypes (Burt & Perrett 1995; Rowland & Perrett 1995).

A face is moved from its own age band to a target band in shape and in texture:

- shape: its mesh in the reference frame plus `strength` x (target mean shape - source mean
  shape), mapped back to the photo by the inverse of its similarity;
- texture: the photo is warped piecewise-affinely from the old mesh to the new one, and the
  difference of the two bands' mean textures (on the common mean shape) is added, warped onto
  the new mesh too. The difference is split by a Gaussian into its low frequencies (skin tone,
  shading) and its high frequencies (wrinkles, folds), the latter amplified by `detail`, as
  means over hundreds of faces blur the fine structure that makes age visible;
- the warp reaches past the mesh's outline to a fixed ring around it, so a moved jaw or
  forehead line fades out smoothly into the hair and neck; the result is blended into the
  photo with a mask feathered inside that ring, so the background stays as it was."""

from __future__ import annotations

import functools

import cv2
import numpy as np

from kao.aging.prototypes import Prototypes, frame_shape, load_prototypes
from kao.aging.warp import (
    EYE_DISTANCE,
    eye_centres,
    mesh_raster,
    outline,
    reference_matrix,
    ring,
    ring_triangles,
    sample,
)
from kao.align import apply, invert
from kao.errors import KaoError
from kao.face import Face
from kao.geometry import canonical_model

DETAIL = 3.0
"""Default gain of the high frequencies of the texture difference."""
DETAIL_SIGMA = 2.0
"""Gaussian sigma (reference-frame pixels) splitting the texture difference into low and high
frequencies."""
FEATHER = 0.12
"""Sigma of the blending masks' feather, in eye distances; each mask is also pulled in by
twice that from its edge (the ring in the photo, the mean shape's outline for the texture)."""
RING = 1.25
"""The fixed ring lies this many times farther from the outline's centroid than the outline."""


@functools.cache
def warp_triangles() -> tuple[np.ndarray, np.ndarray]:
    """FaceMesh's outline loop (36 vertex indices) and the triangles of the warp: the mesh's
    898, then those of the band from its outline to the ring (vertices 468 onward)."""
    triangles = canonical_model().triangles
    loop = outline(triangles)
    return loop, np.concatenate([triangles, ring_triangles(loop, len(canonical_model().vertices))])


def feathered(inside: np.ndarray, sigma: float) -> np.ndarray:
    """(H, W) float32 weights in [0, 1]: the bool mask `inside` pulled in by 2 `sigma` pixels
    and blurred by a Gaussian of `sigma`."""
    pulled_in = cv2.erode(inside.astype(np.uint8), None, iterations=max(1, round(2 * sigma)))
    return cv2.GaussianBlur(pulled_in.astype(np.float32), (0, 0), sigma)


def texture_difference(
    prototypes: Prototypes, source: int, target: int, strength: float, detail: float
) -> np.ndarray:
    """The (S, S, 3) float32 texture change from band `source` to band `target` on the mean
    shape: ``strength * (low + detail * high)`` of their mean textures' difference."""
    difference = prototypes.textures[target] - prototypes.textures[source]
    low = cv2.GaussianBlur(difference, (0, 0), DETAIL_SIGMA)
    size = difference.shape[0]
    support = mesh_raster(prototypes.mean_shape, canonical_model().triangles, size, size)
    weight = feathered(support.inside, FEATHER * EYE_DISTANCE)[..., None]
    return (weight * strength * (low + detail * (difference - low))).astype(np.float32)


def aged_mesh(
    face: Face, prototypes: Prototypes, source: int, target: int, strength: float
) -> np.ndarray:
    """The (468, 2) float64 image-pixel mesh of `face` moved from band `source` to `target`."""
    matrix = reference_matrix(face.mesh)
    shift = strength * (prototypes.shapes[target] - prototypes.shapes[source])
    return apply(invert(matrix), frame_shape(face.mesh) + shift).astype(np.float64)


def age_transform(
    rgb: np.ndarray,
    face: Face,
    *,
    source_age: float,
    target_age: float,
    prototypes: Prototypes | None = None,
    strength: float = 1.0,
    detail: float = DETAIL,
) -> np.ndarray:
    """A copy of `rgb` (H x W x 3 uint8 RGB) with `face` (which needs its `mesh`, see
    `kao.landmarks.FaceMesh`) moved from the band of `source_age` to that of `target_age`
    (years). `strength` scales the change (1: the full prototype difference, 0: none);
    `detail` is the gain of its fine texture. Raises KaoError for a face without a mesh, an
    age outside the bands or a negative strength."""
    if face.mesh is None:
        raise KaoError("age transform needs the face's mesh: run kao.landmarks.FaceMesh first")
    if strength < 0 or detail < 0:
        raise KaoError(f"strength and detail must be >= 0, got {strength:g} and {detail:g}")
    prototypes = prototypes or load_prototypes()
    source = prototypes.band_index(source_age)
    target = prototypes.band_index(target_age)
    out = np.array(rgb, dtype=np.uint8, copy=True)
    if source == target or strength == 0:
        return out
    loop, triangles = warp_triangles()
    old = face.mesh[:, :2].astype(np.float64)
    fixed = ring(old, loop, RING)
    old = np.vstack([old, fixed])
    new = np.vstack([aged_mesh(face, prototypes, source, target, strength), fixed])
    frame = np.vstack([prototypes.mean_shape, ring(prototypes.mean_shape, loop, RING)])
    depth = np.concatenate([face.mesh[:, 2], np.full(len(loop), face.mesh[:, 2].max() + 1)])
    right, left = eye_centres(face.mesh)
    sigma = max(FEATHER * float(np.linalg.norm(left - right)), 0.5)
    # Work in the region that holds both meshes and their ring, clipped to the photo.
    height, width = rgb.shape[:2]
    corners = np.vstack([old, new])
    x0, y0 = np.maximum(np.floor(corners.min(axis=0)), 0).astype(int)
    x1, y1 = np.minimum(np.ceil(corners.max(axis=0)) + 1, [width, height]).astype(int)
    if x1 <= x0 or y1 <= y0:
        raise KaoError("the face's mesh lies outside the image")
    raster = mesh_raster(np.column_stack([new - (x0, y0), depth]), triangles, x1 - x0, y1 - y0)
    photo = sample(rgb, raster.maps(old), replicate=True).astype(np.float32)
    change = texture_difference(prototypes, source, target, strength, detail)
    texture = sample(change, raster.maps(frame))
    region = out[y0:y1, x0:x1].astype(np.float32)
    aged = np.where(raster.inside[..., None], np.clip(photo + texture, 0, 255), region)
    mask = feathered(raster.inside, sigma)[..., None]
    out[y0:y1, x0:x1] = np.clip(mask * aged + (1 - mask) * region + 0.5, 0, 255).astype(np.uint8)
    return out
