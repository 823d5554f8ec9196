"""Face aging with age-group prototypes (Burt & Perrett 1995; Rowland & Perrett 1995).

A face is moved from its own age band to a target band in shape and in texture:

- shape: its mesh in the reference frame plus `strength` x (target mean shape - source mean
  shape), mapped back to the photo by the inverse of its similarity;
- texture: the photo is warped piecewise-affinely from the old mesh to the new one, and the
  difference of the two bands' mean textures (on the common mean shape) is added, warped onto
  the new mesh too. The difference is split by a Gaussian into its low frequencies (skin tone,
  shading) and its high frequencies (wrinkles, folds), the latter amplified by `detail`, as
  means over hundreds of faces blur the fine structure that makes age visible;
- the new face is blended into the photo with a mask feathered inside the mesh's outline, so
  hair, ears and background stay as they were."""

from __future__ import annotations

import cv2
import numpy as np

from kao.aging.prototypes import Prototypes, frame_shape, load_prototypes
from kao.aging.warp import eye_centres, mesh_raster, reference_matrix, sample
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
"""Sigma of the blending mask's feather, in eye distances; the mask is also pulled in by
twice that from the mesh's outline, so the face's edge fades into the photo."""


def texture_difference(
    prototypes: Prototypes, source: int, target: int, strength: float, detail: float
) -> np.ndarray:
    """The (S, S, 3) float32 texture change from band `source` to band `target` on the mean
    shape: ``strength * (low + detail * high)`` of their mean textures' difference."""
    difference = prototypes.textures[target] - prototypes.textures[source]
    low = cv2.GaussianBlur(difference, (0, 0), DETAIL_SIGMA)
    return (strength * (low + detail * (difference - low))).astype(np.float32)


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
    old = face.mesh[:, :2].astype(np.float64)
    new = aged_mesh(face, prototypes, source, target, strength)
    right, left = eye_centres(face.mesh)
    eyes = float(np.linalg.norm(left - right))
    sigma = max(FEATHER * eyes, 0.5)
    # Work in the region that holds both meshes (and the feather), clipped to the photo.
    height, width = rgb.shape[:2]
    corners = np.vstack([old, new])
    x0, y0 = np.maximum(np.floor(corners.min(axis=0) - 3 * sigma), 0).astype(int)
    x1, y1 = np.minimum(np.ceil(corners.max(axis=0) + 3 * sigma) + 1, [width, height]).astype(int)
    if x1 <= x0 or y1 <= y0:
        raise KaoError("the face's mesh lies outside the image")
    target_points = np.column_stack([new - (x0, y0), face.mesh[:, 2]])
    raster = mesh_raster(target_points, canonical_model().triangles, x1 - x0, y1 - y0)
    photo = sample(rgb, raster.maps(old), replicate=True).astype(np.float32)
    change = texture_difference(prototypes, source, target, strength, detail)
    texture = sample(change, raster.maps(prototypes.mean_shape))
    region = out[y0:y1, x0:x1].astype(np.float32)
    inside = raster.inside
    aged = np.where(inside[..., None], np.clip(photo + texture, 0, 255), region)
    pulled_in = cv2.erode(inside.astype(np.uint8), None, iterations=max(1, round(2 * sigma)))
    mask = cv2.GaussianBlur(pulled_in.astype(np.float32), (0, 0), sigma)[..., None]
    out[y0:y1, x0:x1] = np.clip(mask * aged + (1 - mask) * region + 0.5, 0, 255).astype(np.uint8)
    return out
