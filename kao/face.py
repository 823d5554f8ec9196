"""The `Face` record that travels through kao's stages and is enriched by each one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

KEYPOINT_NAMES = ("right_eye", "left_eye", "nose_tip", "right_mouth_corner", "left_mouth_corner")
"""Order of the 5 keypoints. Right/left are the subject's: the right eye is on the image's left."""


@dataclass
class Face:
    """One face found in an image.

    Attributes:
        box: float32 array of shape (4,), ``[x1, y1, x2, y2]`` in pixels of the original image.
        score: detection confidence in [0, 1].
        keypoints: float32 array of shape (5, 2), ``(x, y)`` pixels, in `KEYPOINT_NAMES` order.
        embedding: float32 array of shape (D,), L2-normalised, once the face has been embedded
            (see `kao.embed`), else None.
    """

    box: np.ndarray
    score: float
    keypoints: np.ndarray
    embedding: np.ndarray | None = None

    @property
    def width(self) -> float:
        """Box width in pixels."""
        return float(self.box[2] - self.box[0])

    @property
    def height(self) -> float:
        """Box height in pixels."""
        return float(self.box[3] - self.box[1])

    @property
    def area(self) -> float:
        """Box area in square pixels."""
        return self.width * self.height

    def to_dict(self, *, embedding: bool = False) -> dict[str, Any]:
        """JSON-ready form: box and keypoints rounded to 0.1 px, score to 4 decimals; with
        `embedding`, the embedding as a list of floats (when the face has one)."""
        record: dict[str, Any] = {
            "box": [round(float(v), 1) for v in self.box],
            "score": round(float(self.score), 4),
            "keypoints": [[round(float(x), 1), round(float(y), 1)] for x, y in self.keypoints],
        }
        if embedding and self.embedding is not None:
            record["embedding"] = [float(v) for v in self.embedding]
        return record
