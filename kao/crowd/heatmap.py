"""Drawing a count: the density map as a heat map over the image (or the detected faces), and
the count with the method that found it."""

from __future__ import annotations

import cv2
import numpy as np

from kao.crowd.counting import CrowdCount
from kao.render import draw_faces

OPACITY = 0.6
"""Largest share of the heat-map colour in a pixel (where the density is highest)."""


def heat_map(rgb: np.ndarray, density: np.ndarray) -> np.ndarray:
    """A copy of `rgb` (H x W x 3 uint8) under a JET-coloured `density` (h x w float32, any
    resolution: resized to the image), blended in proportion to the density (relative to its
    maximum), so that empty areas keep the photo as it was."""
    height, width = rgb.shape[:2]
    values = cv2.resize(density.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR)
    peak = float(values.max())
    level = np.clip(values / peak, 0.0, 1.0) if peak > 0 else np.zeros_like(values)
    colour = cv2.applyColorMap(np.round(level * 255).astype(np.uint8), cv2.COLORMAP_JET)
    colour = cv2.cvtColor(colour, cv2.COLOR_BGR2RGB).astype(np.float32)
    alpha = (OPACITY * np.sqrt(level))[..., None]
    return np.round(rgb * (1.0 - alpha) + colour * alpha).astype(np.uint8)


def draw_count(rgb: np.ndarray, result: CrowdCount) -> np.ndarray:
    """A copy of `rgb` (H x W x 3 uint8 RGB) with `result` drawn: the heat map of its density map
    (or the boxes of the detected faces) and a caption "N people (method)" at the top left."""
    if result.density is None:
        canvas = draw_faces(rgb, result.faces)
    else:
        canvas = heat_map(rgb, result.density)
    text = f"{round(result.count)} people ({result.method})"
    scale = max(0.5, min(rgb.shape[:2]) / 600)
    thickness = max(1, round(scale * 2))
    (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    pad = max(2, round(h / 3))
    cv2.rectangle(canvas, (0, 0), (w + 2 * pad, h + base + 2 * pad), (0, 0, 0), -1)
    cv2.putText(
        canvas,
        text,
        (pad, pad + h),
        cv2.FONT_HERSHEY_SIMPLEX,
        scale,
        (255, 255, 255),
        thickness,
        cv2.LINE_AA,
    )
    return canvas
