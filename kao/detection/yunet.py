"""YuNet (libfacedetection, Apache-2.0): one network pass over one image tile.

The network takes a BGR float32 tensor (1, 3, H, W) with values 0-255 and H, W multiples of 32,
and predicts, for each cell of the stride-8, 16 and 32 grids, a class and an objectness score,
a box (centre offset and log size, in cell units) and 5 keypoints (offsets in cell units)."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from kao.models import model_path
from kao.models.runtime import onnx_session

STRIDES = (8, 16, 32)


@dataclass(frozen=True)
class RawDetections:
    """Detections of one pass, in pixels of the pass's input image.

    boxes: (N, 4) float32 [x1, y1, x2, y2]; scores: (N,) float32 in [0, 1];
    keypoints: (N, 5, 2) float32."""

    boxes: np.ndarray
    scores: np.ndarray
    keypoints: np.ndarray

    @staticmethod
    def empty() -> RawDetections:
        return RawDetections(
            np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32)
        )

    @staticmethod
    def concat(parts: list[RawDetections]) -> RawDetections:
        if not parts:
            return RawDetections.empty()
        return RawDetections(
            np.concatenate([p.boxes for p in parts]),
            np.concatenate([p.scores for p in parts]),
            np.concatenate([p.keypoints for p in parts]),
        )

    def sizes(self) -> np.ndarray:
        """(N,) the longer side of each box, pixels."""
        return np.maximum(self.boxes[:, 2] - self.boxes[:, 0], self.boxes[:, 3] - self.boxes[:, 1])

    def take(self, index: np.ndarray) -> RawDetections:
        return RawDetections(self.boxes[index], self.scores[index], self.keypoints[index])

    def mapped(self, dx: float, dy: float, sx: float = 1.0, sy: float = 1.0) -> RawDetections:
        """Detections with every point (x, y) moved to ((x + dx) / sx, (y + dy) / sy)."""
        offset = np.array([dx, dy], np.float32)
        scale = np.array([sx, sy], np.float32)
        boxes = ((self.boxes.reshape(-1, 2, 2) + offset) / scale).reshape(-1, 4)
        return RawDetections(boxes, self.scores, (self.keypoints + offset) / scale)


class YuNet:
    """One YuNet network. `run(rgb)` detects faces in one image (any size) in a single pass."""

    def __init__(self, file: str, threads: int | None = None) -> None:
        self.session = onnx_session(model_path("yunet", file), threads)
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, rgb: np.ndarray, min_score: float) -> RawDetections:
        """Detect faces in `rgb` (H, W, 3) uint8 -> detections scoring at least `min_score`,
        before non-maximum suppression, in pixels of `rgb`."""
        height, width = rgb.shape[:2]
        pad_h, pad_w = -height % 32, -width % 32
        if pad_h or pad_w:
            rgb = cv2.copyMakeBorder(rgb, 0, pad_h, 0, pad_w, cv2.BORDER_CONSTANT, value=0)
        # One copy: channels first, in the BGR order the network was trained on, as float32.
        tensor = np.ascontiguousarray(rgb.transpose(2, 0, 1)[::-1], dtype=np.float32)[None]
        outputs = dict(
            zip(self.output_names, self.session.run(None, {self.input_name: tensor}), strict=True)
        )
        parts = [
            self._decode(
                outputs, stride, (height + pad_h) // stride, (width + pad_w) // stride, min_score
            )
            for stride in STRIDES
        ]
        return RawDetections.concat(parts)

    @staticmethod
    def _decode(
        outputs: dict[str, np.ndarray], stride: int, rows: int, cols: int, min_score: float
    ) -> RawDetections:
        cls = np.clip(outputs[f"cls_{stride}"][0, :, 0], 0, 1)
        obj = np.clip(outputs[f"obj_{stride}"][0, :, 0], 0, 1)
        scores = np.sqrt(cls * obj)
        index = np.nonzero(scores >= min_score)[0]
        if index.size == 0:
            return RawDetections.empty()
        cells = np.stack([index % cols, index // cols], axis=1).astype(np.float32)
        bbox = outputs[f"bbox_{stride}"][0, index]
        centre = (cells + bbox[:, :2]) * stride
        size = np.exp(bbox[:, 2:4]) * stride
        boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1)
        kps = (outputs[f"kps_{stride}"][0, index].reshape(-1, 5, 2) + cells[:, None]) * stride
        return RawDetections(
            boxes.astype(np.float32), scores[index].astype(np.float32), kps.astype(np.float32)
        )
