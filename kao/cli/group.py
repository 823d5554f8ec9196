"""`kao group DIR`: sort the faces of a photo collection by person, without names."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from kao.cli.batch import add_device_option, add_model_option, add_threshold_options, collect
from kao.cli.text import counted
from kao.errors import KaoError
from kao.jobs.inputs import label, load
from kao.progress import progress
from kao.recognition import FaceEmbedder
from kao.recognition.cluster import GROUP_THRESHOLDS, Grouping, group
from kao.recognition.graph_cluster import group_results

THUMB = 112
"""Side of a face thumbnail in the contact sheets, pixels."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `kao group` to the `kao` parser."""
    parser = subparsers.add_parser(
        "group",
        help="cluster every face of a photo collection by person",
        description="Find every face in the photos (folders walked recursively), group them by "
        "person and report how many people there are. With --from-results, group the faces "
        "that `kao embed --results` recorded instead, through a nearest-neighbour graph (no "
        "all-pairs matrix: for collections of any size).",
    )
    parser.add_argument("inputs", nargs="*", metavar="IMAGE_OR_DIR")
    parser.add_argument(
        "--from-results",
        type=Path,
        metavar="RESULTS",
        help="group the faces of this results file of `kao embed --results` (.jsonl or "
        ".parquet) instead of photos; its model's cut applies",
    )
    parser.add_argument(
        "--out",
        type=Path,
        metavar="DIR_OR_FILE",
        help="write a folder of face crops per person; with --from-results, a file of one row "
        "per face with its person (.csv or .jsonl)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    add_model_option(parser)
    cuts = ", ".join(f"{model} {cut}" for model, cut in GROUP_THRESHOLDS.items())
    add_threshold_options(parser, default=f"the model's own cut: {cuts}")
    add_device_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Group with `kao.group` (or `group_results`) and report; exit 1 if an input could not be
    read (the rest still done)."""
    if args.from_results is not None:
        return _run_from_results(args)
    if not args.inputs:
        raise KaoError("kao group needs photos or folders, or --from-results RESULTS")
    jobs, missing = collect(args.inputs)
    sources = [job.path for job in jobs]
    grouping = group(
        progress(sources, len(sources)),
        threshold=args.threshold,
        far=args.far,
        thumbnail=THUMB if args.out else 0,
        names=[label(source) for source in sources],
        embedder=FaceEmbedder(model=args.model),
        read=load,
    )
    errors = [*missing, *grouping.errors]
    for error in errors:
        print(f"kao: error: {error}", file=sys.stderr)
    grouping = replace(grouping, errors=errors)
    if args.out:
        _write(args.out, grouping)
    _report(args, grouping.to_dict(), f"{args.out}/" if args.out else None)
    return 1 if errors else 0


def _run_from_results(args: argparse.Namespace) -> int:
    """`kao group --from-results RESULTS [--out GROUPS.csv|.jsonl]`: the groups of the recorded
    faces, one row per face in --out (then only the summary is printed). Photos that failed in
    `kao embed` are counted among the images and listed as errors, but do not fail this run."""
    if args.inputs:
        raise KaoError("--from-results groups a results file; give no photos or folders with it")
    if args.out is not None and args.out.suffix.lower() not in (".csv", ".jsonl"):
        raise KaoError(f"--out {args.out}: with --from-results, a .csv or .jsonl file")
    result = group_results(args.from_results, threshold=args.threshold, far=args.far)
    if args.out is not None:
        result.write(args.out)
    report = result.grouping().to_dict()
    if args.out is not None:
        report["groups"] = []
    report["threshold"] = result.threshold
    report["graph"] = {"pairs": len(result.graph.first), "capped": result.graph.capped}
    _report(args, report, str(args.out) if args.out else None)
    return 0


def _report(args: argparse.Namespace, report: dict[str, Any], written: str | None) -> None:
    """Print `report` (`Grouping.to_dict`) as JSON or as text, then where it was written."""
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(
        f"{counted(report['people'], 'person')} in {counted(report['faces'], 'face')} of "
        f"{counted(report['images'], 'image')}"
    )
    for entry in report["groups"]:
        images = sorted({Path(f["image"]).name for f in entry["faces"]})
        shown = ", ".join(images[:5]) + (", ..." if len(images) > 5 else "")
        print(f"  person {entry['person']}: {counted(len(entry['faces']), 'face')} ({shown})")
    if written:
        print(f"  written to {written}")


def _write(out: Path, grouping: Grouping) -> None:
    """out/person_001/ with one crop per face and out/person_001.jpg, its contact sheet, from
    the faces' thumbnails."""
    crops = [found.thumbnail for found in grouping.found]
    for number, members in enumerate(grouping.groups, 1):
        folder = out / f"person_{number:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        for k, i in enumerate(members, 1):
            stem = Path(grouping.found[i].image).stem
            Image.fromarray(crops[i]).save(folder / f"{k:03d}_{stem}.jpg", quality=90)
        columns = min(len(members), 8)
        rows = -(-len(members) // columns)
        sheet = np.full((rows * THUMB, columns * THUMB, 3), 255, np.uint8)
        for k, i in enumerate(members):
            r, c = divmod(k, columns)
            sheet[r * THUMB : (r + 1) * THUMB, c * THUMB : (c + 1) * THUMB] = crops[i]
        Image.fromarray(sheet).save(out / f"person_{number:03d}.jpg", quality=90)
