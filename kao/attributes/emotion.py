"""Emotion: the probability of each of kao's 7 classes (`kao.face.EMOTIONS`) for a face.

The network is kao's own: two networks trained on FER2013's training images by
`scripts/train_emotion.py` with seeds 2013 and 2014 (logs: docs/training/emotion.json and
emotion_seed2014.json), merged by `scripts/ensemble_emotion.py` into one graph that averages
their softmax outputs and quantized to 8 bits (`--int8 512`; log:
docs/training/emotion_ensemble.json), shipped as `weights/emotion.onnx` (2.6 MB): 48 x 48 grey
faces, raw pixel values in, logits out, in FER2013's class order (angry, disgust, fear, happy,
neutral, sad, surprise), which is `EMOTIONS` with "surprise" named "surprised". On the 2,872
training images held out of training, flip-averaged: 0.695 and 0.698 for the two networks,
0.700 for the pair (0.701 in 8 bits). Each crop is read in the three `DEFAULT_VIEWS` and their
mirror images, and the six softmax outputs are averaged (0.716 for the pair);
`views=SHIFTED_VIEWS` reads 14 views instead (as it is, moved 2 px left, right, up and down,
zoomed 0.9x and 1.1x, and each of those mirrored: 0.714), for 14 / 3 times the network's time.

The 8-bit network runs where the CPU has 8-bit dot-product instructions (AVX-512 VNNI,
AVX-VNNI, ARM's dot product); elsewhere, where ONNX Runtime's 8-bit kernels are slow (7.9 ms
a face on an AMD EPYC without VNNI against about 1 ms with it), its float version, made from
it at first use (`kao.models.precision`: the same weights, float activations).
`KAO_PRECISION=int8|fp32` overrides the choice.

FER2013's faces are loosely cropped: about the face's box with little margin, upright. A crop
from a photo is framed the same way. The framing was measured by running kao's detector on
300 FER2013 training images (enlarged 4x, border-padded): the image's side is a median 0.91
(quartiles 0.83-0.97) of the detected box's longer side (its height), centred on the box
(median offset 0.001 box heights), hence `CROP_SCALE` 0.9 and `CROP_SHIFT` 0.

The averaged probabilities are calibrated by a temperature (`TEMPERATURE`: softmax(log p / T),
which keeps every answer and changes only how sure it is), fitted by
`scripts/calibrate_attributes.py` on the 2,872 training images held out of training, never on
public_test."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from kao.align import face_crop
from kao.attributes.base import CropModel
from kao.errors import KaoError, ModelError
from kao.evaluation.calibration import tempered
from kao.face import EMOTIONS, Face
from kao.models.precision import in_precision
from kao.models.runtime import onnx_session

WEIGHTS = Path(__file__).with_name("weights") / "emotion.onnx"
SIZE = 48
"""Side of the network's grey input, pixels."""
CROP_SIZE = 2 * SIZE
"""Side of the crop `crop` cuts (downsampled to `SIZE` by `classify`, without aliasing)."""
CROP_SCALE = 0.9
"""The crop's side, in units of the detected box's longer side."""
CROP_SHIFT = 0.0
"""How far the crop's centre is moved down from the box's, in box heights."""
FER_CLASSES = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
View = tuple[float, float, float]
"""A view of a crop: (x shift, y shift in pixels of the 48 x 48 input, zoom about its centre)."""
DEFAULT_VIEWS: tuple[View, ...] = ((-2, 0, 1.0), (0, 2, 1.0), (0, -2, 1.0))
"""The crop moved 2 px left, down and up (with the mirror images, also right): of the 35 sets of
three views of `SHIFTED_VIEWS`, the best on the held-out training images (0.716; the crop as it
is, alone: 0.701), in the time one float view took."""
SHIFTED_VIEWS: tuple[View, ...] = (
    (0, 0, 1.0),
    (2, 0, 1.0),
    (-2, 0, 1.0),
    (0, 2, 1.0),
    (0, -2, 1.0),
    (0, 0, 0.9),
    (0, 0, 1.1),
)


TEMPERATURE = 0.8467
"""Temperature of the averaged probabilities (`kao.evaluation.calibration.tempered`), fitted by
`scripts/calibrate_attributes.py` on the 2,872 held-out training images: under 1, because the
averaged, label-smoothed networks are less sure than they are right (expected calibration error
0.049 as they are, 0.028 tempered; docs/BENCHMARKS.md)."""


