"""Crowd-counting evaluation: the counts of every method against annotated counts.

Three layouts are read:

- a `gt.json` folder: `images/` and `gt.json` (file name -> count), as `crowd/mall_train`;
- ShanghaiTech: `.../images/IMG_n.jpg` beside `.../ground-truth/GT_IMG_n.mat` (a MATLAB struct
  `image_info` whose `location` holds one (x, y) row per head), found anywhere under the root;
- WIDER FACE (`wider_face_val.mat` present): the count is the number of annotated faces.

`cross_validate` measures the rule and the ranges of `kao.crowd.counting` on held-out training
images of four scene types, and fits them anew on one half of those images (`fit_rule`,
`fit_ranges`) to show what the other half makes of them.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kao.crowd import counting
from kao.crowd.counting import CHOICES, METHODS, TRAINED, CrowdCounter, Estimates, Rule, choose
from kao.crowd.datasets import DATASETS, fold, load_scenes, shanghaitech_points
from kao.crowd.trained import TrainedCounter, weights_path
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
    detection, the trained counters, auto) and score each against the annotated counts;
    `auto_range_coverage` is the share of true counts within auto's 80% range; `per_image`
    lists the estimates and the method auto chose."""
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
        "auto_range_coverage": round(
            float(
                np.mean(
                    [
                        _holds(im.count, e.choice(), e.count("auto"))
                        for im, e in zip(images, estimates, strict=True)
                    ]
                )
            ),
            3,
        ),
        "rule": counter.rule(),
        "per_image": [
            {"image": im.name, "true": im.count, "auto": e.choice()}
            | {method: round(e.count(method), 1) for method in METHODS}
            for im, e in zip(images, estimates, strict=True)
        ],
    }
    return report


TRAIN_MEAN = "train-mean"
"""The baseline of `cross_validate` that says the mean count of the training folds for every
image: a counter that has learned anything about the images beats it."""
GROUPS = "wider_groups"
"""The name of the group photos of `cross_validate` (WIDER FACE val, `GROUP_EVENTS`)."""
GROUP_EVENTS = ("12--Group", "20--Family_Group")
"""The WIDER FACE events taken as group photos."""
GROUP_STEP = 4
"""Every `GROUP_STEP`-th group photo (in event and file order) is measured."""
SCENE_TYPES = {
    "shanghaitech_A": "dense crowd",
    "shanghaitech_B": "street scene",
    "mall": "surveillance from above",
    GROUPS: "group photo",
}
"""Data set -> the scene type it stands for."""
HELD_OUT = (5, 0)
"""(folds, fold) held out of a training set kao ships no counter for."""
MIN_RESIDUALS = 10
"""Fewest residuals of the rule's choices that `fit_ranges` calibrates a method's range on."""
RULE_GRID: dict[str, tuple[Any, ...]] = {
    "max_faces": (10, 20, 30, 50, 100),
    "min_face": (10.0, 15.0, 20.0, 30.0, 40.0),
    "crowd_count": (300.0, 500.0, 800.0, 1200.0),
    "dense_count": (100.0, 150.0, 200.0, 250.0, 350.0, 500.0),
    "few_count": (0.0, 25.0, 50.0, 75.0, 100.0),
}
"""The thresholds `fit_rule` tries (every combination; `few` and `sparse` are the density
methods with the least error on the scenes each gets)."""


@dataclass(frozen=True)
class Measured:
    """What every method says of one image (`counting.Evidence`): `counts` (people, per
    method of `CHOICES`), the number of detected `faces` and their median height (px)."""

    counts: dict[str, float]
    faces: int
    face_height: float

    def count(self, method: str) -> float:
        return self.counts[method]

    def face_count(self) -> int:
        return self.faces

    def median_face_height(self) -> float:
        return self.face_height


@dataclass(frozen=True)
class Row:
    """One held-out image of `cross_validate`: its `dataset`, `name`, true count, what the
    methods said of it, and whether it belongs to the half the rule and ranges are fitted on
    (`tune`) or to the half they are scored on."""

    dataset: str
    name: str
    truth: int
    measured: Measured
    tune: bool

    def estimate(self, rule: Rule) -> tuple[str, float]:
        """The method `rule` chooses and its count."""
        method = choose(self.measured, "auto", rule)
        return method, self.measured.count(method)


