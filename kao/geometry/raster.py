"""A small z-buffered triangle rasteriser in numpy (for mesh previews and UV textures)."""

from __future__ import annotations

import numpy as np


def rasterize(
    points: np.ndarray, triangles: np.ndarray, width: int, height: int
) -> tuple[np.ndarray, np.ndarray]:
    """Which triangle covers each pixel centre, and where in it.

    `points` (N, 3): x, y in pixels of the (width x height) target, z depth (smaller is nearer;
    the nearest triangle wins); `triangles` (T, 3) vertex indices. Returns ``(ids, weights)``:
    ids (height, width) int32, the triangle index or -1; weights (height, width, 3) float32
    barycentric weights of its 3 vertices (0 where no triangle)."""
    points = np.asarray(points, np.float64)
    ids = np.full((height, width), -1, np.int32)
    weights = np.zeros((height, width, 3), np.float32)
    depth = np.full((height, width), np.inf)
    for index, (a, b, c) in enumerate(points[triangles]):
        lower = np.floor(np.minimum(np.minimum(a, b), c)[:2]).astype(int)
        upper = np.ceil(np.maximum(np.maximum(a, b), c)[:2]).astype(int)
        x0, y0 = max(lower[0], 0), max(lower[1], 0)
        x1, y1 = min(upper[0], width - 1), min(upper[1], height - 1)
        if x0 > x1 or y0 > y1:
            continue
        area = (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
        if abs(area) < 1e-12:
            continue
        xs, ys = np.meshgrid(
            np.arange(x0, x1 + 1, dtype=np.float64), np.arange(y0, y1 + 1, dtype=np.float64)
        )
        w0 = ((b[0] - xs) * (c[1] - ys) - (b[1] - ys) * (c[0] - xs)) / area
        w1 = ((c[0] - xs) * (a[1] - ys) - (c[1] - ys) * (a[0] - xs)) / area
        w2 = 1.0 - w0 - w1
        inside = (w0 >= 0) & (w1 >= 0) & (w2 >= 0)
        z = w0 * a[2] + w1 * b[2] + w2 * c[2]
        window = depth[y0 : y1 + 1, x0 : x1 + 1]
        nearer = inside & (z < window)
        if not nearer.any():
            continue
        window[nearer] = z[nearer]
        ids[y0 : y1 + 1, x0 : x1 + 1][nearer] = index
        weights[y0 : y1 + 1, x0 : x1 + 1][nearer] = np.stack([w0, w1, w2], axis=-1)[nearer]
    return ids, weights
