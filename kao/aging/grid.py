"""A grid of one face at several ages: the original first, then one labelled tile per target
age, each the same square crop around the face."""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from kao.aging.prototypes import Prototypes
from kao.aging.transform import age_transform
from kao.align import crop_matrix, warp
from kao.face import Face

TILE = 256
"""Default tile side, pixels."""
CROP_SCALE = 1.25
"""Tile side over the face box's longer side."""
COLUMNS = 6
"""Tiles per row, at most."""


def label_tile(tile: np.ndarray, text: str) -> np.ndarray:
    """`tile` (S x S x 3 uint8) with `text` written on a dark band along its bottom."""
    tile = tile.copy()
    side = tile.shape[0]
    scale = side / 400
    thickness = max(1, round(side / 180))
    (width, height), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    top = side - height - baseline - 2 * thickness
    tile[top:] = (tile[top:] * 0.35).astype(np.uint8)
    origin = ((side - width) // 2, side - baseline - thickness)
    cv2.putText(
        tile,
        text,
        origin,
        cv2.FONT_HERSHEY_SIMPLEX,
        scale,
        (255, 255, 255),
        thickness,
        cv2.LINE_AA,
    )
    return tile


def age_grid(
    rgb: np.ndarray,
    face: Face,
    ages: Sequence[float],
    *,
    source_age: float,
    prototypes: Prototypes | None = None,
    strength: float = 1.0,
    tile: int = TILE,
    columns: int = COLUMNS,
) -> np.ndarray:
    """The grid (rows * tile x min(columns, tiles) * tile x 3 uint8 RGB) of `face` (with its
    mesh) in `rgb`: the original labelled with `source_age`, then the face aged to each of
    `ages` (years) by `age_transform`, row by row; unused cells are white."""
    matrix = crop_matrix(face, tile, scale=CROP_SCALE)
    tiles = [label_tile(warp(rgb, matrix, tile), f"original ({source_age:.0f})")]
    for age in ages:
        aged = age_transform(
            rgb,
            face,
            source_age=source_age,
            target_age=age,
            prototypes=prototypes,
            strength=strength,
        )
        tiles.append(label_tile(warp(aged, matrix, tile), f"age {age:g}"))
    width = min(columns, len(tiles))
    rows = math.ceil(len(tiles) / width)
    grid = np.full((rows * tile, width * tile, 3), 255, np.uint8)
    for index, image in enumerate(tiles):
        row, column = divmod(index, width)
        grid[row * tile : (row + 1) * tile, column * tile : (column + 1) * tile] = image
    return grid
