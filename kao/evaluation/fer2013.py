"""FER2013 emotion accuracy: overall, per class (recall) and the confusion matrix.

A data file is an `.npz` with `images` uint8 (N, 48, 48) grey faces, `labels` integer (N,)
indices into `classes`, and `classes` the class names (FER2013's "surprise" is kao's
"surprised"); the labels are mapped to `kao.face.EMOTIONS` by name."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from kao.errors import KaoError
from kao.evaluation.calibration import reliability, tempered
from kao.face import EMOTIONS

ALIASES = {"surprise": "surprised"}
BATCH = 256
"""Images per call of the model under evaluation."""
SIZES = (48, 32, 24, 16)
"""Face sizes (the detected box's side, pixels) of the accuracy-versus-size curve; FER2013's
own faces are about 53 px (see `shrunk_faces`), so larger sizes cannot be made from them."""


@dataclass(frozen=True)
class Dataset:
    """`images` uint8 (N, 48, 48) grey, `labels` int64 (N,) indices into `EMOTIONS`."""

    images: np.ndarray
    labels: np.ndarray


def load_dataset(path: Path) -> Dataset:
    """Read and check a FER2013-style `.npz` (see the module docstring)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [key for key in ("images", "labels", "classes") if key not in data.files]
            if missing:
                raise KaoError(f"{path}: not a FER2013 .npz (no {', '.join(missing)} array)")
            images, labels, classes = data["images"], data["labels"], data["classes"]
    except (OSError, ValueError, zipfile.BadZipFile) as error:
        raise KaoError(f"{path}: cannot read a FER2013 .npz ({error})") from error
    if images.dtype != np.uint8 or images.ndim != 3 or len(images) == 0:
        raise KaoError(f"{path}: images must be uint8 (N, H, W), got {images.dtype} {images.shape}")
    if labels.shape != (len(images),) or not np.issubdtype(labels.dtype, np.integer):
        raise KaoError(f"{path}: labels must be {len(images)} integers, got {labels.shape}")
    names = [ALIASES.get(str(c), str(c)) for c in classes]
    unknown = sorted(set(names) - set(EMOTIONS))
    if unknown or len(names) != len(set(names)):
        raise KaoError(f"{path}: classes {list(classes)} are not kao's emotions {list(EMOTIONS)}")
    if labels.min() < 0 or labels.max() >= len(names):
        raise KaoError(f"{path}: labels outside 0..{len(names) - 1}")
    to_kao = np.array([EMOTIONS.index(name) for name in names])
    return Dataset(images, to_kao[labels.astype(np.int64)])


def evaluate(
    probabilities: Callable[[np.ndarray], np.ndarray],
    data: Dataset,
    temperature: float | None = None,
) -> dict[str, Any]:
    """Accuracy of `probabilities` ((N, H, W) uint8 grey -> (N, 7) in `EMOTIONS` order) on
    `data`: {"accuracy", "per_class" (recall of each class), "confusion" (7 x 7 counts, rows
    the true class, columns the predicted one, both in `EMOTIONS` order), "images",
    "calibration" (`kao.evaluation.calibration.reliability` of the top answers: of
    `probabilities` as they are, or with a `temperature`, "before" and "after" it is applied
    (`tempered`), which changes no answer)}."""
    p = np.concatenate(
        [probabilities(data.images[i : i + BATCH]) for i in range(0, len(data.images), BATCH)]
    )
    predicted = p.argmax(axis=1)
    right = predicted == data.labels
    if temperature is None:
        calibration = reliability(p.max(axis=1), right)
    else:
        calibration = {
            "temperature": temperature,
            "before": reliability(p.max(axis=1), right),
            "after": reliability(tempered(p, temperature).max(axis=1), right),
        }
    confusion = np.zeros((len(EMOTIONS), len(EMOTIONS)), np.int64)
    np.add.at(confusion, (data.labels, predicted), 1)
    totals = confusion.sum(axis=1)
    return {
        "accuracy": round(float(np.trace(confusion) / confusion.sum()), 4),
        "per_class": {
            name: round(float(confusion[i, i] / totals[i]), 4) if totals[i] else None
            for i, name in enumerate(EMOTIONS)
        },
        "confusion": confusion.tolist(),
        "images": len(data.images),
        "calibration": calibration,
    }


MODELS = ("kao", "kao_14_views", "mini_xception")


def _model(name: str) -> tuple[Callable[[np.ndarray], np.ndarray], float | None]:
    """The `probabilities` function of the model called `name` ("kao", "kao_14_views" or
    "mini_xception") and the temperature that calibrates it (kao's network: its probabilities
    before calibration, and `kao.attributes.emotion.TEMPERATURE`; mini-Xception: as it is,
    None)."""
    if name in ("kao", "kao_14_views"):
        from kao.attributes.emotion import (
            DEFAULT_VIEWS,
            SHIFTED_VIEWS,
            TEMPERATURE,
            EmotionClassifier,
        )

        views = DEFAULT_VIEWS if name == "kao" else SHIFTED_VIEWS
        return EmotionClassifier(views=views, temperature=1.0).probabilities, TEMPERATURE
    from kao.attributes.mini_xception import MiniXception

    return MiniXception().probabilities, None


def run(path: Path, model: str = "kao") -> dict[str, Any]:
    """The report of `kao eval emotion`: the first model's `evaluate` result with its "model"
    name; with `model` "all", kao's network first, then kao's network read in 14 views and
    mini-Xception under "baselines". kao's calibration is measured before and after its
    temperature."""
    if model not in (*MODELS, "all"):
        raise KaoError(f"unknown emotion model {model!r} ({', '.join(MODELS)} or all)")
    data = load_dataset(path)
    names = list(MODELS) if model == "all" else [model]
    results = []
    for name in names:
        probabilities, temperature = _model(name)
        results.append({"model": name, **evaluate(probabilities, data, temperature)})
    report = results[0]
    if len(results) > 1:
        report["baselines"] = {entry.pop("model"): entry for entry in results[1:]}
    return report


def shrunk_faces(images: np.ndarray, side: int) -> np.ndarray:
    """FER2013 faces (N, 48, 48) uint8 (or kao's own emotion crops, (N, 96, 96)) as
    `kao.analyze` would see them in a photo where the face's box is `side` pixels: a 48 x 48
    image is 0.9 (`kao.attributes.emotion.CROP_SCALE`) of the box kao's detector finds on it
    (about 53 px), as kao's crop is of its box, so it is shrunk (area averaging) to round(0.9
    `side`) pixels, then enlarged (bilinear) to the 96 x 96 crop the emotion model cuts from a
    photo -> (N, 96, 96) uint8. ValueError if `side` would enlarge the faces."""
    from kao.attributes.emotion import CROP_SCALE, CROP_SIZE

    small = round(CROP_SCALE * side)
    if small > images.shape[1]:
        raise ValueError(f"FER2013 faces are {images.shape[1] / CROP_SCALE:.0f} px, under {side}")
    out = np.empty((len(images), CROP_SIZE, CROP_SIZE), np.uint8)
    for i, image in enumerate(images):
        shrunk = cv2.resize(image, (small, small), interpolation=cv2.INTER_AREA)
        out[i] = cv2.resize(shrunk, (CROP_SIZE, CROP_SIZE), interpolation=cv2.INTER_LINEAR)
    return out


def size_curve(path: Path, sizes: tuple[int, ...] = SIZES, model: str = "kao") -> dict[str, Any]:
    """Accuracy of emotion model `model` on the FER2013 file `path` at the faces' own size and
    shrunk to each of `sizes` (`shrunk_faces`): {"images", "rows": [{"size" (px or "full"),
    "accuracy", "per_class"}]}."""
    data = load_dataset(path)
    probabilities = _model(model)[0]
    rows = []
    for size in ("full", *sizes):
        images = data.images if size == "full" else shrunk_faces(data.images, size)
        result = evaluate(probabilities, Dataset(images, data.labels))
        rows.append(
            {"size": size, "accuracy": result["accuracy"], "per_class": result["per_class"]}
        )
    return {"images": len(data.images), "model": model, "rows": rows}


BLURS = (0.5, 1.0, 1.5, 2.0, 3.0)
"""Gaussian blurs (sigma, pixels of the 48 px faces) of the accuracy-versus-quality curve: about
the blurs of `kao.evaluation.utkface.BLURS` on UTKFace's larger faces."""
LIGHTS = (0.35, 0.2, 0.1, 2.0, 3.0)
"""Factors of the pixel values (under 1 darkens, over 1 brightens and clips)."""


def quality_curve(data: Dataset, model: str = "kao") -> dict[str, Any]:
    """Accuracy of emotion model `model` on the faces of `data` as they are, blurred (`BLURS`)
    and darkened or brightened (`LIGHTS`), binned by the sharpness and exposure
    `kao.quality` measures on each face enlarged to its `CROP` px grey crop (a 48 px FER2013
    face fills about the box kao's detector finds, as `shrunk_faces` says): the report of
    `kao.evaluation.degrade.curve` with "accuracy"."""
    from kao.evaluation.degrade import curve, degraded
    from kao.quality import CROP, exposure, sharpness

    probabilities = _model(model)[0]
    views = ("original", *(f"blur {s:g}" for s in BLURS), *(f"light {f:g}" for f in LIGHTS))
    names, sharp, expo, right = [], [], [], []
    for view in views:
        images = np.stack([degraded(image, view) for image in data.images])
        grey = [cv2.resize(image, (CROP, CROP), interpolation=cv2.INTER_LINEAR) for image in images]
        sharp += [sharpness(g) for g in grey]
        expo += [exposure(g) for g in grey]
        chosen = np.concatenate(
            [probabilities(images[i : i + BATCH]) for i in range(0, len(images), BATCH)]
        ).argmax(axis=1)
        right.append((chosen == data.labels).astype(np.float64))
        names += [view] * len(images)
    return curve(
        views, np.array(names), np.array(sharp), np.array(expo), {"accuracy": np.concatenate(right)}
    )


VALIDATION_FRACTION, VALIDATION_SEED = 0.1, 2013
"""The held-out part of train.npz that `scripts/train_emotion.py` keeps out of training
(`--val-fraction`, `--split-seed`) for kao's networks (docs/training/emotion*.json)."""


def validation_split(
    labels: np.ndarray, fraction: float = VALIDATION_FRACTION, seed: int = VALIDATION_SEED
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (train, held-out) index arrays of a stratified split of FER2013's `labels` (N,)
    in the file's own class order, as `scripts/train_emotion.py` draws it: for each class in
    turn, a seeded permutation of its images, the first round(`fraction` n) held out."""
    rng = np.random.default_rng(seed)
    train, held = [], []
    for c in range(int(labels.max()) + 1):
        index = rng.permutation(np.flatnonzero(labels == c))
        count = round(len(index) * fraction)
        held.append(index[:count])
        train.append(index[count:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(held))
