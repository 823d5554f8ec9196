"""A count series drawn as a PNG with OpenCV: the 80% range as a pale band, each counted frame's
count as a thin grey line, the smoothed count as a thick blue line, against time in seconds."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from kao.crowd.series import Row
from kao.errors import KaoError

SIZE = (1000, 500)
"""Plot width and height, pixels."""
MARGIN = (70, 50, 30, 55)
"""Left, top, right and bottom margins around the axes, pixels (the legend is in the top one)."""
FONT = cv2.FONT_HERSHEY_SIMPLEX
BAND = (255, 225, 200)
"""BGR of the range band."""
RAW = (150, 150, 150)
"""BGR of the per-frame count."""
SMOOTHED = (200, 90, 20)
"""BGR of the smoothed count."""
INK = (40, 40, 40)
GRID = (225, 225, 225)


def nice_step(span: float, ticks: int = 6) -> float:
    """A tick spacing of 1, 2 or 5 times a power of ten giving about `ticks` ticks over `span`."""
    raw = max(span, 1e-9) / ticks
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= raw)


def plot_series(rows: Sequence[Row], path: Path, title: str = "") -> None:
    """Draw `rows` (time order) to the PNG `path`; KaoError when there is no row or `path` does
    not end in .png."""
    if path.suffix.lower() != ".png":
        raise KaoError(f"--plot {path}: write a .png file")
    if not rows:
        raise KaoError(f"--plot {path}: no frame was counted")
    width, height = SIZE
    left, top, right, bottom = MARGIN
    t = np.array([r.time_s for r in rows])
    series = {
        name: np.array([getattr(r, name) for r in rows])
        for name in ("count", "smoothed", "low", "high")
    }
    t0, t1 = float(t[0]), float(max(t[-1], t[0] + 1e-3))
    y1 = max(1.0, float(series["high"].max()), float(series["count"].max())) * 1.05
    canvas = np.full((height, width, 3), 255, np.uint8)

    def to_px(times: np.ndarray, values: np.ndarray) -> np.ndarray:
        x = left + (times - t0) / (t1 - t0) * (width - left - right)
        y = height - bottom - values / y1 * (height - top - bottom)
        return np.round(np.stack([x, y], axis=1)).astype(np.int32)

    x_step, y_step = nice_step(t1 - t0), nice_step(y1)
    for tick in np.arange(math.ceil(t0 / x_step) * x_step, t1 + 1e-9, x_step):
        ((x, _),) = to_px(np.array([tick]), np.array([0.0]))
        cv2.line(canvas, (x, top), (x, height - bottom), GRID, 1)
        _text(canvas, f"{tick:g}", (x - 10, height - bottom + 20))
    for tick in np.arange(0.0, y1, y_step):
        ((_, y),) = to_px(np.array([t0]), np.array([tick]))
        cv2.line(canvas, (left, y), (width - right, y), GRID, 1)
        _text(canvas, f"{tick:g}", (left - 45, y + 5))
    band = np.concatenate([to_px(t, series["high"]), to_px(t, series["low"])[::-1]])
    cv2.fillPoly(canvas, [band], BAND)
    cv2.polylines(canvas, [to_px(t, series["count"])], False, RAW, 1, cv2.LINE_AA)
    cv2.polylines(canvas, [to_px(t, series["smoothed"])], False, SMOOTHED, 3, cv2.LINE_AA)
    cv2.rectangle(canvas, (left, top), (width - right, height - bottom), INK, 1)
    _text(canvas, "time (s)", (width // 2 - 30, height - 12))
    _text(canvas, "people", (8, top - 10))
    legend = [(BAND, "80% range", 8), (RAW, "count", 1), (SMOOTHED, "smoothed", 3)]
    x = left + 10
    for colour, label, thickness in legend:
        cv2.line(canvas, (x, 20), (x + 25, 20), colour, thickness)
        _text(canvas, label, (x + 30, 25))
        x += 40 + 10 * len(label) + 20
    if title:
        _text(canvas, title, (x + 20, 25))
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), canvas):
        raise KaoError(f"--plot {path}: the file could not be written")


def _text(canvas: np.ndarray, text: str, origin: tuple[int, int]) -> None:
    cv2.putText(canvas, text, origin, FONT, 0.45, INK, 1, cv2.LINE_AA)
