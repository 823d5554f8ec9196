"""`kao count`: how many people are in each image (crowd density maps or face detection)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from kao.cli.batch import add_batch_options, add_inputs_argument, add_output_options, run_batch
from kao.jobs import Task


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `kao count` to the `kao` parser."""
    parser = subparsers.add_parser(
        "count",
        help="count the people in images (crowd density or face detection)",
        description="Count the people in images and folders (walked recursively): MCNN crowd "
        "density maps (ShanghaiTech A for dense crowds, B for sparse ones) or detected faces; "
        "auto picks one per image (see docs/BENCHMARKS.md for the rule and its accuracy).",
    )
    add_inputs_argument(parser)
    parser.add_argument(
        "--out", type=Path, metavar="DIR", help="write heat maps (or detected faces) here"
    )
    add_output_options(parser)
    add_batch_options(parser)
    parser.add_argument(
        "--method",
        choices=("auto", "density", "detection"),
        default="auto",
        help="auto (default): detection for a few large faces unless MCNN-A sees a dense crowd, "
        "else density; density: MCNN-A, or MCNN-B when A counts 250 or fewer; detection: the "
        "number of faces",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Count every input; exit 1 if any input failed (the others are still done)."""
    task = Task("count", {"method": args.method})
    return run_batch(args.inputs, task, _print_text, out=args.out, output=args.output, args=args)


def _print_text(record: dict[str, Any]) -> None:
    people = record["count"]
    print(
        f"{record['image']}: {people} {'person' if people == 1 else 'people'} ({record['method']})"
    )
    if "annotated" in record:
        print(f"  annotated: {record['annotated']}")
