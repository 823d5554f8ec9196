"""How well kao's quality reading predicts recognition, for the enrolment gate
(`kao.quality.MIN_ENROL_QUALITY`): LFW genuine pairs with one photo degraded.

    .venv/bin/python scripts/enrolment_quality.py --data ../shared/data/lfw --pairs 300

For `--pairs` seeded people with two or more photos, two of their photos: the first is degraded
in each of `SETTINGS` (shrunk so the face is about N px, Gaussian blur of N px, darkened to a
share of its brightness), its largest face found and embedded as enrolment does
(`FaceEmbedder.embed_one`) and read (`kao.quality.enrolment_quality`); the pair is accepted
when its distance to the second photo's embedding is under the model's distance at a
false-accept rate of 1e-3. Prints
JSON: per setting the median quality and the acceptance, per quality band the acceptance, and
per candidate gate the share refused with the acceptance of the faces it keeps and refuses.
LFW is a recognition benchmark, which is what this measures."""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import cv2
import numpy as np

from kao.evaluation import lfw
from kao.image import load_image
from kao.quality import enrolment_quality, face_quality
from kao.recognition import FaceEmbedder, NoFaceError
from kao.recognition.verify import threshold_at_far

LFW_FACE = 130.0
"""The typical face box side of a 250 px LFW photo, pixels."""
SETTINGS = (
    ("none", 0.0),
    ("size", 64.0),
    ("size", 40.0),
    ("size", 28.0),
    ("size", 20.0),
    ("size", 14.0),
    ("blur", 2.0),
    ("blur", 4.0),
    ("blur", 6.0),
    ("dark", 0.25),
    ("dark", 0.12),
)
BANDS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 1.01)
GATES = (0.1, 0.15, 0.2, 0.25, 0.3, 0.4)


def degrade(rgb: np.ndarray, kind: str, value: float) -> np.ndarray:
    """`rgb` shrunk so its face is about `value` px ("size"), blurred by a Gaussian of `value`
    px ("blur"), darkened to `value` of its brightness ("dark"), or as it is ("none")."""
    if kind == "size":
        scale = value / LFW_FACE
        return cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    if kind == "blur":
        return cv2.GaussianBlur(rgb, (0, 0), value)
    if kind == "dark":
        return (rgb.astype(np.float32) * value).astype(np.uint8)
    return rgb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/lfw"))
    parser.add_argument("--pairs", type=int, default=300)
    parser.add_argument("--model", default="edgeface_xs")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    paths = lfw.all_images(args.data)
    by_person: dict[str, list[Path]] = {}
    for path in paths:
        by_person.setdefault(path.parent.name, []).append(path)
    people = sorted(name for name, photos in by_person.items() if len(photos) >= 2)
    rng = np.random.default_rng(args.seed)
    chosen = [people[i] for i in rng.choice(len(people), args.pairs, replace=False)]
    embedder = FaceEmbedder(model=args.model)
    limit = threshold_at_far(1e-3, args.model)

    def embedded(rgb: np.ndarray) -> tuple[np.ndarray, float] | None:
        try:
            face, _, _ = embedder.embed_one(rgb)
        except NoFaceError:
            return None
        return face.embedding, enrolment_quality(face_quality(rgb, face))

    rows = []  # (setting index, quality, accepted)
    for person in chosen:
        first, second = (by_person[person][i] for i in rng.choice(len(by_person[person]), 2, False))
        reference = embedded(load_image(second))
        if reference is None:
            continue
        rgb = load_image(first)
        for index, (kind, value) in enumerate(SETTINGS):
            found = embedded(degrade(rgb, kind, value))
            if found is None:  # no face found: counted as refused and not accepted
                rows.append((index, 0.0, False))
                continue
            distance = float(np.linalg.norm(found[0] - reference[0]))
            rows.append((index, found[1], distance < limit))
    setting, quality, accepted = (np.array(column) for column in zip(*rows, strict=True))
    report = {
        "model": args.model,
        "pairs": len(rows) // len(SETTINGS),
        "threshold_far_1e-3": round(limit, 4),
        "settings": [
            {
                "degradation": f"{kind} {value:g}",
                "median_quality": round(float(np.median(quality[setting == i])), 3),
                "accepted": round(float(accepted[setting == i].mean()), 3),
            }
            for i, (kind, value) in enumerate(SETTINGS)
        ],
        "bands": [
            {
                "quality": f"{low_:.1f}-{min(high, 1.0):.1f}",
                "faces": int(mask.sum()),
                "accepted": round(float(accepted[mask].mean()), 3),
            }
            for low_, high in itertools.pairwise(BANDS)
            if (mask := (quality >= low_) & (quality < high)).any()
        ],
        "gates": [
            {
                "gate": gate,
                "refused": round(float((quality < gate).mean()), 3),
                "accepted_kept": round(float(accepted[quality >= gate].mean()), 3),
                "accepted_refused": round(float(accepted[quality < gate].mean()), 3),
            }
            for gate in GATES
        ],
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
