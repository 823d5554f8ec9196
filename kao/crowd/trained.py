"""kao's own crowd-density network, trained on the standard training splits by
scripts/train_counter.py (Bayesian loss of Ma et al., ICCV 2019), run with ONNX Runtime.

One ONNX file per training set ships in `kao/crowd/weights/` (`WEIGHTS`). Input `rgb`
(N, 3, H, W) float32 RGB values 0-255 with H and W multiples of the network's stride (8); the
graph normalises them itself. Output `density` (N, 1, H / 8, W / 8): people per output cell; its
sum is the count. The image is first resized by the model's `scale` (the training resolution,
e.g. 0.5 for Mall's 640 x 480 frames) and padded on the right and bottom with the normalisation
mean (zero after normalisation, as in training).

The model's metadata (`kao_counter`, JSON) records the dataset, scale, stride, the
cross-validation fold it was trained without (`folds`, `fold`) and the training summary;
`reference` holds PyTorch's output for a seeded input, which the tests compare with ONNX
Runtime's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from kao.errors import KaoError, ModelError
from kao.models.runtime import onnx_session

WEIGHTS_DIR = Path(__file__).parent / "weights"
WEIGHTS: dict[str, str] = {
    "mall": "counter_mall.onnx",
    "shanghaitech_B": "counter_shanghaitech_B.onnx",
}
"""Training set -> the file of the network trained on it (`shipped` lists those present)."""
INPUT_NAME = "rgb"
OUTPUT_NAME = "density"


@dataclass(frozen=True)
class CounterInfo:
    """What a trained counter's metadata says: the `dataset` it was trained on, the input
    `scale` (image resize factor), the output `stride` (network input pixels per output cell),
    the `mean` RGB (0-255) the image is padded with, the cross-validation `folds` and the
    held-out `fold` (the fold of `kao.crowd.datasets.fold` it never saw), and `training`, the
    training summary."""

    dataset: str
    scale: float
    stride: int
    mean: tuple[float, float, float]
    folds: int
    fold: int
    training: dict[str, Any]

    @classmethod
    def from_metadata(cls, metadata: dict[str, str], source: Path) -> CounterInfo:
        try:
            info = json.loads(metadata["kao_counter"])
            return cls(
                str(info["dataset"]),
                float(info["scale"]),
                int(info["stride"]),
                tuple(float(m) for m in info["mean"]),  # type: ignore[arg-type]
                int(info["folds"]),
                int(info["fold"]),
                dict(info.get("training", {})),
            )
        except (KeyError, ValueError, TypeError) as error:
            raise ModelError(
                f"{source}: not a kao counter (metadata kao_counter): {error}"
            ) from error


def prepare(rgb: np.ndarray, scale: float, stride: int, mean: tuple[float, ...]) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (1, 3, H', W') float32 network input: resized by `scale` (area
    interpolation when shrinking), then padded right and bottom with `mean` up to multiples of
    `stride`."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise KaoError(f"expected (H, W, 3) uint8 RGB, got {rgb.shape} {rgb.dtype}")
    if scale != 1.0:
        height, width = rgb.shape[:2]
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    height, width = rgb.shape[:2]
    padded = np.empty((-(-height // stride) * stride, -(-width // stride) * stride, 3), np.float32)
    padded[:] = np.asarray(mean, np.float32)
    padded[:height, :width] = rgb
    return np.ascontiguousarray(padded.transpose(2, 0, 1)[None])


def weights_path(dataset: str) -> Path:
    """The shipped network trained on `dataset`; KaoError when kao ships none."""
    if dataset not in shipped():
        raise KaoError(f"no trained counter for {dataset!r}; kao ships: {', '.join(shipped())}")
    return WEIGHTS_DIR / WEIGHTS[dataset]


def shipped() -> list[str]:
    """The training sets kao ships a trained counter for."""
    return [name for name, file in WEIGHTS.items() if (WEIGHTS_DIR / file).is_file()]


class TrainedCounter:
    """A network of scripts/train_counter.py on ONNX Runtime (safe to call from several
    threads). `path` defaults to the shipped network trained on `dataset`."""

    def __init__(
        self, dataset: str = "mall", path: Path | None = None, threads: int | None = None
    ) -> None:
        self.path = path or weights_path(dataset)
        self._session = onnx_session(self.path, threads)
        metadata = self._session.get_modelmeta().custom_metadata_map
        self.info = CounterInfo.from_metadata(metadata, self.path)
        self.reference: dict[str, Any] = json.loads(metadata.get("reference", "{}"))

    def run(self, batch: np.ndarray) -> np.ndarray:
        """(N, 3, H, W) float32 RGB 0-255, H and W multiples of the stride -> (N, H / stride,
        W / stride) float32 density, people per cell."""
        return self._session.run([OUTPUT_NAME], {INPUT_NAME: batch})[0][:, 0]

    def density(self, rgb: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB -> the density map, people per cell; one cell covers
        stride / scale input pixels along each side (padding cells included)."""
        info = self.info
        return self.run(prepare(rgb, info.scale, info.stride, info.mean))[0]

    def count(self, rgb: np.ndarray) -> float:
        """People in (H, W, 3) uint8 RGB: the sum of its density map."""
        return float(self.density(rgb).sum())
