"""Crowd-counting training sets with head points: ShanghaiTech parts A and B, and Mall.

Layouts (as published; only the training parts are ever read for training or cross-validation):

- ShanghaiTech `part_A/train_data`, `part_B/train_data`: `images/IMG_n.jpg` beside
  `ground-truth/GT_IMG_n.mat`, a MATLAB struct `image_info` whose first field holds one (x, y)
  row per head, in pixels of the image;
- Mall: `frames/seq_NNNNNN.jpg` (640 x 480) and `mall_gt.mat`, whose `frame[0, i]['loc']` holds
  the (x, y) head rows of frame i + 1. Frames 1-800 are the standard training part; a folder
  holding more frames is cut to those 800 (`MALL_TRAIN_FRAMES`).

`DATASETS` names each set's folder under one data root (kao's own is `.data/crowd_train`);
`load_scenes` lists a set's scenes in their natural order (image number, frame number) and
`fold` cuts them into contiguous blocks for cross-validation (contiguous, so that neighbouring
video frames never fall on both sides of a split).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kao.errors import KaoError

DATASETS: dict[str, str] = {
    "shanghaitech_A": "part_A/train_data",
    "shanghaitech_B": "part_B/train_data",
    "mall": "mall",
}
"""Dataset name -> its folder relative to the data root."""
MALL_TRAIN_FRAMES = 800
"""Mall frames 1..800 are the training part; later frames are never listed."""


@dataclass(frozen=True)
class Scene:
    """One annotated image: `path`, `name` (unique within its set) and `points`, an (N, 2)
    float32 array of head positions (x, y) in pixels of the image."""

    path: Path
    name: str
    points: np.ndarray

    @property
    def count(self) -> int:
        """People annotated in the scene."""
        return int(self.points.shape[0])


def _number(path: Path) -> int:
    """The last run of digits in a file name (IMG_12.jpg -> 12, seq_000012.jpg -> 12)."""
    digits = re.findall(r"\d+", path.stem)
    return int(digits[-1]) if digits else -1


def shanghaitech_points(mat: Path) -> np.ndarray:
    """The (N, 2) float32 head points (x, y) of a ShanghaiTech `GT_IMG_n.mat`; KaoError naming
    the file when it is not one."""
    import scipy.io

    try:
        info = scipy.io.loadmat(mat)["image_info"][0, 0]
        return np.asarray(info[0, 0][0], np.float32).reshape(-1, 2)
    except (OSError, ValueError, KeyError, IndexError, TypeError) as error:
        raise KaoError(f"{mat}: not a ShanghaiTech ground-truth file: {error}") from error


def load_shanghaitech(root: Path) -> list[Scene]:
    """Every image of a ShanghaiTech split folder (`images/`, `ground-truth/`) that has its
    ground-truth file, by image number."""
    scenes = []
    for path in sorted((root / "images").glob("IMG_*.jpg"), key=_number):
        mat = root / "ground-truth" / f"GT_{path.stem}.mat"
        if mat.is_file():
            scenes.append(Scene(path, path.name, shanghaitech_points(mat)))
    return scenes


def load_mall(root: Path) -> list[Scene]:
    """The Mall training frames (1..`MALL_TRAIN_FRAMES`) present in `root/frames`, by frame
    number, with their points from `root/mall_gt.mat`."""
    import scipy.io

    try:
        frames = scipy.io.loadmat(root / "mall_gt.mat")["frame"]
    except (OSError, ValueError, KeyError) as error:
        raise KaoError(
            f"{root / 'mall_gt.mat'}: cannot read the Mall ground truth: {error}"
        ) from error
    scenes = []
    for path in sorted((root / "frames").glob("seq_*.jpg"), key=_number):
        number = _number(path)
        if 1 <= number <= min(MALL_TRAIN_FRAMES, frames.shape[1]):
            points = np.asarray(frames[0, number - 1]["loc"][0, 0], np.float32).reshape(-1, 2)
            scenes.append(Scene(path, path.name, points))
    return scenes


def load_scenes(name: str, root: Path) -> list[Scene]:
    """The scenes of dataset `name` (one of `DATASETS`) under the data root `root`; KaoError
    when the name is unknown or the folder holds no annotated scene."""
    if name not in DATASETS:
        raise KaoError(f"unknown crowd dataset {name!r}; choose one of {', '.join(DATASETS)}")
    folder = root / DATASETS[name]
    scenes = load_mall(folder) if name == "mall" else load_shanghaitech(folder)
    if not scenes:
        raise KaoError(f"{folder}: no annotated {name} scenes")
    return scenes


def fold(count: int, folds: int, index: int) -> tuple[list[int], list[int]]:
    """(training, held-out) indices of `count` scenes for fold `index` of `folds`: the held-out
    part is the `index`-th of `folds` contiguous blocks of (nearly) equal size."""
    if not 2 <= folds <= count or not 0 <= index < folds:
        raise KaoError(f"cannot take fold {index} of {folds} from {count} scenes")
    start, stop = index * count // folds, (index + 1) * count // folds
    held = list(range(start, stop))
    return [i for i in range(count) if not start <= i < stop], held
