"""`kao count`: how many people are in each image (crowd density maps or face detection)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from kao.cli.detect import collect, write_image
from kao.crowd import CrowdCounter
from kao.crowd.heatmap import draw_count
from kao.errors import ImageError
from kao.image import load_image
from kao.progress import progress


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `kao count` to the `kao` parser."""
    parser = subparsers.add_parser(
        "count",
        help="count the people in images (crowd density or face detection)",
        description="Count the people in images and folders (walked recursively): MCNN crowd "
        "density maps (ShanghaiTech A for dense crowds, B for sparse ones) or detected faces; "
        "auto picks one per image (see docs/BENCHMARKS.md for the rule and its accuracy).",
    )
    parser.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR")
    parser.add_argument(
        "--out", type=Path, metavar="DIR", help="write heat maps (or detected faces) here"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
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
    counter = CrowdCounter()
    jobs, errors = collect(args.inputs)
    records: list[dict[str, Any]] = [{"image": e.source, "error": e.reason} for e in errors]
    for error in errors:
        print(f"kao: error: {error}", file=sys.stderr)
    written: set[Path] = set()
    for job in progress(jobs, total=len(jobs)):
        try:
            rgb = load_image(job.path)
        except ImageError as error:
            print(f"kao: error: {error}", file=sys.stderr)
            records.append({"image": str(job.path), "error": error.reason})
            continue
        result = counter.count(rgb, args.method)
        record = {
            "image": str(job.path),
            "width": int(rgb.shape[1]),
            "height": int(rgb.shape[0]),
            **result.to_dict(),
        }
        if args.out:
            target = write_image(args.out, job.relative, draw_count(rgb, result), written)
            record["annotated"] = str(target)
        records.append(record)
        if not args.json:
            _print_text(record)
    if args.json:
        print(json.dumps(records, indent=2))
    return 1 if any("error" in r for r in records) else 0


def _print_text(record: dict[str, Any]) -> None:
    people = record["count"]
    print(
        f"{record['image']}: {people} {'person' if people == 1 else 'people'} ({record['method']})"
    )
    if "annotated" in record:
        print(f"  annotated: {record['annotated']}")
