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
from kao.errors import KaoError
from kao.image import load_image
from kao.progress import progress


@dataclass(frozen=True)
class CrowdImage:
    """One annotated image: its path, its name relative to the data folder, people in it."""

    path: Path
    name: str
    count: int


def _shanghaitech_count(mat: Path) -> int:
    """The number of annotated heads in a ShanghaiTech `GT_IMG_n.mat`."""
    import scipy.io

    try:
        info = scipy.io.loadmat(mat)["image_info"][0, 0]
        return int(np.asarray(info["location"][0, 0]).reshape(-1, 2).shape[0])
    except (OSError, ValueError, KeyError, IndexError) as error:
        raise KaoError(f"{mat}: not a ShanghaiTech ground-truth file: {error}") from error


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
                images.append(CrowdImage(path, name, _shanghaitech_count(mat)))
    if not images:
        raise KaoError(
            f"{root}: no annotated images (expected gt.json and images/, ShanghaiTech "
            "images/ and ground-truth/GT_IMG_*.mat, or a WIDER FACE folder)"
        )
    return sorted(images, key=lambda im: im.name)


def scores(truth: Sequence[int], counts: Sequence[float]) -> dict[str, float]:
    """Mean absolute error (people), mean relative error (|error| / true count, images with a
    true count of 0 left out), mean signed error (bias) and Pearson correlation of `counts`
    against `truth`."""
    t = np.asarray(truth, np.float64)
    c = np.asarray(counts, np.float64)
    error = c - t
    positive = t > 0
    correlation = (
        float(np.corrcoef(t, c)[0, 1]) if len(t) > 1 and t.std() > 0 and c.std() > 0 else 0.0
    )
    return {
        "mae": round(float(np.abs(error).mean()), 2),
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
