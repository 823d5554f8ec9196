"""Approximate head positions from a density map: its local maxima.

A density map spreads each person over a few cells, and two heads closer than a cell or two
merge into one peak, so these points are estimates: where the map's mass gathers, not detected
heads. The peaks are the cells that hold the largest value of their 3 x 3 neighbourhood and at
least `MIN_PEAK` people; the highest are kept, at most as many as the map counts (rounded), each
placed at the centroid of its 3 x 3 neighbourhood's mass (sub-cell precision).
"""

from __future__ import annotations

import cv2
import numpy as np

MIN_PEAK = 0.02
"""People a cell must hold to be a peak (weaker maxima are the map's background noise)."""


def head_points(
    density: np.ndarray, cell: tuple[float, float], limit: int | None = None
) -> np.ndarray:
    """(K, 2) float32 (x, y) image pixels of the peaks of `density` ((h, w) float, people per
    cell; a cell covers `cell` = (cx, cy) image pixels from the top-left corner), highest first,
    at most `limit` (default: the map's count, rounded)."""
    values = density.astype(np.float32)
    if limit is None:
        limit = round(float(values.sum()))
    if limit <= 0 or values.size == 0:
        return np.zeros((0, 2), np.float32)
    neighbourhood = cv2.dilate(values, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_CONSTANT)
    rows, cols = np.nonzero((values >= neighbourhood) & (values >= MIN_PEAK))
    order = np.argsort(-values[rows, cols], kind="stable")[:limit]
    rows, cols = rows[order], cols[order]
    padded = np.pad(values, 1)
    offsets = np.arange(-1, 2, dtype=np.float32)
    points = np.empty((len(rows), 2), np.float32)
    for k, (row, col) in enumerate(zip(rows, cols, strict=True)):
        window = padded[row : row + 3, col : col + 3]
        mass = float(window.sum())
        dy = float(window.sum(axis=1) @ offsets) / mass
        dx = float(window.sum(axis=0) @ offsets) / mass
        points[k] = ((col + 0.5 + dx) * cell[0], (row + 0.5 + dy) * cell[1])
    return points
