"""Photos made worse on purpose, and readings binned by the quality parts measured on them:
the accuracy-versus-quality curves of `kao eval age-gender --quality` and `kao eval emotion
--quality`, on which the quality minimums of `kao.quality.MIN_PARTS` are chosen."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

SHARPNESS_BINS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 1.01)
EXPOSURE_BINS = (0.0, 0.25, 0.5, 0.75, 0.9, 1.01)
YAW_BINS = (0.0, 15.0, 30.0, 45.0, 60.0, 90.1)
"""Bins (lower edges included) of the measured quality parts: sharpness, exposure, |yaw| deg."""


def degraded(rgb: np.ndarray, view: str) -> np.ndarray:
    """`rgb` (H x W x 3 uint8) as `view` names it: "original", "blur S" (Gaussian, sigma S px)
    or "light F" (pixel values times F, clipped to 0-255)."""
    kind, _, amount = view.partition(" ")
    if kind == "blur":
        return cv2.GaussianBlur(rgb, (0, 0), float(amount))
    if kind == "light":
        return np.clip(rgb.astype(np.float32) * float(amount), 0, 255).astype(np.uint8)
    return rgb


def binned(
    values: np.ndarray, edges: Sequence[float], rows: dict[str, np.ndarray]
) -> list[dict[str, Any]]:
    """Per bin [edges[i], edges[i + 1]) of `values` (N,): n and the mean of each of `rows`
    ((N,) arrays, e.g. absolute age errors), rounded; empty bins are left out."""
    table = []
    for low, high in itertools.pairwise(edges):
        inside = (values >= low) & (values < high)
        if inside.any():
            means = {name: round(float(v[inside].mean()), 4) for name, v in rows.items()}
            table.append({"from": low, "to": high, "n": int(inside.sum()), **means})
    return table


def curve(
    views: Sequence[str],
    view: np.ndarray,
    sharpness: np.ndarray,
    exposure: np.ndarray,
    measures: dict[str, np.ndarray],
    *,
    yaw: np.ndarray | None = None,
) -> dict[str, Any]:
    """The accuracy-versus-quality report of readings (N,) of the views `views` ("original",
    "blur S", "light F"): `view` names each reading's view, `sharpness` and `exposure` its
    measured parts, `measures` per-reading figures to average (e.g. absolute age error, 1.0
    when right), `yaw` |yaw| in degrees of the original photo. Returns {"faces" (readings of
    the original), "views": [{"view", "n", "sharpness", "exposure", *measures}], "sharpness"
    (original and blurred readings), "exposure" (original and lit), "yaw" (original; only with
    `yaw`): `binned` tables}."""

    def of(kinds: tuple[str, ...]) -> np.ndarray:
        return np.array([v.split(" ")[0] in kinds for v in view], bool)

    def table(values: np.ndarray, edges: Sequence[float], chosen: np.ndarray) -> list[Any]:
        return binned(values[chosen], edges, {k: v[chosen] for k, v in measures.items()})

    rows = []
    for name in views:
        chosen = view == name
        rows.append(
            {
                "view": name,
                "n": int(chosen.sum()),
                "sharpness": round(float(sharpness[chosen].mean()), 3),
                "exposure": round(float(exposure[chosen].mean()), 3),
                **{k: round(float(v[chosen].mean()), 4) for k, v in measures.items()},
            }
        )
    original = of(("original",))
    report: dict[str, Any] = {
        "faces": int(original.sum()),
        "views": rows,
        "sharpness": table(sharpness, SHARPNESS_BINS, of(("original", "blur"))),
        "exposure": table(exposure, EXPOSURE_BINS, of(("original", "light"))),
    }
    if yaw is not None:
        report["yaw"] = table(yaw, YAW_BINS, original)
    return report
