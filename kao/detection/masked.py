"""The masked-face pass: UltraFace RFB-640 masked-face v2 (MIT), which also finds faces behind
a mask, where YuNet misses about one in five (see docs/BENCHMARKS.md).

The published network takes a fixed (1, 3, 480, 640) input and decodes its boxes inside the
graph against priors baked in for that size. kao runs it at `INPUT_SIZE` instead (a quarter of
the pixels: the faces the pass keeps are large), so `fully_convolutional` rewrites the graph
once (cached beside kao's other conversions): the input's height and width become free and the
outputs are the class probabilities and the raw box regressions, which `decode` turns into
boxes against priors made for the input's size (`priors`: UltraFace's anchor sizes and strides).

Input: RGB float32 (1, 3, H, W) with values (x - 127) / 128. Output for each prior: the
probabilities of background, face and masked face, and a box in corners form, as fractions of
the input's width and height. It gives no keypoints: a box it adds gets the 5 keypoints at their
mean place in such a box (`KEYPOINTS_IN_BOX`)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from kao.detection.yunet import RawDetections
from kao.models import model_path
from kao.models.converted import converted
from kao.models.runtime import onnx_session

MODEL = ("ultraface", "RFB-640-masked_face-v2.onnx")
CONVERTED = "RFB-masked_face-v2-dynamic.onnx"
CONVERTER_VERSION = 1
"""Bumped whenever `fully_convolutional` changes its output, so that cached copies are redone."""
SCORES, REGRESSION = "scores", "462"
"""The graph's class probabilities and the tensor of raw box regressions its decoding reads."""
INPUT_SIZE = (512, 384)
"""Width, height of the network's input."""
STRIDES = (8, 16, 32, 64)
ANCHORS = ((10, 16, 24), (32, 48), (64, 96), (128, 192, 256))
"""Anchor sides in input pixels at each stride (UltraFace's `min_boxes`)."""
CENTER_VARIANCE, SIZE_VARIANCE = 0.1, 0.2
"""Scales of the centre and log-size regressions."""
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

MAX_ASPECT = 0.5 / MIN_SIDE
"""Images whose long side is more than this many times their short side (20) skip the pass: a
face of at least `MIN_SIDE` of the long side would lie more than half outside the frame."""


class MaskedFaceNet:
    """The UltraFace masked-face network. `run(rgb)` detects faces, masked or not, in one pass."""

    def __init__(self, threads: int | None = None) -> None:
        source = model_path(*MODEL)
        self.session = onnx_session(
            converted(MODEL[0], CONVERTED, source, CONVERTER_VERSION, fully_convolutional),
            threads,
        )
        self.input_name = self.session.get_inputs()[0].name
        self.priors = priors(*INPUT_SIZE)

    def run(self, rgb: np.ndarray, min_score: float) -> RawDetections:
        """Faces in `rgb` (H, W, 3) uint8 scoring at least `min_score` (face or masked face)
        and at least `MIN_SIDE` of its long side, before non-maximum suppression, in pixels of
        `rgb`; keypoints from `KEYPOINTS_IN_BOX`. None in an image longer than `MAX_ASPECT`
        times its short side. Memory does not grow with the image: the network's input is
        sampled from `rgb` directly (`padded_input`)."""
        height, width = rgb.shape[:2]
        long_side = max(height, width)
        if long_side > MAX_ASPECT * min(height, width):
            return RawDetections.empty()
        pad = round(PAD * long_side)
        resized = padded_input(rgb, pad)
        # (x - 127) / 128, channels first, written into the input buffer without temporaries.
        tensor = np.empty((1, 3, *resized.shape[:2]), np.float32)
        np.subtract(resized.transpose(2, 0, 1), np.float32(127.0), out=tensor[0], dtype=np.float32)
        tensor *= np.float32(1 / 128)
        scores, regression = self.session.run(None, {self.input_name: tensor})
        face = scores[0, :, 1:].max(axis=1)
        size = np.array([width + 2 * pad, height + 2 * pad] * 2, np.float32)
        found = decode(regression[0], self.priors) * size - pad
        sides = np.maximum(found[:, 2] - found[:, 0], found[:, 3] - found[:, 1])
        index = np.nonzero((face >= min_score) & (sides >= MIN_SIDE * long_side))[0]
        if index.size == 0:
            return RawDetections.empty()
        found = found[index]
        corner, extent = found[:, None, :2], (found[:, 2:] - found[:, :2])[:, None]
        keypoints = corner + KEYPOINTS_IN_BOX[None] * extent
        return RawDetections(
            found.astype(np.float32), face[index].astype(np.float32), keypoints.astype(np.float32)
        )