def to_grey(crop: np.ndarray) -> np.ndarray:
    """H x W grey, H x W x 3 RGB or H x W x 4 RGBA uint8 -> H x W uint8 grey (ITU-R BT.601)."""
    crop = np.asarray(crop)
    if crop.dtype != np.uint8 or crop.ndim not in (2, 3) or min(crop.shape[:2]) < 1:
        raise KaoError(f"a face crop must be H x W (x 3 or 4) uint8, got {crop.shape} {crop.dtype}")
    if crop.ndim == 2:
        return crop
    if crop.shape[2] == 1:
        return crop[:, :, 0]
    if crop.shape[2] in (3, 4):
        return cv2.cvtColor(crop[:, :, :3], cv2.COLOR_RGB2GRAY)
    raise KaoError(f"a face crop must have 1, 3 or 4 channels, got {crop.shape}")


def resize_grey(crops: Sequence[np.ndarray] | np.ndarray, size: int) -> np.ndarray:
    """Crops of any size and colour -> (N, size, size) uint8 grey (area averaging when
    shrinking, bilinear when enlarging)."""
    out = np.empty((len(crops), size, size), np.uint8)
    for i, crop in enumerate(crops):
        grey = to_grey(crop)
        if grey.shape != (size, size):
            shrink = min(grey.shape) > size
            grey = cv2.resize(
                grey, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
            )
        out[i] = grey
    return out


def view(grey: np.ndarray, dx: float, dy: float, zoom: float) -> np.ndarray:
    """`grey` (S x S uint8) moved by (dx, dy) pixels and zoomed by `zoom` about its centre, its
    border pixels repeated where the view leaves the image -> S x S uint8."""
    if (dx, dy, zoom) == (0, 0, 1.0):
        return grey
    centre = (grey.shape[1] - 1) / 2
    matrix = cv2.getRotationMatrix2D((centre, centre), 0, zoom)
    matrix[:, 2] += (dx, dy)
    return cv2.warpAffine(grey, matrix, grey.shape[::-1], borderMode=cv2.BORDER_REPLICATE)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (N, K) logits, float32."""
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (shifted / shifted.sum(axis=1, keepdims=True)).astype(np.float32)


class EmotionClassifier(CropModel[dict[str, float]]):
    """kao's emotion network: one `{emotion: probability}` dict per face (the 7 keys of
    `EMOTIONS`, summing to 1; calibrated by `temperature`, 1.0 for the network's own).
    Safe to share between threads. `precision`: "int8" (the shipped 8-bit network) or "fp32"
    (its float version), chosen by the CPU or `KAO_PRECISION` (`kao.models.precision`)."""

    def __init__(
        self,
        threads: int | None = None,
        weights: Path = WEIGHTS,
        views: Sequence[View] = DEFAULT_VIEWS,
        temperature: float = TEMPERATURE,
    ) -> None:
        self.views = tuple(views)
        self.temperature = temperature
        if not weights.is_file():
            raise ModelError(f"{weights}: the emotion network is missing (reinstall kao)")
        loaded, self.precision = in_precision(weights, "emotion")
        self._session = onnx_session(loaded, threads)
        meta = self._session.get_modelmeta().custom_metadata_map
        if tuple(json.loads(meta.get("classes", "[]"))) != FER_CLASSES:
            raise ModelError(
                f"{weights}: not kao's emotion network (classes {meta.get('classes')})"
            )

    def crop(self, rgb: np.ndarray, face: Face) -> np.ndarray:
        """The face's upright square crop framed like FER2013 (`CROP_SCALE` times the box's
        longer side, centre `CROP_SHIFT` box heights below the box's), CROP_SIZE x CROP_SIZE x 3
        uint8 RGB."""
        return face_crop(rgb, face, CROP_SIZE, scale=CROP_SCALE, shift=CROP_SHIFT)

    def probabilities(self, crops: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """(N, 7) float32 probabilities in `EMOTIONS` order for face crops of any size (each
        H x W grey, RGB or RGBA uint8; resized to 48 x 48 grey), averaged over the `views` of
        each crop and their mirror images, then calibrated (`temperature`)."""
        grey = resize_grey(crops, SIZE)
        if len(grey) == 0:
            return np.zeros((0, len(EMOTIONS)), np.float32)
        views = np.stack([view(image, *v) for v in self.views for image in grey])
        batch = np.concatenate([views, views[:, :, ::-1]])[:, None].astype(np.float32)
        probs = softmax(self._session.run(["logits"], {"grey": batch})[0])
        mean = probs.reshape(2 * len(self.views), len(grey), -1).mean(axis=0)
        return mean if self.temperature == 1.0 else tempered(mean, self.temperature)

    def classify(self, crops: Sequence[np.ndarray]) -> list[dict[str, float]]:
        """One `{emotion: probability}` dict per crop (any size, grey or RGB uint8)."""
        return [
            {name: float(p) for name, p in zip(EMOTIONS, row, strict=True)}
            for row in self.probabilities(crops)
        ]
