"""Choose the quality minimums of `kao.quality.MIN_PARTS` (the sharpness and exposure below
which an attribute is not read) on tuning data that `kao eval` does not report on:

    .venv/bin/python scripts/quality_gates.py --utkface ../shared/data/utkface \\
        --fer ../shared/data/fer2013/train.npz --log docs/training/quality_gates.json

The curves: `kao.evaluation.utkface.quality_curve` on half of UTKFace's test faces (every
`EVERY`-th from the first, by name; `kao eval age-gender --quality --every 14 --offset 7` reports
the other half: kao's age and gender head was fitted on UTKFace's training faces, on which it
reads better than on faces it never saw) and `kao.evaluation.fer2013.quality_curve` on FER2013's
held-out training images (`validation_split`; emotion): the faces as they are, blurred,
darkened and brightened, binned by the measured part. The rule is `kao.quality.MIN_SIZE`'s:
an attribute is read in a bin while it keeps at least `KEEP` of its gain over the trivial answer
(the tuning faces' median age; the commoner gender; the commonest emotion) that it has on the
faces as they are; the minimum is the lower edge of the lowest bin of the unbroken run of such
bins from the best one. Bins of fewer than `MIN_BIN` readings are not judged. The log also
gives the table by head turn (|yaw|), but UTKFace's faces hardly turn (5 of 800 training faces
over 30 degrees), so no head-turn limit can be chosen on them. Copy the printed values into
kao/quality.py."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from kao.evaluation import fer2013, utkface

EVERY = 14
"""Every EVERY-th UTKFace test face from the first is read (286 of 4,000)."""
KEEP = 0.85
"""Share of the full gain over the trivial answer a bin must keep (as for `MIN_SIZE`)."""
MIN_BIN = 30
"""Fewest readings in a bin for it to be judged."""


def kept(
    rows: list[dict[str, Any]], gain: Callable[[dict[str, Any]], float], full: float
) -> list[dict[str, Any]]:
    """`rows` (bins) with "kept": each bin's gain over the trivial answer as a share of `full`."""
    return [{**row, "kept": round(gain(row) / full, 3)} for row in rows]


def lowest_readable(rows: list[dict[str, Any]], *, rising: bool) -> float | None:
    """The edge beyond which the attribute is not read, judged on the bins of at least
    `MIN_BIN` readings: with `rising` (sharpness, exposure: higher is better) the "from" of the
    lowest bin of the unbroken run of bins keeping `KEEP` from the top; else (|yaw|: lower is
    better) the "to" of the highest bin of the run from the bottom; None when every judged bin
    keeps it (no limit)."""
    judged = [row for row in rows if row["n"] >= MIN_BIN]
    ordered = sorted(judged, key=lambda row: row["from"], reverse=rising)
    edge: float | None = None
    for row in ordered:
        if row["kept"] < KEEP:
            return edge
        edge = row["from"] if rising else row["to"]
    return None


def gates(report: dict[str, Any], measures: dict[str, tuple[str, float, bool]]) -> dict[str, Any]:
    """For each attribute of `measures` ({attribute: (report column, trivial value, lower is
    better)}): its gain per bin of each part and the chosen edges."""
    full = {row["view"]: row for row in report["views"]}["original"]
    chosen: dict[str, Any] = {}
    for attribute, (column, trivial, lower_better) in measures.items():

        def gain(
            row: dict[str, Any], c: str = column, t: float = trivial, lb: bool = lower_better
        ) -> float:
            return t - row[c] if lb else row[c] - t

        parts = {}
        for part in ("sharpness", "exposure", "yaw"):
            if part not in report:
                continue
            rows = kept(report[part], gain, gain(full))
            parts[part] = {"edge": lowest_readable(rows, rising=part != "yaw"), "bins": rows}
        chosen[attribute] = {"trivial": round(trivial, 4), "full": full[column], **parts}
    return chosen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utkface", type=Path, required=True, help="UTKFace test folder")
    parser.add_argument("--fer", type=Path, required=True, help="FER2013 train.npz")
    parser.add_argument("--log", type=Path, default=Path("docs/training/quality_gates.json"))
    args = parser.parse_args()
    faces = utkface.load_faces(args.utkface)[0][::EVERY]
    ages = np.array([face.age for face in faces], np.float64)
    male = np.mean([face.gender == "male" for face in faces])
    face_report = utkface.quality_curve(args.utkface, every=EVERY)
    data = fer2013.load_dataset(args.fer)
    _, held = fer2013.validation_split(data.labels)
    held_out = fer2013.Dataset(data.images[held], data.labels[held])
    emotion_report = fer2013.quality_curve(held_out)
    commonest = np.bincount(held_out.labels).max() / len(held_out.labels)
    chosen = gates(
        face_report,
        {
            "age": ("age_mae", float(np.abs(ages - np.median(ages)).mean()), True),
            "gender": ("gender_accuracy", float(max(male, 1 - male)), False),
        },
    ) | gates(emotion_report, {"emotion": ("accuracy", float(commonest), False)})
    log = {
        "rule": {"keep": KEEP, "min_bin": MIN_BIN, "utkface_every": EVERY},
        "chosen": chosen,
        "curves": {"utkface": face_report, "fer2013_held_out": emotion_report},
    }
    args.log.parent.mkdir(parents=True, exist_ok=True)
    args.log.write_text(json.dumps(log, indent=1) + "\n")
    for attribute, parts in chosen.items():
        edges = {
            part: parts[part]["edge"] for part in ("sharpness", "exposure", "yaw") if part in parts
        }
        print(attribute, json.dumps(edges))
    return 0


if __name__ == "__main__":
    sys.exit(main())
