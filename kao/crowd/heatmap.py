"""Drawing a count: the density map as a heat map over the image (or the detected faces), and
the count with the method that found it."""

from __future__ import annotations

import cv2
import numpy as np

from kao.crowd.counting import CrowdCount
from kao.render import draw_banner, draw_faces

TOP_PERCENTILE = 99.0
"""The density's range tops at this percentile of its pixels, not at its maximum: a few peak
pixels would otherwise leave the rest of the crowd faint."""
FLOOR = 0.05
"""Levels (share of the range) below this keep the photo as it was."""
RAMP = 0.2
"""Levels from `FLOOR` to `FLOOR + RAMP` fade in; above it the colour is at `OPACITY`."""
OPACITY = 0.65
"""Share of the heat-map colour in a pixel where the density is in the upper part of its range."""
CONTOURS = (0.25, 0.5, 0.75)
"""Levels outlined by a white contour line."""
CONTOUR_COLOUR = (255, 255, 255)


def density_levels(density: np.ndarray, height: int, width: int) -> np.ndarray:
    """`density` (h x w float, any resolution) resized to `height` x `width` and scaled to its
    range: 0 where it is 0, 1 from its `TOP_PERCENTILE` up (float32)."""
    values = cv2.resize(density.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    top = float(np.percentile(values, TOP_PERCENTILE)) or float(values.max())
    if top <= 0:
        return np.zeros_like(values)
    return np.clip(values / top, 0.0, 1.0)


def heat_map(rgb: np.ndarray, density: np.ndarray) -> np.ndarray:
    """A copy of `rgb` (H x W x 3 uint8) under a JET-coloured `density` (h x w float32, any
    resolution: resized to the image) with white contours at `CONTOURS`: the colour's opacity
    rises with the density's level (`density_levels`) from none below `FLOOR` to `OPACITY`, so
    empty areas keep the photo as it was and the crowd stands out."""
    height, width = rgb.shape[:2]
    level = density_levels(density, height, width)
    colour = cv2.applyColorMap(np.round(level * 255).astype(np.uint8), cv2.COLORMAP_JET)
    colour = cv2.cvtColor(colour, cv2.COLOR_BGR2RGB).astype(np.float32)
    alpha = (OPACITY * np.clip((level - FLOOR) / RAMP, 0.0, 1.0))[..., None]
    canvas = np.round(rgb * (1.0 - alpha) + colour * alpha).astype(np.uint8)
    line = max(1, round(max(height, width) / 800))
    for threshold in CONTOURS:
        mask = (level >= threshold).astype(np.uint8)
        contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(canvas, contours, -1, CONTOUR_COLOUR, line, cv2.LINE_AA)
    return canvas


def draw_count(rgb: np.ndarray, result: CrowdCount) -> np.ndarray:
    """A copy of `rgb` (H x W x 3 uint8 RGB) with `result` drawn: the heat map of its density map
    (or the boxes of the detected faces) and a caption "N people (method)" at the top left."""
    if result.density is None:
        canvas = draw_faces(rgb, result.faces, {"box"})
    else:
        canvas = heat_map(rgb, result.density)
    count = round(result.count)
    draw_banner(canvas, f"{count} {'person' if count == 1 else 'people'} ({result.method})")
    return canvas
