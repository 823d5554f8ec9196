"""Annotated images: boxes, scores and keypoints drawn at a size readable on any image."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from kao.face import Face

BOX_COLOUR = (40, 220, 40)
KEYPOINT_COLOURS = ((255, 60, 60), (60, 120, 255), (255, 220, 0), (255, 60, 255), (0, 220, 220))
"""RGB colour per keypoint, in `KEYPOINT_NAMES` order."""


def draw_faces(rgb: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
    """A copy of `rgb` (H x W x 3 uint8, RGB) with each face's box, score and keypoints drawn.

    Line width and text size follow the image size (about 1/400 of its shorter side), so the
    drawing stays visible on a 4,000 px photo and does not swamp a 200 px one."""
    canvas = np.ascontiguousarray(rgb).copy()
    unit = max(1, round(min(canvas.shape[:2]) / 400))
    font_scale = 0.4 * unit
    for face in faces:
        x1, y1, x2, y2 = (round(float(v)) for v in face.box)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), BOX_COLOUR, unit, cv2.LINE_AA)
        radius = max(1, min(unit * 2, round(face.width / 25)))
        for (x, y), colour in zip(face.keypoints, KEYPOINT_COLOURS, strict=True):
            cv2.circle(canvas, (round(float(x)), round(float(y))), radius, colour, -1, cv2.LINE_AA)
        _label(canvas, f"{face.score:.2f}", (x1, y1), font_scale, unit)
    return canvas


def _label(canvas: np.ndarray, text: str, corner: tuple[int, int], scale: float, unit: int) -> None:
    """Write `text` on a filled box just above `corner` (inside the image when at its top)."""
    (width, height), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, unit)
    x, y = corner
    top = y - height - baseline - 2 * unit
    if top < 0:
        top = y
    cv2.rectangle(
        canvas, (x, top), (x + width + 2 * unit, top + height + baseline + 2 * unit), BOX_COLOUR, -1
    )
    cv2.putText(
        canvas,
        text,
        (x + unit, top + height + unit),
        cv2.FONT_HERSHEY_SIMPLEX,
        scale,
        (0, 0, 0),
        unit,
        cv2.LINE_AA,
    )
