"""Drawing a count: the density map as a heat map over the image (or the detected faces), a
region of interest and head points when there are, and the count with its range and the method
that found it. Density maps of any resolution (MCNN's 1/4 of the image, the trained counters'
1/16) are resized to the image."""

from __future__ import annotations

import math

import cv2
import numpy as np

from kao.crowd.counting import CrowdCount
from kao.crowd.output import CountOutput
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
DIM = 0.45
"""Brightness kept outside a region of interest."""
ROI_COLOUR = (255, 230, 0)
"""RGB of a region's outline."""
POINT_COLOUR = (255, 40, 200)
"""RGB of a head point (a dot in a black ring)."""


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


def draw_count(rgb: np.ndarray, count: CrowdCount | CountOutput) -> np.ndarray:
    """A copy of `rgb` (H x W x 3 uint8 RGB) with `count` drawn: the heat map of its density map
    (or the boxes of the detected faces), with a region: the outside dimmed to `DIM` and the
    polygon outlined; the head points as rings; and a caption "N people (low-high, method)" at
    the top left (the region's count when there is one)."""
    output = count if isinstance(count, CountOutput) else CountOutput(count, count)
    result, shown = output.whole, output.shown
    if result.density is None:
        canvas = draw_faces(rgb, shown.faces, {"box"})
    else:
        canvas = heat_map(rgb, result.density)
    height, width = canvas.shape[:2]
    line = max(1, round(max(height, width) / 500))
    if output.polygon is not None:
        outside = ~output.polygon.mask(height, width)
        canvas[outside] = np.round(canvas[outside] * DIM).astype(np.uint8)
        vertices = np.round(output.polygon.points).astype(np.int32)
        cv2.polylines(canvas, [vertices], True, ROI_COLOUR, line + 1, cv2.LINE_AA)
    if output.points is not None:
        radius = max(2, round(max(height, width) / 250))
        for x, y in np.round(output.points).astype(int):
            cv2.circle(canvas, (int(x), int(y)), radius + line, (0, 0, 0), -1, cv2.LINE_AA)
            cv2.circle(canvas, (int(x), int(y)), radius, POINT_COLOUR, -1, cv2.LINE_AA)
    people = round(shown.count)
    where = " in the region" if output.polygon is not None else ""
    low, high = math.floor(shown.low), math.ceil(shown.high)
    draw_banner(
        canvas,
        f"{people} {'person' if people == 1 else 'people'}{where} ({low}-{high}, {shown.method})",
    )
    return canvas
