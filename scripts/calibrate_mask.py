"""Fit the mask decision and calibration (`kao.attributes.mask.THRESHOLD` and `SCALE`) on data
that `kao eval mask` never measures.

    .venv/bin/python scripts/calibrate_mask.py --data ../shared/data/mask \\
        --wider .data/wider_full/WIDER_val \\
        --wider-exclude ../shared/data/widerface_val_subset/subset_list.txt \\
        --cache /tmp/mask/calibration.npz

The tuning data, read as `kao eval mask` reads its own:
- bare faces: the network's p_mask of every face of `BARE_MIN_SIDE` px or more that the analysis
  detector finds on the WIDER FACE validation photos of `TUNING_EVENTS`, except those
  `scripts/train_mask.py` may have trained on (`wider_training_sample`); nobody wears a mask
  there;
- the mask set: the held-out images of the tuning half (`tuning_groups`) of the near-duplicate
  groups with no member in the training part (`unseen`), both classes.

THRESHOLD is the largest network p_mask, on a grid of `GRID` log-odds steps, at which the mask
set's tuning images are called right as often as at the network's own 0.5 (a higher threshold
costs masked faces): the fewest bare faces called "mask" that costs no tuning image. No
threshold meets both of the issue's targets: the network calls under 1% of the tuning events'
bare faces "mask" only from p_mask 0.999, where it misses a fifth of the tuning masks (the log's
table of both figures against the threshold). SCALE is then the factor of the log-odds around
THRESHOLD that minimises the log-loss of all the tuning data together (bare faces and the mask
set's images, each counted once). The result and the figures the choice rests on go to
docs/training/mask_calibration.json; copy THRESHOLD and SCALE into kao/attributes/mask.py."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from kao.attributes.mask import MaskClassifier
from kao.detection import analysis_detector
from kao.evaluation import mask as mask_eval
from kao.evaluation.calibration import binary_reliability, log_scale_minimum

GRID = np.arange(0.0, 12.01, 0.05)
"""Candidate thresholds, as log-odds of the network's p_mask."""
TABLE = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 0.999)
"""Thresholds at which the log shows both figures."""


def tuning_data(
    data: Path, wider: Path, exclude: Path, classifier: MaskClassifier
) -> dict[str, np.ndarray]:
    """The network's p_mask on the tuning data of the module docstring: "bare" (F,) for the
    WIDER faces, "mask_set" (M,) and "masked" (M,) bool for the mask set's images."""
    detector = analysis_detector()
    names = {line.strip() for line in exclude.read_text().splitlines()} - {""}
    trained = {key for key, _ in mask_eval.wider_training_sample(wider, names)}
    bare, _ = mask_eval.bare_face_probabilities(
        wider, mask_eval.TUNING_EVENTS, trained, classifier, detector
    )
    images = mask_eval.load_dataset(data)
    image_names = [im.name for im in images]
    groups = mask_eval.near_duplicate_groups(*mask_eval.file_hashes([im.path for im in images]))
    held_out = set(mask_eval.read_split()["held_out"])
    chosen = mask_eval.unseen(image_names, groups, held_out)
    chosen &= mask_eval.tuning_groups(image_names, groups)
    tuning = [im for im, keep in zip(images, chosen, strict=True) if keep]
    crops, _ = mask_eval.crops(tuning, detector)
    return {
        "bare": bare,
        "mask_set": classifier.network_probabilities(crops),
        "masked": np.array([im.masked for im in tuning], bool),
    }


def logit(p: np.ndarray) -> np.ndarray:
    """log(p / (1 - p)) of probabilities (N,), clipped to [1e-7, 1 - 1e-7]."""
    q = np.clip(np.asarray(p, np.float64), 1e-7, 1 - 1e-7)
    return np.log(q / (1 - q))


def choose_threshold(p_mask: np.ndarray, masked: np.ndarray) -> float:
    """The largest `GRID` log-odds at which the calls p_mask >= it on the mask set's tuning
    images (`p_mask` (M,), truth `masked` (M,) bool) are right as often as at 0.5, as a
    probability."""
    z = logit(p_mask)
    right = [int(((z >= step) == masked).sum()) for step in GRID]
    best = max(step for step, count in zip(GRID, right, strict=True) if count >= right[0])
    return float(1 / (1 + np.exp(-best)))


