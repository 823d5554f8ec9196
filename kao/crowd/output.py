"""What `kao count` reports of a count: the whole image's, or a region's (`--roi`), with head
points (`--points`) if asked.

In a region a density count is the map summed over the polygon, each cell weighted by the share
of its area inside (`kao.crowd.roi.Polygon.cell_shares`); a detection count is the number of
faces whose box centre is inside. The region's 80% range is the method's range for that count
(`kao.crowd.counting.interval`). Head points are approximate: the density map's peaks
(`kao.crowd.points`), or the detected faces' box centres.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from kao.crowd.counting import CrowdCount, interval
from kao.crowd.points import head_points
from kao.crowd.roi import Polygon, Roi, map_cell
from kao.face import Face


@dataclass(frozen=True)
class CountOutput:
    """`whole`: the image's count; `shown`: the count reported, `whole` restricted to `polygon`
    (its count, range and faces inside; `whole` itself without a polygon); `points`: (K, 2)
    float32 (x, y) image pixels of the head points inside, or None when not asked for."""

    whole: CrowdCount
    shown: CrowdCount
    polygon: Polygon | None = None
    points: np.ndarray | None = None

    def to_dict(self) -> dict[str, Any]:
        """`shown.to_dict()` (count, estimate, range, method, faces), plus with a region `roi`:
        its `polygon` ([[x, y], ...] px) and the whole image's `image_count`; with points,
        `points` ([[x, y], ...] px, 0.1)."""
        record = self.shown.to_dict()
        if self.polygon is not None:
            record["roi"] = {
                "polygon": [
                    [round(float(x), 1), round(float(y), 1)] for x, y in self.polygon.points
                ],
                "image_count": round(self.whole.count),
            }
        if self.points is not None:
            record["points"] = [[round(float(x), 1), round(float(y), 1)] for x, y in self.points]
        return record


def count_output(
    result: CrowdCount,
    width: int,
    height: int,
    *,
    roi: Roi | Polygon | str | None = None,
    points: bool = False,
) -> CountOutput:
    """`result`, the count of a `width` x `height` image, restricted to `roi` (a `Roi`, its
    "x1,y1 x2,y2 ..." text, or a `Polygon` already placed on images of this size; KaoError
    naming `--roi` when it does not fit the image), with head points when `points`. The
    density map is taken to cover the image (`map_cell`)."""
    if isinstance(roi, str):
        roi = Roi.parse(roi)
    polygon = roi.polygon(width, height) if isinstance(roi, Roi) else roi
    density = result.density
    if density is None:
        found = _centres(result) if points else None
    else:
        cell = map_cell(density.shape, width, height)
        found = head_points(density, cell) if points else None
    if polygon is None:
        return CountOutput(result, result, None, found)
    inside = polygon.contains(_centres_of(result.faces))
    faces = [face for face, keep in zip(result.faces, inside, strict=True) if keep]
    if density is None:
        people = float(len(faces))
    else:
        people = float((density * polygon.cell_shares(density.shape, cell)).sum())
    low, high = interval(result.method, people)
    shown = dataclasses.replace(result, count=people, low=low, high=high, faces=faces)
    return CountOutput(result, shown, polygon, found[polygon.contains(found)] if points else None)


def _centres(result: CrowdCount) -> np.ndarray:
    """(K, 2) float32 box centres of the counted faces."""
    return _centres_of(result.faces if result.method == "detection" else [])


def _centres_of(faces: list[Face]) -> np.ndarray:
    """(K, 2) float32 box centres of `faces`."""
    boxes = np.array([face.box for face in faces], np.float32).reshape(-1, 4)
    return (boxes[:, :2] + boxes[:, 2:]) / 2
