"""Box arithmetic shared by detection and evaluation. Boxes are float arrays (N, 4) of
``[x1, y1, x2, y2]`` pixels."""

from __future__ import annotations

import numpy as np


def iou_matrix(a: np.ndarray, b: np.ndarray, pixel_offset: float = 0.0) -> np.ndarray:
    """Intersection over union of every box in `a` (N, 4) with every box in `b` (M, 4) -> (N, M).

    `pixel_offset` 1.0 counts both edges as inside (x2 - x1 + 1), as WIDER FACE's evaluation does.
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    o = pixel_offset
    inter = np.clip(x2 - x1 + o, 0, None) * np.clip(y2 - y1 + o, 0, None)
    area_a = (a[:, 2] - a[:, 0] + o) * (a[:, 3] - a[:, 1] + o)
    area_b = (b[:, 2] - b[:, 0] + o) * (b[:, 3] - b[:, 1] + o)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def coverage(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Share of the area of every box in `a` (N, 4) inside every box in `b` (M, 4) -> (N, M)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    width = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    height = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(width, 0, None) * np.clip(height, 0, None)
    area = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    return inter / np.maximum(area[:, None], 1e-12)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy non-maximum suppression -> indices of the kept boxes, best score first.

    Ties in score are broken by input order, so the result is deterministic."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    keep: list[int] = []
    while order.size:
        best = int(order[0])
        keep.append(best)
        if order.size == 1:
            break
        overlaps = iou_matrix(boxes[best : best + 1], boxes[order[1:]])[0]
        order = order[1:][overlaps <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def drop_nested(boxes: np.ndarray, scores: np.ndarray, share: float, min_side: float) -> np.ndarray:
    """Indices (ascending) of the boxes (N, 4) kept when, largest first, every box of which more
    than `share` (0-1) of the area lies inside a larger kept box is dropped, if that box scores
    (N,) at least as high and its longer side is at least `min_side` pixels.

    Two passes at different scales can each see one face: one as the whole face, the other as a
    part of it (the forehead, one half), a box too much smaller than the face around it for
    IoU-based suppression to drop."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    side = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    inside = coverage(boxes, boxes)
    keep: list[int] = []
    for i in np.argsort(-area, kind="stable"):
        kept = np.asarray(keep, dtype=np.int64)
        holders = (inside[i, kept] > share) & (scores[kept] >= scores[i]) & (side[kept] >= min_side)
        if not holders.any():
            keep.append(int(i))
    return np.sort(np.asarray(keep, dtype=np.int64))
