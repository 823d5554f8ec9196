"""Fit the calibration of kao's gender and emotion probabilities on held-out data.

    .venv/bin/python scripts/calibrate_attributes.py --utkface ../shared/data/utkface_train \\
        --faces 2600 --features /tmp/calib/train2600.npz --fer2013 ../shared/data/fer2013/train.npz

Gender (`kao.attributes.age_gender.GENDER_CALIBRATION`): the head was fitted on all of
utkface_train, so no face of it is unseen by the shipped head. The script takes a seeded random
`--faces` of them (seed 0), reads them as `scripts/fit_age_gender.py` does (photo, both views)
and cross-fits: each face's age and gender log-odds come from a head fitted the way
fit_age_gender.py fits it, on the other folds (5, seeded), never on that face. The scale and
bias of the log-odds are fitted on those out-of-fold log-odds (one view, as `kao.analyze` reads a
face), and the table of children's gender accuracy by estimated age and confidence is printed
for choosing `CHILD_AGE` and `CHILD_LEVEL`.

Emotion (`kao.attributes.emotion.TEMPERATURE`): the temperature of the averaged probabilities,
fitted on the 2,872 images of train.npz held out of the networks' training
(`kao.evaluation.fer2013.validation_split`). Never run on ../shared/data/utkface or FER2013's
public or private test: those are the evaluation sets."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import fit_age_gender as fit
import numpy as np

from kao.attributes import age_gender
from kao.attributes.emotion import EmotionClassifier
from kao.evaluation import fer2013
from kao.evaluation.calibration import (
    binary_reliability,
    fit_scale_bias,
    fit_temperature,
    reliability,
    tempered,
)
from kao.evaluation.utkface import UtkFace, load_faces, read_features

AGES = (3, 5, 8, 10, 12, 15)
"""Estimated ages (years) under which the children's table counts a face."""
OLD_AGES = (60, 65, 70, 75)
"""Estimated ages (years) from which the elders' table counts a face."""
LEVELS = (0.5, 0.8, 0.85, 0.9, 0.95)
"""Confidence levels of the children's table."""


def chosen_faces(root: Path, count: int) -> list[UtkFace]:
    """A seeded (0) random `count` of the UTKFace faces under `root`."""
    faces = load_faces(root)[0]
    order = np.random.default_rng(fit.SEED).permutation(len(faces))[:count]
    return [faces[i] for i in order]


def out_of_fold(reading: age_gender.Reading, faces: list[UtkFace]) -> tuple[np.ndarray, np.ndarray]:
    """Each face's estimated age (years) and gender log-odds of male (N,) each, first view,
    from a head fitted as fit_age_gender.py fits it on the other folds (both views)."""
    views = reading.male_p.shape[1]
    flat = reading.flat()
    ages = np.repeat([face.age for face in faces], views).astype(np.float64)
    male = np.repeat([face.gender == "male" for face in faces], views).astype(np.float64)
    x_age = age_gender.age_features(flat.embeddings, flat.age_p).astype(np.float64)
    x_gender = age_gender.gender_features(flat.embeddings, flat.age_p, flat.male_p)
    x_gender = x_gender.astype(np.float64)
    alpha, _ = fit.cross_validate(
        x_gender,
        male,
        fit.GENDER_ALPHAS,
        fit.logistic,
        lambda z, y: ((z > 0) == (y > 0.5)).mean(),
        views,
    )
    fold = np.random.default_rng(fit.SEED + 1).permutation(len(faces)) % fit.FOLDS
    first = np.arange(len(faces)) * views
    age_out, logit_out = np.empty(len(faces)), np.empty(len(faces))
    for k in range(fit.FOLDS):
        train = np.repeat(fold != k, views)
        test = fold == k
        mean, scale = x_age[train].mean(axis=0), x_age[train].std(axis=0) + 1e-6
        w1, b1, w2, b2 = fit.perceptron((x_age[train] - mean) / scale, ages[train])
        x = (x_age[first[test]] - mean) / scale
        age_out[test] = np.clip((np.maximum(x @ w1 + b1, 0) @ w2 + b2)[:, 0], 0.0, 100.0)
        w, b = fit.logistic(x_gender[train], male[train], alpha)
        logit_out[test] = x_gender[first[test]] @ w + b
    return age_out, logit_out


