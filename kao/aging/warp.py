"""Piecewise-affine warps over the FaceMesh triangles, and the reference frame faces are
compared in.

The reference frame is a `FRAME_SIZE` x `FRAME_SIZE` pixel square in which every face's eye
centres (means of the mesh's eye corners) sit at fixed points: a similarity transform (rotation,
uniform scale, translation) takes a face's 2D mesh there, so shapes of faces of any size and
roll can be averaged and subtracted."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from kao.landmarks.facemesh import EYE_CORNERS

FRAME_SIZE = 128
"""Side of the reference frame, pixels."""
EYE_DISTANCE = 40.0
"""Distance between the eye centres in the reference frame, pixels."""
SHIFT = 4
SUBPIXEL = 1 << SHIFT
"""Vertices are drawn with `SHIFT` fractional bits (1/16 pixel)."""
EYE_MIDPOINT = (64.0, 42.0)
"""Where the midpoint between the eyes lies in the reference frame, pixels (x, y). The
canonical face spans 1.23 eye distances either side of it and 0.89 above to 1.91 below, so
the whole mesh fits in the frame."""


def eye_centres(mesh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The (2,) pixel centres of the right eye (image left) and the left eye of a (468, >=2)
    mesh: the midpoints of each eye's two corners."""
    right, left = (np.asarray(mesh)[list(pair), :2].mean(axis=0) for pair in EYE_CORNERS)
    return right.astype(np.float64), left.astype(np.float64)


def reference_matrix(mesh: np.ndarray) -> np.ndarray:
    """The 2 x 3 similarity (float64) that maps pixels of the image holding `mesh` (468, >=2)
    to the reference frame: its eye centres to `EYE_MIDPOINT` -/+ half `EYE_DISTANCE`
    horizontally."""
    right, left = eye_centres(mesh)
    axis = left - right
    scale = EYE_DISTANCE / max(float(np.linalg.norm(axis)), 1e-6)
    angle = np.arctan2(axis[1], axis[0])
    cos, sin = scale * np.cos(-angle), scale * np.sin(-angle)
    linear = np.array([[cos, -sin], [sin, cos]])
    midpoint = (right + left) / 2
    offset = np.asarray(EYE_MIDPOINT) - linear @ midpoint
    return np.column_stack([linear, offset])


