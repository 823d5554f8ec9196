"""Crowd-counting evaluation: the counts of every method against annotated counts.

Three layouts are read:

- a `gt.json` folder: `images/` and `gt.json` (file name -> count), as `crowd/mall_train`;
- ShanghaiTech: `.../images/IMG_n.jpg` beside `.../ground-truth/GT_IMG_n.mat` (a MATLAB struct
  `image_info` whose `location` holds one (x, y) row per head), found anywhere under the root;
- WIDER FACE (`wider_face_val.mat` present): the count is the number of annotated faces.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kao.crowd.counting import METHODS, CrowdCounter, Estimates
from kao.crowd.datasets import fold, load_scenes, shanghaitech_points
from kao.crowd.trained import TrainedCounter, shipped
from kao.errors import KaoError
from kao.image import load_image
from kao.progress import progress


@dataclass(frozen=True)
class CrowdImage:
    """One annotated image: its path, its name relative to the data folder, people in it."""

    path: Path
    name: str
    count: int


def load_dataset(root: Path) -> list[CrowdImage]:
    """Every annotated image of `root` in any of the three layouts, sorted by name; KaoError
    naming the folder when none is found."""
    if not root.is_dir():
        raise KaoError(f"{root}: not a folder")
    if (root / "wider_face_val.mat").is_file():
        from kao.evaluation import widerface

        images = [
            CrowdImage(im.path, im.path.name, len(im.boxes)) for im in widerface.load_dataset(root)
        ]
    elif (root / "gt.json").is_file():
        try:
            counts = json.loads((root / "gt.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise KaoError(f"{root / 'gt.json'}: cannot read: {error}") from error
        images = [CrowdImage(root / "images" / name, name, int(n)) for name, n in counts.items()]
        missing = [im.name for im in images if not im.path.is_file()]
        if missing:
            raise KaoError(f"{root / 'images'}: missing images listed in gt.json: {missing[:5]}")
    else:
        images = []
        for mat in root.rglob("GT_IMG_*.mat"):
            path = mat.parent.parent / "images" / f"{mat.stem[3:]}.jpg"
            if path.is_file():
                name = str(path.relative_to(root))
                images.append(CrowdImage(path, name, len(shanghaitech_points(mat))))
    if not images:
        raise KaoError(
            f"{root}: no annotated images (expected gt.json and images/, ShanghaiTech "
            "images/ and ground-truth/GT_IMG_*.mat, or a WIDER FACE folder)"
        )
    return sorted(images, key=lambda im: im.name)


def scores(truth: Sequence[int], counts: Sequence[float]) -> dict[str, float]:
    """Mean absolute error (people), root mean squared error (people), mean relative error
    (|error| / true count, images with a true count of 0 left out), mean signed error (bias)
    and Pearson correlation of `counts` against `truth`."""
    t = np.asarray(truth, np.float64)
    c = np.asarray(counts, np.float64)
    error = c - t
    positive = t > 0
    correlation = (
        float(np.corrcoef(t, c)[0, 1]) if len(t) > 1 and t.std() > 0 and c.std() > 0 else 0.0
    )
    return {
        "mae": round(float(np.abs(error).mean()), 2),
        "rmse": round(float(np.sqrt((error**2).mean())), 2),
        "mean_relative_error": round(float((np.abs(error[positive]) / t[positive]).mean()), 4),
        "bias": round(float(error.mean()), 2),
        "correlation": round(correlation, 4),
    }


def evaluate(root: Path, counter: CrowdCounter | None = None) -> dict[str, Any]:
    """Count every image of `root` with every method (`METHODS`: density A, density B,
    detection, auto) and score each against the annotated counts; `per_image` lists the
    estimates and the method auto chose."""
    images = load_dataset(root)
    counter = counter or CrowdCounter()
    estimates: list[Estimates] = [
        counter.estimates(load_image(im.path)) for im in progress(images, len(images))
    ]
    truth = [im.count for im in images]
    report: dict[str, Any] = {
        "images": len(images),
        "people": int(sum(truth)),
        "count_range": [min(truth), max(truth)],
        "methods": {
            method: scores(truth, [e.count(method) for e in estimates]) for method in METHODS
        },
        "auto_chose": {
            choice: sum(e.choice() == choice for e in estimates)
            for choice in sorted({e.choice() for e in estimates})
        },
        "rule": counter.rule(),
        "per_image": [
            {"image": im.name, "true": im.count, "auto": e.choice()}
            | {method: round(e.count(method), 1) for method in METHODS}
            for im, e in zip(images, estimates, strict=True)
        ],
    }
    return report


TRAINED = "trained"
"""The name of kao's trained counter among the methods of `cross_validate`."""
TRAIN_MEAN = "train-mean"
"""The baseline of `cross_validate` that says the mean count of the training folds for every
image: a counter that has learned anything about the images beats it."""


def cross_validate(root: Path, counter: CrowdCounter | None = None) -> dict[str, Any]:
    """For every training set kao ships a trained counter for (`kao.crowd.trained.shipped`) and
    that `root` holds (the layout of `kao.crowd.datasets`, e.g. `.data/crowd_train`): the
    errors on the fold the network never saw (its metadata names it) of the trained counter and,
    on the same images, of every MCNN method (`METHODS`) and of `TRAIN_MEAN`. Training-split
    images only: the test splits are not read. KaoError when `root` holds none of those sets."""
    counter = counter or CrowdCounter()
    report: dict[str, Any] = {}
    for dataset in shipped():
        network = TrainedCounter(dataset, threads=counter.threads)
        info = network.info
        try:
            scenes = load_scenes(dataset, root)
        except KaoError:
            continue
        train, held = fold(len(scenes), info.folds, info.fold)
        images = [scenes[i] for i in held]
        counts: dict[str, list[float]] = {TRAINED: []} | {method: [] for method in METHODS}
        counts[TRAIN_MEAN] = [float(np.mean([scenes[i].count for i in train]))] * len(images)
        for scene in progress(images, len(images)):
            rgb = load_image(scene.path)
            counts[TRAINED].append(network.count(rgb))
            estimates = counter.estimates(rgb)
            for method in METHODS:
                counts[method].append(estimates.count(method))
        truth = [scene.count for scene in images]
        report[dataset] = {
            "images": len(images),
            "people": int(sum(truth)),
            "count_range": [min(truth), max(truth)],
            "held_out": f"fold {info.fold} of {info.folds} (contiguous blocks)",
            "methods": {method: scores(truth, c) for method, c in counts.items()},
        }
    if not report:
        raise KaoError(
            f"{root}: holds none of the training sets kao ships a counter for: {shipped()}"
        )
    return report