def levels_row(chosen: np.ndarray, p_male: np.ndarray, male: np.ndarray) -> dict[str, Any]:
    """For the faces `chosen` (N,) bool: how many, and the share given and the accuracy of the
    genders given at each of `LEVELS` of calibrated confidence."""
    confidence = np.maximum(p_male, 1 - p_male)
    right = (p_male >= 0.5) == male
    rows = {}
    for level in LEVELS:
        given = chosen & (confidence >= level)
        rows[str(level)] = {
            "given": round(float(given.sum() / max(chosen.sum(), 1)), 3),
            "accuracy": round(float(right[given].mean()), 4) if given.any() else None,
        }
    return {"n": int(chosen.sum()), "levels": rows}


def children_table(ages: np.ndarray, p_male: np.ndarray, male: np.ndarray) -> dict[str, Any]:
    """`levels_row` of the faces estimated under each of `AGES` years, and the accuracy of the
    genders of the others."""
    table = {f"under_{age}": levels_row(ages < age, p_male, male) for age in AGES}
    older = ages >= max(AGES)
    table[f"from_{max(AGES)}_accuracy"] = round(float(((p_male >= 0.5) == male)[older].mean()), 4)
    return table


def elders_table(ages: np.ndarray, p_male: np.ndarray, male: np.ndarray) -> dict[str, Any]:
    """`levels_row` of the faces estimated at each of `OLD_AGES` years or more."""
    return {f"from_{age}": levels_row(ages >= age, p_male, male) for age in OLD_AGES}


def gender(args: argparse.Namespace) -> dict[str, Any]:
    """The gender calibration fitted on out-of-fold readings of `--faces` utkface_train faces."""
    faces = chosen_faces(args.utkface, args.faces)
    if args.features and args.features.exists():
        with np.load(args.features) as data:
            reading = age_gender.Reading(data["embeddings"], data["age_p"], data["male_p"])
        if len(reading.male_p) != len(faces):
            raise SystemExit(f"{args.features}: {len(reading.male_p)} faces, not {len(faces)}")
    else:
        reading, _ = read_features(faces, cropped=False)
        if args.features:
            np.savez(args.features, **vars(reading))
    ages, logits = out_of_fold(reading, faces)
    male = np.array([face.gender == "male" for face in faces])
    a, b = fit_scale_bias(logits, male)
    p_raw = 1.0 / (1.0 + np.exp(-logits))
    p_cal = 1.0 / (1.0 + np.exp(-(a * logits + b)))
    return {
        "faces": len(faces),
        "out_of_fold_age_mae": round(float(np.abs(ages - [f.age for f in faces]).mean()), 3),
        "scale_bias": [round(a, 4), round(b, 4)],
        "before": binary_reliability(p_raw, male),
        "after": binary_reliability(p_cal, male),
        "children": children_table(ages, p_cal, male),
        "elders": elders_table(ages, p_cal, male),
    }


def emotion(path: Path) -> dict[str, Any]:
    """The emotion temperature fitted on the held-out images of FER2013's train.npz `path`."""
    with np.load(path) as raw:
        _, held = fer2013.validation_split(raw["labels"].astype(np.int64))
    data = fer2013.load_dataset(path)
    images, labels = data.images[held], data.labels[held]
    model = EmotionClassifier(temperature=1.0)
    probabilities = np.concatenate(
        [
            model.probabilities(images[i : i + fer2013.BATCH])
            for i in range(0, len(images), fer2013.BATCH)
        ]
    )
    temperature = fit_temperature(probabilities, labels)
    calibrated = tempered(probabilities, temperature)

    def measured(p: np.ndarray) -> dict[str, Any]:
        return reliability(p.max(axis=1), p.argmax(axis=1) == labels)

    return {
        "images": len(images),
        "temperature": round(temperature, 4),
        "before": measured(probabilities),
        "after": measured(calibrated),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utkface", type=Path, help="UTKFace training folder (utkface_train)")
    parser.add_argument("--faces", type=int, default=8000, help="how many of its faces")
    parser.add_argument("--features", type=Path, help="cache of their features (.npz)")
    parser.add_argument("--fer2013", type=Path, help="FER2013 train.npz")
    args = parser.parse_args()
    report: dict[str, Any] = {}
    if args.utkface:
        if args.utkface.resolve().name == "utkface":
            print("refusing to calibrate on the UTKFace evaluation set", file=sys.stderr)
            return 2
        report["gender"] = gender(args)
    if args.fer2013:
        if args.fer2013.name != "train.npz":
            print("calibrate on FER2013's train.npz only", file=sys.stderr)
            return 2
        report["emotion"] = emotion(args.fer2013)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
