"""A region of interest for counting: a polygon in image pixels, the share of each density-map
cell that lies inside it (area-weighted, so an edge through a cell counts its share) and the
points (face centres, head points) inside it.

`--roi "x1,y1 x2,y2 x3,y3 ..."`: at least three vertices, x then y, in image pixels from the
top-left corner; when every number lies between 0 and 1 they are fractions of the width and
height instead ("0,0 0.5,0 0.5,1 0,1" is the left half of any frame). Every vertex must lie on
the image (0 <= x <= width, 0 <= y <= height); the polygon must have an area and its edges must
not cross. Points inside follow the even-odd rule with half-open edges, so two polygons that
share an edge split the image between them without counting any cell's share twice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import cv2
import numpy as np

from kao.errors import KaoError

OPTION = "--roi"
"""The option's name in messages (the CLI's, and the `roi` keyword's in Python)."""
SAMPLES = 8
"""Samples per cell side used to measure the share of a cell inside the polygon (64 per cell:
the share of a cell cut by an edge is measured to about 1/64)."""
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_VERTEX = re.compile(rf"\s*({_NUMBER})\s*,\s*({_NUMBER})\s*")


@dataclass(frozen=True)
class Roi:
    """A polygon as given: `vertices` ((x, y) pairs), in pixels or, when `fractions`, in
    fractions of the image's width and height. `polygon(width, height)` places it on an image."""

    vertices: tuple[tuple[float, float], ...]
    fractions: bool

    @classmethod
    def parse(cls, text: str) -> Roi:
        """`"x1,y1 x2,y2 x3,y3 ..."` (see the module's docstring); KaoError naming `--roi` when
        it is not at least three "x,y" pairs of finite numbers."""
        words = text.split()
        vertices = []
        for word in words:
            match = _VERTEX.fullmatch(word)
            if match is None:
                raise KaoError(
                    f'{OPTION}: {word!r} is not a vertex "x,y" (write the polygon as '
                    f'"x1,y1 x2,y2 x3,y3 ...", in pixels or fractions of the image)'
                )
            vertices.append((float(match[1]), float(match[2])))
        if len(vertices) < 3:
            raise KaoError(
                f"{OPTION}: a polygon needs at least 3 vertices, got {len(vertices)} in {text!r}"
            )
        if not np.isfinite(vertices).all():
            raise KaoError(f"{OPTION}: every coordinate must be a finite number, got {text!r}")
        fractions = all(0.0 <= value <= 1.0 for vertex in vertices for value in vertex)
        return cls(tuple(vertices), fractions)

    def polygon(self, width: int, height: int) -> Polygon:
        """The polygon on a `width` x `height` image, in pixels; KaoError naming `--roi` when a
        vertex lies off the image, the polygon has no area or its edges cross."""
        points = np.array(self.vertices, np.float64)
        if self.fractions:
            points *= (width, height)
        off = [
            f"{x:g},{y:g}"
            for (x, y), (px, py) in zip(self.vertices, points, strict=True)
            if not (0 <= px <= width and 0 <= py <= height)
        ]
        if off:
            raise KaoError(
                f"{OPTION}: vertex {', '.join(off)} lies outside the {width} x {height} px image"
            )
        polygon = Polygon(points)
        if polygon.edges_cross():
            raise KaoError(f"{OPTION}: the polygon's edges cross; list its vertices in order")
        if polygon.area < 1.0:
            raise KaoError(f"{OPTION}: the polygon has no area (its vertices are on one line)")
        return polygon