def table(data: dict[str, np.ndarray]) -> list[dict[str, float]]:
    """The bare faces' call rate and the mask set's tuning accuracy at each of `TABLE`."""
    return [
        {
            "threshold": t,
            "bare_call_rate": round(float((data["bare"] >= t).mean()), 4),
            "mask_set_accuracy": round(
                float(((data["mask_set"] >= t) == data["masked"]).mean()), 4
            ),
            "mask_set_with_mask": round(float((data["mask_set"][data["masked"]] >= t).mean()), 4),
        }
        for t in TABLE
    ]


def fit_scale(z: np.ndarray, positive: np.ndarray) -> float:
    """The scale a > 0 minimising the log-loss of sigmoid(a z) on log-odds `z` (N,) (already
    shifted to the threshold) against `positive` (N,) bool: a golden-section search on log a in
    [log 0.01, log 10]."""
    sign = np.where(positive, 1.0, -1.0)

    def loss(log_a: float) -> float:
        return float(np.logaddexp(0.0, -sign * np.exp(log_a) * z).mean())

    return log_scale_minimum(loss, 0.01, 10.0, 80)


def summary(data: dict[str, np.ndarray], threshold: float, scale: float) -> dict[str, Any]:
    """The tuning figures at `threshold` and `scale`: the bare faces' call rate, the mask set's
    accuracy, and the reliability of the calibrated probabilities."""
    shift = logit(np.array([threshold]))[0]
    p_bare = 1 / (1 + np.exp(-scale * (logit(data["bare"]) - shift)))
    p_set = 1 / (1 + np.exp(-scale * (logit(data["mask_set"]) - shift)))
    masked = data["masked"]
    called = p_set >= 0.5
    return {
        "bare_faces": len(p_bare),
        "bare_call_rate": round(float((p_bare >= 0.5).mean()), 4),
        "bare_call_rate_network_0.5": round(float((data["bare"] >= 0.5).mean()), 4),
        "mask_set_images": len(masked),
        "mask_set_accuracy": round(float((called == masked).mean()), 4),
        "mask_set_with_mask": round(float(called[masked].mean()), 4),
        "mask_set_without_mask": round(float((~called[~masked]).mean()), 4),
        "mask_set_accuracy_network_0.5": round(
            float(((data["mask_set"] >= 0.5) == masked).mean()), 4
        ),
        "reliability_all": binary_reliability(
            np.concatenate([p_bare, p_set]),
            np.concatenate([np.zeros(len(p_bare), bool), masked]),
        ),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder of the mask images")
    parser.add_argument("--wider", type=Path, required=True, help="WIDER FACE WIDER_val folder")
    parser.add_argument(
        "--wider-exclude", type=Path, required=True, help="list given to train_mask.py"
    )
    parser.add_argument("--cache", type=Path, help="npz keeping the network's p_mask")
    parser.add_argument("--log", type=Path, default=Path("docs/training/mask_calibration.json"))
    args = parser.parse_args()
    if args.cache is not None and args.cache.exists():
        with np.load(args.cache) as cached:
            data = {key: cached[key] for key in cached.files}
    else:
        data = tuning_data(args.data, args.wider, args.wider_exclude, MaskClassifier())
        if args.cache is not None:
            np.savez(args.cache, **data)
    threshold = choose_threshold(data["mask_set"], data["masked"])
    z = logit(np.concatenate([data["bare"], data["mask_set"]])) - logit(np.array([threshold]))
    positive = np.concatenate([np.zeros(len(data["bare"]), bool), data["masked"]])
    scale = fit_scale(z, positive)
    report = {
        "threshold": round(threshold, 4),
        "scale": round(scale, 4),
        "tuning_events": list(mask_eval.TUNING_EVENTS),
        "group_distance_bits": mask_eval.GROUP_DISTANCE,
        "tuning": summary(data, round(threshold, 4), round(scale, 4)),
        "by_threshold": table(data),
        "arguments": {k: str(v) for k, v in vars(args).items()},
    }
    args.log.parent.mkdir(parents=True, exist_ok=True)
    args.log.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