def padded_input(rgb: np.ndarray, pad: int) -> np.ndarray:
    """The network's input: `rgb` (H, W, 3) uint8 with a black border of `pad` pixels on every
    side, resized to `INPUT_SIZE` -> (384, 512, 3) uint8. One warp samples it straight from
    `rgb`, as `cv2.resize` (bilinear, pixel centres aligned) would from the padded image, which
    is never made: (H + 2 pad) x (W + 2 pad) pixels is 36,000 x 96,000 for a 3 x 60,000 image."""
    height, width = rgb.shape[:2]
    out_width, out_height = INPUT_SIZE
    sx, sy = (width + 2 * pad) / out_width, (height + 2 * pad) / out_height
    # Input pixel (u, v) samples the padded image at ((u + 0.5) sx - 0.5, (v + 0.5) sy - 0.5).
    matrix = np.array([[sx, 0.0, 0.5 * sx - 0.5 - pad], [0.0, sy, 0.5 * sy - 0.5 - pad]])
    return cv2.warpAffine(
        rgb,
        matrix,
        INPUT_SIZE,
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(0, 0, 0),
    )


def fully_convolutional(source: Path) -> bytes:
    """The network at `source` with free input height and width and outputs `SCORES` (1, P, 3)
    and `REGRESSION` (1, P, 4): the nodes that decode boxes against fixed priors are dropped."""
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(source))
    graph = model.graph
    wanted, kept = {SCORES, REGRESSION}, []
    for node in reversed(graph.node):
        if wanted & set(node.output):
            kept.append(node)
            wanted |= set(node.input)
    del graph.node[:]
    graph.node.extend(reversed(kept))
    used = {name for node in kept for name in node.input}
    initializers = [tensor for tensor in graph.initializer if tensor.name in used]
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    del graph.output[:]
    for name, width in ((SCORES, 3), (REGRESSION, 4)):
        graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, "P", width]))
    dims = graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_param, dims[3].dim_param = "H", "W"
    onnx.checker.check_model(model)
    return model.SerializeToString()


def priors(width: int, height: int) -> np.ndarray:
    """(P, 4) priors (centre x, centre y, width, height as fractions of the input) for an input
    of `width` x `height` pixels, in the network's output order: stride by stride, row by row,
    column by column, anchor by anchor."""
    rows = []
    for stride, anchors in zip(STRIDES, ANCHORS, strict=True):
        columns, lines = -(-width // stride), -(-height // stride)
        x, y = np.meshgrid((np.arange(columns) + 0.5) / columns, (np.arange(lines) + 0.5) / lines)
        centres = np.repeat(np.stack([x.ravel(), y.ravel()], 1), len(anchors), axis=0)
        sides = np.tile(np.array([[a / width, a / height] for a in anchors]), (x.size, 1))
        rows.append(np.hstack([centres, sides]))
    return np.clip(np.vstack(rows), 0.0, 1.0).astype(np.float32)


def decode(regression: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """(P, 4) raw regressions and (P, 4) priors -> (P, 4) boxes x1, y1, x2, y2 as fractions."""
    centre = regression[:, :2] * CENTER_VARIANCE * prior[:, 2:] + prior[:, :2]
    half = np.exp(regression[:, 2:] * SIZE_VARIANCE) * prior[:, 2:] / 2
    return np.hstack([centre - half, centre + half])