@dataclass(frozen=True, eq=False)
class Polygon:
    """A simple polygon, `points` (N, 2) float64 (x, y) image pixels, N >= 3."""

    points: np.ndarray
    _shares: dict[tuple[int, int, float, float], np.ndarray] = field(
        default_factory=dict, init=False, repr=False
    )

    @property
    def area(self) -> float:
        """Area in square pixels (shoelace formula)."""
        x, y = self.points.T
        return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)

    def edges_cross(self) -> bool:
        """Whether two edges that are not neighbours intersect (a self-crossing polygon)."""
        n = len(self.points)
        edges = [(self.points[i], self.points[(i + 1) % n]) for i in range(n)]
        for i in range(n):
            for j in range(i + 2, n):
                if i == 0 and j == n - 1:
                    continue  # the first and last edges share a vertex
                if _segments_cross(*edges[i], *edges[j]):
                    return True
        return False

    def contains(self, xy: np.ndarray) -> np.ndarray:
        """(M, 2) float (x, y) pixels -> (M,) bool: inside by the even-odd rule."""
        xy = np.asarray(xy, np.float64).reshape(-1, 2)
        return self._inside(xy[:, 0], xy[:, 1])

    def cell_shares(self, shape: tuple[int, int], cell: tuple[float, float]) -> np.ndarray:
        """(h, w) float32 share (0-1) of each cell of an (h, w) map inside the polygon, a cell
        (row i, column j) covering x in [j cx, (j + 1) cx) and y in [i cy, (i + 1) cy) image
        pixels for `cell` = (cx, cy) (the share of a cell an edge passes through is measured on
        `SAMPLES` x `SAMPLES` points); kept for the next call with the same map size (the frames
        of a video)."""
        key = (*shape, *cell)
        if key not in self._shares:
            self._shares[key] = self._measure(shape, cell)
        return self._shares[key]

    def _measure(self, shape: tuple[int, int], cell: tuple[float, float]) -> np.ndarray:
        """Cells no edge passes through are wholly in or out: their centre decides. The cells
        an edge passes through (found by walking each edge in steps of under half a cell, with
        their neighbours) are measured on `SAMPLES` x `SAMPLES` points."""
        rows, cols = shape
        cx, cy = cell
        xs = (np.arange(cols) + 0.5) * cx
        ys = (np.arange(rows) + 0.5) * cy
        shares = self._inside(xs[None, :], ys[:, None]).astype(np.float32)
        crossed = np.zeros(shape, np.uint8)
        for start, end in zip(self.points, np.roll(self.points, -1, axis=0), strict=True):
            steps = int(np.ceil(2 * max(abs(end[0] - start[0]) / cx, abs(end[1] - start[1]) / cy)))
            along = start + np.linspace(0.0, 1.0, steps + 1)[:, None] * (end - start)
            crossed[
                np.clip((along[:, 1] // cy).astype(int), 0, rows - 1),
                np.clip((along[:, 0] // cx).astype(int), 0, cols - 1),
            ] = 1
        row, col = np.nonzero(cv2.dilate(crossed, np.ones((3, 3), np.uint8)))
        offsets = (np.arange(SAMPLES) + 0.5) / SAMPLES
        x = (col[:, None] + offsets) * cx  # (K, SAMPLES) sample columns of each crossed cell
        y = (row[:, None] + offsets) * cy
        shares[row, col] = self._inside(x[:, None, :], y[:, :, None]).mean(axis=(1, 2))
        return shares

    def mask(self, height: int, width: int) -> np.ndarray:
        """(height, width) bool: the pixels whose centres are inside."""
        xs = np.arange(width) + 0.5
        ys = np.arange(height) + 0.5
        return self._inside(xs[None, :], ys[:, None])

    def _inside(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Even-odd test of points (x, y), arrays that broadcast together."""
        inside = np.zeros(np.broadcast_shapes(np.shape(x), np.shape(y)), bool)
        n = len(self.points)
        for k in range(n):
            (xa, ya), (xb, yb) = self.points[k], self.points[(k + 1) % n]
            if ya == yb:
                continue  # a horizontal edge is never crossed by a horizontal ray
            crosses = (ya > y) != (yb > y)
            at = xa + (y - ya) * (xb - xa) / (yb - ya)
            inside ^= crosses & (x < at)
        return inside


def _segments_cross(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: np.ndarray) -> bool:
    """Whether segments ab and cd share a point."""

    def side(p: np.ndarray, q: np.ndarray, r: np.ndarray) -> float:
        return float((q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0]))

    def between(p: np.ndarray, q: np.ndarray, r: np.ndarray) -> bool:
        return bool(min(p[0], q[0]) <= r[0] <= max(p[0], q[0])) and bool(
            min(p[1], q[1]) <= r[1] <= max(p[1], q[1])
        )

    d1, d2, d3, d4 = side(c, d, a), side(c, d, b), side(a, b, c), side(a, b, d)
    if ((d1 > 0 > d2) or (d1 < 0 < d2)) and ((d3 > 0 > d4) or (d3 < 0 < d4)):
        return True
    return (
        (d1 == 0 and between(c, d, a))
        or (d2 == 0 and between(c, d, b))
        or (d3 == 0 and between(a, b, c))
        or (d4 == 0 and between(a, b, d))
    )


def map_cell(shape: tuple[int, int], width: int, height: int) -> tuple[float, float]:
    """Image pixels (x, y) per cell of an (h, w) density map taken to cover a `width` x
    `height` image, as the heat map draws it (exact for MCNN on sizes that are multiples of 4
    and for a trained counter on sizes its stride divides; otherwise off by under a cell across
    the image)."""
    rows, cols = shape
    return width / cols, height / rows