def load_groups(root: Path) -> list[CrowdImage]:
    """Every `GROUP_STEP`-th image of the WIDER FACE validation events `GROUP_EVENTS` under
    `root` (`wider_face_val.mat`, `images/EVENT/NAME.jpg` or `images/NAME.jpg`) that is present,
    in the file's order, the count being its annotated face
    boxes; KaoError when none is found."""
    import scipy.io

    try:
        table = scipy.io.loadmat(root / "wider_face_val.mat")
    except (OSError, ValueError) as error:
        raise KaoError(f"{root}: not a WIDER FACE val folder: {error}") from error
    images = []
    for e, event in enumerate(table["event_list"][:, 0]):
        if str(event[0]) not in GROUP_EVENTS:
            continue
        for i, name in enumerate(table["file_list"][e, 0][:, 0]):
            folder = root / "images" / str(event[0])
            path = folder / f"{name[0]}.jpg"
            path = path if path.is_file() else folder.parent / path.name
            faces = table["face_bbx_list"][e, 0][i, 0].reshape(-1, 4).shape[0]
            if path.is_file():
                images.append(CrowdImage(path, f"{event[0]}/{path.name}", faces))
    if not images:
        raise KaoError(f"{root}: no WIDER FACE images of {', '.join(GROUP_EVENTS)}")
    return images[::GROUP_STEP]


def _versions() -> dict[str, str]:
    """Method -> the name its counts are cached under (a trained counter's names its file)."""
    tags = {method: method for method in CHOICES}
    for method, dataset in TRAINED.items():
        digest = hashlib.sha256(weights_path(dataset).read_bytes()).hexdigest()[:12]
        tags[method] = f"{method}@{digest}"
    return tags


def measure_all(
    paths: Sequence[Path], counter: CrowdCounter, cache: Path | None = None
) -> list[Measured]:
    """Every method's count of every image (and the faces' number and median height). With
    `cache` (a JSON file), counts kept there for the same file (path, size, modification time)
    and model are reused and new ones added."""
    tags = _versions()
    kept: dict[str, dict[str, float]] = {}
    if cache is not None and cache.is_file():
        kept = json.loads(cache.read_text(encoding="utf-8"))
    results = []
    for n, path in enumerate(progress(paths, len(paths)), 1):
        stat = path.stat()
        key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
        values = kept.setdefault(key, {})
        missing = [tags[m] for m in CHOICES if tags[m] not in values] + [
            k for k in ("faces", "face_height") if k not in values
        ]
        if missing:
            estimates = counter.estimates(load_image(path))
            for method in CHOICES:
                if tags[method] in missing:
                    values[tags[method]] = estimates.count(method)
            if "faces" in missing or "face_height" in missing:
                values["faces"] = estimates.face_count()
                values["face_height"] = estimates.median_face_height()
        results.append(
            Measured(
                {m: float(values[tags[m]]) for m in CHOICES},
                int(values["faces"]),
                float(values["face_height"]),
            )
        )
        if cache is not None and ((missing and n % 5 == 0) or n == len(paths)):
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_text(json.dumps(kept), encoding="utf-8")
    return results


