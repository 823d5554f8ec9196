"""`kao detect`: find faces in images and folders; text, JSON or annotated copies."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from kao.cli.batch import (
    add_batch_options,
    add_detector_option,
    add_inputs_argument,
    add_output_options,
    check_min_score,
    run_batch,
)
from kao.cli.drawing import add_draw_option
from kao.cli.text import counted, quality_line
from kao.jobs import Task
from kao.render import DETECT_DRAWING


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `kao detect` to the `kao` parser."""
    parser = subparsers.add_parser(
        "detect",
        help="find faces: boxes, scores and 5 keypoints",
        description="Find every face in images and folders (walked recursively).",
    )
    add_inputs_argument(parser)
    parser.add_argument("--out", type=Path, metavar="DIR", help="write annotated copies here")
    add_output_options(parser)
    add_batch_options(parser)
    parser.add_argument(
        "--min-score",
        type=float,
        default=0.6,
        metavar="S",
        help="drop faces scoring below S, 0-1 (default 0.6)",
    )
    parser.add_argument(
        "--min-size",
        type=float,
        default=0.0,
        metavar="PX",
        help="drop faces whose box is smaller than PX pixels (default 0)",
    )
    add_detector_option(parser)
    parser.add_argument(
        "--masked-faces",
        action="store_true",
        help="also run the masked-face pass (finds faces behind a mask; about 10 ms more a photo)",
    )
    add_draw_option(parser, DETECT_DRAWING)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Detect faces in every input; exit 1 if any input failed (the others are still done)."""
    check_min_score(args.min_score)
    task = Task(
        "detect",
        {
            "min_score": args.min_score,
            "min_size": args.min_size,
            "detector": args.detector,
            "masked_faces": args.masked_faces,
            "draw": args.draw,
        },
    )
    return run_batch(args.inputs, task, _print_text, out=args.out, output=args.output, args=args)


def _print_text(record: dict[str, Any]) -> None:
    faces = record["faces"]
    print(f"{record['image']}: {counted(len(faces), 'face')}")
    for number, face in enumerate(faces, 1):
        box = ", ".join(f"{v:.0f}" for v in face["box"])
        print(f"  face {number}: box [{box}]  score {face['score']:.3f}")
        print(f"    {quality_line(face['quality'])}")
    if "annotated" in record:
        print(f"  annotated: {record['annotated']}")
