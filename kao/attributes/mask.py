"""Mask / no mask: a small network trained by `scripts/train_mask.py` on ../shared/data/mask with
UTKFace faces and bare WIDER FACE faces (unoccluded, or covered by a hand, a microphone or a
camera in events where nobody wears a mask; none of the events `kao eval mask` measures on),
also shrunk and blurred, as extra unmasked examples (weights/mask_classifier.onnx). Its logit
is the sum of two branches:

- a convolutional branch on the attribute crop resized to `CROP_INPUT` pixels (four 3 x 3
  convolutions with max pooling, global average pooling, one linear unit);
- a one-hidden-layer branch (64 ReLU units, standardisation folded in) on hand-made
  features of the crop (`mask_features`): the dlib face descriptor (shared with the age and
  gender models), gradient orientation histograms of the aligned 64 x 64 chip and of the crop,
  and the colour of the chip's horizontal bands (a mask makes the lower face unlike the skin of
  the eyes' band).

`network_inputs` makes both inputs; the graph takes "features" (N, FEATURES) float32 and "crop"
(N, 3, CROP_INPUT, CROP_INPUT) float32 RGB 0-255, and gives "p_mask" (N, 1)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from kao.attributes.base import CropModel
from kao.attributes.dlib_features import (
    FaceFeatures,
    FeatureExtractor,
    attribute_crop,
    shared_extractor,
)
from kao.face import Face, Label
from kao.models.runtime import onnx_session

WEIGHTS = Path(__file__).parent / "weights" / "mask_classifier.onnx"
FEATURES_INPUT, CROP_INPUT_NAME, OUTPUT_NAME = "features", "crop", "p_mask"
"""The ONNX graph's inputs and output (see the module's docstring)."""
CROP_INPUT = 64
"""Side of the crop the convolutional branch reads, pixels."""
CHIP = 64
"""Side of the aligned chip the histograms read (dlib padding 0.2, as the age network's)."""
CELL, BINS = 8, 9
"""Histogram cells (pixels) and orientation bins (over 0-180 degrees)."""
BANDS = ((16, 28), (28, 40), (40, 52), (52, 64))
"""Rows of the chip's bands: eyes, nose, mouth, chin."""
THRESHOLD, SCALE = 0.5498, 0.4729
"""The calibration of the network's p_mask (`calibrated`): a face is called "mask" from
p_mask >= THRESHOLD, and the log-odds around it are multiplied by SCALE. Fitted by
scripts/calibrate_mask.py (docs/training/mask_calibration.json) on WIDER FACE photos of
`kao.evaluation.mask.TUNING_EVENTS` and the tuning half of the mask set's unseen held-out
groups; none of the photos it is measured on. THRESHOLD is the highest at which the tuning
masks are called right as often as at 0.5. The network is over-confident (SCALE < 1)."""
FEATURES = 128 + 2 * (CHIP // CELL) ** 2 * BINS + 3 * (2 * len(BANDS) + len(BANDS) - 2)


def orientation_histograms(grey: np.ndarray) -> np.ndarray:
    """Gradient orientation histograms of a square grey image (S x S float32, S a multiple of
    CELL): per CELL x CELL cell, BINS bins of gradient magnitude, each cell L2-normalised ->
    ((S / CELL)^2 * BINS,) float32."""
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=1)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=1)
    magnitude = np.hypot(gx, gy)
    bins = np.minimum((np.degrees(np.arctan2(gy, gx)) % 180 / (180 / BINS)).astype(int), BINS - 1)
    cells = grey.shape[0] // CELL
    cell = np.arange(grey.shape[0]) // CELL
    histograms = np.zeros((cells, cells, BINS), np.float32)
    rows, cols = np.meshgrid(cell, cell, indexing="ij")
    np.add.at(histograms, (rows, cols, bins), magnitude)
    norms = np.linalg.norm(histograms, axis=2, keepdims=True) + 1e-3
    return (histograms / norms).ravel()


def band_colours(chip: np.ndarray) -> np.ndarray:
    """Mean and spread of the CIE Lab colour of each of `BANDS` of `chip` (64 x 64 x 3 uint8),
    and how far the nose, mouth and chin bands' means are from the eyes' band (0-1 units)."""
    lab = cv2.cvtColor(chip, cv2.COLOR_RGB2LAB).astype(np.float32) / 255
    bands = [lab[r0:r1].reshape(-1, 3) for r0, r1 in BANDS]
    means = np.stack([band.mean(axis=0) for band in bands])
    spreads = np.stack([band.std(axis=0) for band in bands])
    return np.hstack([means.ravel(), spreads.ravel(), (means[2:] - means[0]).ravel()])