def fit_rule(rows: Sequence[Row]) -> Rule:
    """The thresholds of `RULE_GRID`, and the `few` and `sparse` density methods, with the
    lowest mean relative error averaged over the data sets of `rows` (each set weighs the same;
    ties go to the first combination tried)."""
    if not rows:
        raise KaoError("no images to fit the rule on")
    densities = [m for m in CHOICES if m != "detection"]
    truth = np.array([r.truth for r in rows], np.float64)
    counts = {m: np.array([r.measured.count(m) for r in rows]) for m in CHOICES}
    faces = np.array([r.measured.faces for r in rows])
    height = np.array([r.measured.face_height for r in rows])
    sets = sorted({r.dataset for r in rows})
    weight = np.zeros(len(rows))
    for name in sets:
        members = np.array([r.dataset == name for r in rows])
        weight[members] = 1.0 / (members.sum() * len(sets))
    errors = {m: np.abs(c - truth) / np.maximum(truth, 1.0) * weight for m, c in counts.items()}
    dense = counts["density-A"]
    best: tuple[float, Rule] | None = None
    for max_faces, min_face, crowd_count in itertools.product(
        RULE_GRID["max_faces"], RULE_GRID["min_face"], RULE_GRID["crowd_count"]
    ):
        detect = (dense <= crowd_count) & (faces <= max_faces) & (height >= min_face)
        base = float(errors["detection"][detect].sum())
        for dense_count, few_count in itertools.product(
            RULE_GRID["dense_count"], RULE_GRID["few_count"]
        ):
            crowd = ~detect & (dense > dense_count)
            few = ~detect & ~crowd & (dense <= few_count)
            rest = ~detect & ~crowd & ~few
            error = base + float(errors["density-A"][crowd].sum())
            few_error = {m: float(errors[m][few].sum()) for m in densities}
            rest_error = {m: float(errors[m][rest].sum()) for m in densities}
            few_method = min(densities, key=few_error.__getitem__)
            sparse = min(densities, key=rest_error.__getitem__)
            total = error + few_error[few_method] + rest_error[sparse]
            if best is None or total < best[0] - 1e-12:
                rule = Rule(
                    max_faces, min_face, crowd_count, dense_count, few_count, few_method, sparse
                )
                best = (total, rule)
    assert best is not None
    return best[1]


def _residual(truth: float, estimate: float) -> float:
    """log((truth + 1) / (estimate + 1)): the range's unit."""
    return math.log((truth + 1.0) / (max(estimate, 0.0) + 1.0))


def fit_ranges(rows: Sequence[Row], rule: Rule) -> dict[str, tuple[float, float]]:
    """Per method, the 10th and 90th percentiles of the residuals (`_residual`) of the images
    `rule` sends to it, or of every image when it gets fewer than `MIN_RESIDUALS`."""
    ranges = {}
    for method in CHOICES:
        chosen = [r for r in rows if r.estimate(rule)[0] == method]
        pool = chosen if len(chosen) >= MIN_RESIDUALS else list(rows)
        residuals = [_residual(r.truth, r.measured.count(method)) for r in pool]
        low, high = np.quantile(residuals, [0.1, 0.9])
        ranges[method] = (round(float(low), 4), round(float(high), 4))
    return ranges


def _holds(
    truth: int, method: str, estimate: float, ranges: dict[str, tuple[float, float]] | None = None
) -> bool:
    """Whether the range of `estimate` by `method` (rounded outwards to whole people, as
    `kao count` prints it) holds `truth`."""
    low, high = counting.interval(method, estimate, ranges)
    return math.floor(low) <= truth <= math.ceil(high)


def covered(row: Row, rule: Rule, ranges: dict[str, tuple[float, float]] | None = None) -> bool:
    """Whether the range of `row`'s count by `rule` holds the true count (`_holds`)."""
    return _holds(row.truth, *row.estimate(rule), ranges)


def _rule_scores(
    rows: Sequence[Row], rule: Rule, ranges: dict[str, tuple[float, float]] | None = None
) -> dict[str, float]:
    """MAE, RMSE, ... of `rule` on `rows` and the share of them its range covers."""
    result = scores([r.truth for r in rows], [r.estimate(rule)[1] for r in rows])
    result["coverage"] = round(float(np.mean([covered(r, rule, ranges) for r in rows])), 3)
    return result


