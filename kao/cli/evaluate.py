"""`kao eval`: accuracy of kao's models on labelled data, beside other tools where asked."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from kao.cli.progress import progress
from kao.detection import MODELS
from kao.evaluation import baselines, widerface
from kao.image import load_image

EVAL_MIN_SCORE = 0.1
"""Detections down to this score enter the precision/recall curve (AP needs the low end)."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `kao eval` and its datasets to the `kao` parser."""
    parser = subparsers.add_parser("eval", help="measure accuracy on a labelled dataset")
    datasets = parser.add_subparsers(dest="dataset", required=True, metavar="DATASET")
    wider = datasets.add_parser(
        "widerface",
        help="face detection AP at IoU 0.5 on WIDER FACE val (easy, medium, hard)",
        description="Average precision at IoU 0.5 on the easy, medium and hard settings of the "
        "WIDER FACE validation images found under DATA (official protocol).",
    )
    wider.add_argument("--data", type=Path, required=True, help="WIDER FACE folder")
    wider.add_argument("--json", action="store_true", help="print JSON")
    wider.add_argument("--model", choices=sorted(MODELS), default="yunet-n")
    wider.add_argument(
        "--no-small-faces",
        dest="small_faces",
        action="store_false",
        help="whole-image pass only (to measure what the detail pass adds)",
    )
    wider.add_argument(
        "--baseline",
        action="store_true",
        help="also evaluate face_recognition 1.3 (dlib HOG) in the same run",
    )
    wider.set_defaults(run=run_widerface)


def run_widerface(args: argparse.Namespace) -> int:
    """Evaluate kao (and the baseline) on WIDER FACE and print AP per setting."""
    images = widerface.load_dataset(args.data)
    detectors = {
        "kao": baselines.kao_detector(
            model=args.model, min_score=EVAL_MIN_SCORE, small_faces=args.small_faces
        )
    }
    if args.baseline:
        detectors["face_recognition"] = baselines.face_recognition_hog()
    results: dict[str, dict[str, float]] = {}
    for name, detect in detectors.items():
        detections = [detect(load_image(im.path)) for im in progress(images, len(images))]
        results[name] = widerface.average_precision(images, detections)
    report: dict[str, Any] = {key: round(value, 4) for key, value in results["kao"].items()}
    report |= {
        "images": len(images),
        "faces": {s: int(sum(im.keep[s].sum() for im in images)) for s in widerface.SETTINGS},
        "detector": args.model,
        "min_score": EVAL_MIN_SCORE,
        "small_faces": args.small_faces,
    }
    if args.baseline:
        report["baselines"] = {
            "face_recognition": {k: round(v, 4) for k, v in results["face_recognition"].items()}
        }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"WIDER FACE AP@0.5 on {len(images)} images of {args.data}")
    for name, aps in results.items():
        print(f"  {name:<17} " + "  ".join(f"{s} {aps[s]:.3f}" for s in widerface.SETTINGS))
    return 0
