"""The masked-face pass: UltraFace RFB-640 masked-face v2 (MIT), which also finds faces behind
a mask, where YuNet misses about one in five (see docs/BENCHMARKS.md).

The network takes an RGB float32 tensor (1, 3, 480, 640) with values (x - 127) / 128 and gives,
for each of its 17,640 priors, the probabilities of background, face and masked face and a box
in corners form, as fractions of the input's width and height. It gives no keypoints: a box it
adds gets the 5 keypoints at their mean place in such a box (`KEYPOINTS_IN_BOX`)."""

from __future__ import annotations

import cv2
import numpy as np

from kao.detection.yunet import RawDetections
from kao.models import model_path
from kao.models.runtime import onnx_session

MODEL = ("ultraface", "RFB-640-masked_face-v2.onnx")
INPUT_SIZE = (640, 480)
"""Width, height of the network's input."""
PAD = 0.3
"""Border added on every side, as a fraction of the image's long side, before the pass: most
masked faces it misses are cut by the frame (a mask photo cropped from the brows to the chin),
and the network finds a face only when all of it is inside the frame."""
KEYPOINTS_IN_BOX = np.array(
    [[0.258, 0.267], [0.711, 0.262], [0.491, 0.554], [0.287, 0.721], [0.687, 0.718]], np.float32
)
"""Median position of YuNet's 5 keypoints in the UltraFace box of the same face, as fractions of
the box's width and height (from faces both detectors found in ../shared/data/mask)."""


MIN_SIDE = 0.1
"""Smallest face the pass keeps, as a fraction of the image's long side: it is there for the
large faces YuNet misses (in the padded, down-scaled input, smaller faces are unreliable: on the
WIDER FACE subset its only extra face below this size was a false one)."""


class MaskedFaceNet:
    """The UltraFace masked-face network. `run(rgb)` detects faces, masked or not, in one pass."""

    def __init__(self, threads: int | None = None) -> None:
        self.session = onnx_session(model_path(*MODEL), threads)
        self.input_name = self.session.get_inputs()[0].name

    def run(self, rgb: np.ndarray, min_score: float) -> RawDetections:
        """Faces in `rgb` (H, W, 3) uint8 scoring at least `min_score` (face or masked face)
        and at least `MIN_SIDE` of its long side, before non-maximum suppression, in pixels of
        `rgb`; keypoints from `KEYPOINTS_IN_BOX`."""
        height, width = rgb.shape[:2]
        pad = round(PAD * max(height, width))
        padded = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
        resized = cv2.resize(padded, INPUT_SIZE, interpolation=cv2.INTER_LINEAR)
        tensor = ((resized.astype(np.float32) - 127.0) / 128.0).transpose(2, 0, 1)[None]
        scores, boxes = self.session.run(None, {self.input_name: np.ascontiguousarray(tensor)})
        face = scores[0, :, 1:].max(axis=1)
        size = np.array(padded.shape[1::-1] * 2, np.float32)
        found = boxes[0] * size - pad
        sides = np.maximum(found[:, 2] - found[:, 0], found[:, 3] - found[:, 1])
        index = np.nonzero((face >= min_score) & (sides >= MIN_SIDE * max(height, width)))[0]
        if index.size == 0:
            return RawDetections.empty()
        found = found[index]
        corner, extent = found[:, None, :2], (found[:, 2:] - found[:, :2])[:, None]
        keypoints = corner + KEYPOINTS_IN_BOX[None] * extent
        return RawDetections(
            found.astype(np.float32), face[index].astype(np.float32), keypoints.astype(np.float32)
        )