def _held_out_sets(
    root: Path, groups: Path | None
) -> dict[str, tuple[list[CrowdImage], list[int] | None]]:
    """Data set -> its held-out images (the fold its trained counter never saw, else
    `HELD_OUT`) and the true counts of its training folds (None for the group photos)."""
    sets: dict[str, tuple[list[CrowdImage], list[int] | None]] = {}
    trained_on = {dataset: method for method, dataset in TRAINED.items()}
    for dataset in DATASETS:
        try:
            scenes = load_scenes(dataset, root)
        except KaoError:
            continue
        folds, index = HELD_OUT
        if dataset in trained_on:
            info = TrainedCounter(dataset).info
            folds, index = info.folds, info.fold
        train, held = fold(len(scenes), folds, index)
        images = [CrowdImage(scenes[i].path, scenes[i].name, scenes[i].count) for i in held]
        sets[dataset] = (images, [scenes[i].count for i in train])
    if groups is not None:
        sets[GROUPS] = (load_groups(groups), None)
    return sets


def cross_validate(
    root: Path,
    groups: Path | None = None,
    counter: CrowdCounter | None = None,
    cache: Path | None = None,
) -> dict[str, Any]:
    """The counting methods, the rule and the ranges on held-out images of four scene types:
    for each training set under `root` (the layout of `kao.crowd.datasets`, e.g.
    `.data/crowd_train`), the fold its trained counter never saw (`HELD_OUT` for a set kao
    ships no counter for), and with `groups` (a WIDER FACE val folder) the group photos of
    `load_groups`. Training-split images only: the test splits are not read.

    Per set (`sets`): the errors of every method of `METHODS` and of `TRAIN_MEAN` on all its
    held-out images, what the rule chose, and on the second half of them (`report_half`) the
    rule's errors and the share of true counts its range holds (`coverage`). `fitted`: the rule
    and ranges fitted on the first halves (`fit_rule`, `fit_ranges`) and their scores on the
    second halves. `cache` is passed to `measure_all`. KaoError when `root` holds no set."""
    counter = counter or CrowdCounter()
    sets = _held_out_sets(root, groups)
    if not sets:
        raise KaoError(f"{root}: holds none of the crowd training sets ({', '.join(DATASETS)})")
    rows: list[Row] = []
    report: dict[str, Any] = {"sets": {}, "rule": counter.rule()}
    for dataset, (images, train_counts) in sets.items():
        measured = measure_all([im.path for im in images], counter, cache)
        half = len(images) // 2
        rows += [
            Row(dataset, im.name, im.count, m, i < half)
            for i, (im, m) in enumerate(zip(images, measured, strict=True))
        ]
        truth = [im.count for im in images]
        methods = {m: scores(truth, [x.count(m) for x in measured]) for m in CHOICES}
        methods["auto"] = scores(truth, [x.count(choose(x)) for x in measured])
        if train_counts is not None:
            methods[TRAIN_MEAN] = scores(truth, [float(np.mean(train_counts))] * len(images))
        chosen = [choose(x) for x in measured]
        report["sets"][dataset] = {
            "scene": SCENE_TYPES[dataset],
            "images": len(images),
            "people": int(sum(truth)),
            "count_range": [min(truth), max(truth)],
            "held_out": "group photos (no training)"
            if train_counts is None
            else f"{len(images)} of {len(images) + len(train_counts)} (contiguous fold)",
            "methods": methods,
            "auto_chose": {c: chosen.count(c) for c in sorted(set(chosen))},
            "report_half": _rule_scores(
                [r for r in rows if r.dataset == dataset and not r.tune], counting.RULE
            )
            | {"images": len(images) - half},
        }
    tune = [r for r in rows if r.tune]
    rule = fit_rule(tune)
    ranges = fit_ranges(tune, rule)
    report["fitted"] = {
        "rule": asdict(rule),
        "ranges": ranges,
        "tune_images": len(tune),
        "report_half": {
            dataset: _rule_scores(
                [r for r in rows if r.dataset == dataset and not r.tune], rule, ranges
            )
            for dataset in sets
        },
    }
    report["per_image"] = [
        {"set": r.dataset, "image": r.name, "true": r.truth, "tune": r.tune}
        | {m: round(c, 1) for m, c in r.measured.counts.items()}
        | {"faces": r.measured.faces, "face_height": round(r.measured.face_height, 1)}
        for r in rows
    ]
    return report