@dataclass(frozen=True)
class MeshRaster:
    """A mesh rasterised once, to warp any number of images of the same mesh onto it.

    inside: (H, W) bool, the pixels a triangle covers; corners: (M, 3) int64 vertex indices
    of the triangle covering each of those M pixels (row-major order); weights: (M, 3)
    float64 their barycentric weights."""

    inside: np.ndarray
    corners: np.ndarray
    weights: np.ndarray

    def maps(self, source: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Where each pixel comes from in an image in which the mesh's vertices lie at `source`
        (N, >=2) pixels: ``(map_x, map_y)`` float32 (H, W) for `sample` (-1 outside the mesh,
        so a constant border reads there)."""
        located = np.einsum(
            "mk,mkd->md", self.weights, np.asarray(source, np.float64)[:, :2][self.corners]
        )
        map_x = np.full(self.inside.shape, -1.0, np.float32)
        map_y = np.full(self.inside.shape, -1.0, np.float32)
        map_x[self.inside], map_y[self.inside] = located[:, 0], located[:, 1]
        return map_x, map_y


def mesh_raster(target: np.ndarray, triangles: np.ndarray, width: int, height: int) -> MeshRaster:
    """`MeshRaster` of the mesh whose vertices lie at `target` (N, 2 or 3) pixels of a
    (width x height) image; with z (smaller is nearer), nearer triangles are drawn over farther
    ones where the mesh folds over itself. `triangles` (T, 3) vertex indices.

    Triangles are filled by OpenCV (sub-pixel vertices) into an id image, then each covered
    pixel's barycentric weights are solved in one vectorised step."""
    points = np.asarray(target, np.float64)
    depth = points[:, 2] if points.shape[1] > 2 else np.zeros(len(points))
    ids = np.zeros((height, width), np.int32)
    fixed = np.round(points[:, :2] * SUBPIXEL).astype(np.int32)
    for index in np.argsort(-depth[triangles].mean(axis=1), kind="stable"):
        cv2.fillConvexPoly(ids, fixed[triangles[index]], int(index) + 1, cv2.LINE_8, SHIFT)
    inside = ids > 0
    corners = triangles[ids[inside] - 1]
    rows, columns = np.nonzero(inside)
    pixel = np.column_stack([columns, rows]).astype(np.float64)
    a, b, c = (points[corners[:, k], :2] for k in range(3))
    e1, e2, offset = b - a, c - a, pixel - a
    det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    det = np.where(np.abs(det) < 1e-9, 1e-9, det)
    w1 = (offset[:, 0] * e2[:, 1] - offset[:, 1] * e2[:, 0]) / det
    w2 = (e1[:, 0] * offset[:, 1] - e1[:, 1] * offset[:, 0]) / det
    # Pixels OpenCV fills just outside a thin triangle get weights clamped into it.
    weights = np.clip(np.column_stack([1.0 - w1 - w2, w1, w2]), 0.0, 1.0)
    weights /= weights.sum(axis=1, keepdims=True)
    return MeshRaster(inside, corners, weights)


def sample(
    image: np.ndarray, maps: tuple[np.ndarray, np.ndarray], *, replicate: bool = False
) -> np.ndarray:
    """`image` (H x W x C, any dtype cv2 remaps) read bilinearly at `maps` (from
    `MeshRaster.maps`); outside `image`, 0, or its nearest border pixel with `replicate`."""
    map_x, map_y = maps
    border = cv2.BORDER_REPLICATE if replicate else cv2.BORDER_CONSTANT
    return cv2.remap(image, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=border)


def outline(triangles: np.ndarray) -> np.ndarray:
    """The vertex indices (int64) of a mesh's outer boundary, in order around it: the edges
    that belong to one triangle only, walked as a loop (FaceMesh's is 36 vertices round the
    forehead, cheeks and chin); the longest loop if the mesh has holes."""
    edges: dict[tuple[int, int], int] = {}
    for a, b, c in triangles.tolist():
        for edge in ((a, b), (b, c), (c, a)):
            key = (min(edge), max(edge))
            edges[key] = edges.get(key, 0) + 1
    neighbours: dict[int, list[int]] = {}
    for a, b in (edge for edge, count in edges.items() if count == 1):
        neighbours.setdefault(a, []).append(b)
        neighbours.setdefault(b, []).append(a)
    loops, seen = [], set()
    for start in neighbours:
        if start in seen:
            continue
        loop, current = [start], start
        seen.add(start)
        while nxt := [n for n in neighbours[current] if n not in seen]:
            current = nxt[0]
            loop.append(current)
            seen.add(current)
        loops.append(loop)
    return np.array(max(loops, key=len), np.int64)


def ring(points: np.ndarray, loop: np.ndarray, scale: float) -> np.ndarray:
    """(len(loop), 2) points around a mesh: each outline vertex `loop` of `points` (N, >=2)
    pushed away from the outline's centroid to `scale` times its distance."""
    border = np.asarray(points, np.float64)[loop, :2]
    centre = border.mean(axis=0)
    return centre + scale * (border - centre)


def ring_triangles(loop: np.ndarray, first: int) -> np.ndarray:
    """(2 len(loop), 3) triangles joining outline `loop` to its `ring`, whose vertices are
    numbered from `first` in loop order."""
    count = len(loop)
    outer = first + np.arange(count)
    following = np.roll(np.arange(count), -1)
    return np.concatenate(
        [
            np.column_stack([loop, loop[following], outer[following]]),
            np.column_stack([loop, outer[following], outer]),
        ]
    ).astype(np.int64)