def mask_features(extractor: FeatureExtractor, features: FaceFeatures) -> np.ndarray:
    """The classifier's input for `features`' crops -> (N, FEATURES) float32."""
    chips = extractor.chips(features, CHIP, 0.2)
    rows = []
    for crop, chip in zip(features.crops, chips, strict=True):
        side = crop.shape[0]
        margin = round(side * 0.16)
        centre = cv2.resize(crop[margin:-margin, margin:-margin], (CHIP, CHIP), cv2.INTER_AREA)
        rows.append(
            np.hstack(
                [
                    orientation_histograms(
                        cv2.cvtColor(chip, cv2.COLOR_RGB2GRAY).astype(np.float32)
                    ),
                    orientation_histograms(
                        cv2.cvtColor(centre, cv2.COLOR_RGB2GRAY).astype(np.float32)
                    ),
                    band_colours(chip),
                ]
            )
        )
    extra = np.stack(rows) if rows else np.zeros((0, FEATURES - 128), np.float32)
    return np.hstack([features.embeddings, extra]).astype(np.float32)


def network_inputs(extractor: FeatureExtractor, features: FaceFeatures) -> dict[str, np.ndarray]:
    """The network's inputs for `features`' crops: "features" (N, FEATURES) and "crop"
    (N, 3, CROP_INPUT, CROP_INPUT) float32 RGB 0-255."""
    side = (CROP_INPUT, CROP_INPUT)
    small = [cv2.resize(crop, side, interpolation=cv2.INTER_AREA) for crop in features.crops]
    crops = np.stack(small) if small else np.zeros((0, *side, 3), np.uint8)
    return {
        FEATURES_INPUT: mask_features(extractor, features),
        CROP_INPUT_NAME: np.ascontiguousarray(crops.transpose(0, 3, 1, 2), np.float32),
    }


def calibrated(p_network: np.ndarray) -> np.ndarray:
    """The probability of a mask from the network's `p_network` (N,): sigmoid(SCALE x
    (logit(p_network) - logit(THRESHOLD))), so that 0.5 falls at `THRESHOLD` -> (N,) float64."""
    p = np.clip(np.asarray(p_network, np.float64), 1e-7, 1 - 1e-7)
    shift = np.log(THRESHOLD / (1 - THRESHOLD))
    return 1.0 / (1.0 + np.exp(-SCALE * (np.log(p / (1 - p)) - shift)))


def mask_label(p_mask: float) -> Label:
    """The Label of a face whose probability of wearing a mask is `p_mask`."""
    return Label("mask", p_mask) if p_mask >= 0.5 else Label("no_mask", 1.0 - p_mask)


class MaskClassifier(CropModel[Label]):
    """Whether faces wear a mask: `Label("mask" | "no_mask", probability)`.

    Args:
        threads: ONNX Runtime threads (default: `KAO_THREADS`, else the idle cores at each run;
            see `kao.models.runtime`)."""

    def __init__(self, *, weights: Path = WEIGHTS, threads: int | None = None) -> None:
        self.weights = weights
        self._session = onnx_session(weights, threads)
        self.features = shared_extractor()

    def crop(self, rgb: np.ndarray, face: Face) -> np.ndarray:
        return attribute_crop(rgb, face)

    def classify(self, crops: Sequence[np.ndarray]) -> list[Label]:
        if not crops:
            return []
        return [mask_label(float(p)) for p in self.probabilities(crops)]

    def probabilities(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """(N,) probability that each crop's face wears a mask (`calibrated`)."""
        return calibrated(self.network_probabilities(crops))

    def network_probabilities(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """(N,) the network's own p_mask of each crop, before `calibrated`."""
        if not crops:
            return np.zeros(0, np.float32)
        inputs = network_inputs(self.features, self.features.features(crops))
        (p_mask,) = self._session.run([OUTPUT_NAME], inputs)
        return p_mask[:, 0]

    def annotate(self, rgb: np.ndarray, faces: Sequence[Face]) -> list[Face]:
        """Copies of `faces` (found in `rgb`) with `mask` set."""
        labels = self.predict(rgb, faces)
        return [replace(face, mask=label) for face, label in zip(faces, labels, strict=True)]
