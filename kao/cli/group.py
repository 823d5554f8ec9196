"""`kao group DIR`: sort the faces of a photo collection by person, without names."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

from kao.cli.batch import collect
from kao.cli.text import counted
from kao.errors import ImageError
from kao.face import Face
from kao.image import describe, load_image
from kao.progress import progress
from kao.recognition import default_embedder
from kao.recognition.cluster import GROUP_THRESHOLD, FoundFace, Grouping, group_faces

THUMB = 112
"""Side of a face thumbnail in the contact sheets, pixels."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `kao group` to the `kao` parser."""
    parser = subparsers.add_parser(
        "group",
        help="cluster every face of a photo collection by person",
        description="Find every face in the photos (folders walked recursively), group them by "
        "person and report how many people there are.",
    )
    parser.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR")
    parser.add_argument(
        "--out", type=Path, metavar="DIR", help="write a folder of face crops per person"
    )
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument(
        "--threshold",
        type=float,
        default=GROUP_THRESHOLD,
        help=f"merge groups closer than this (default {GROUP_THRESHOLD})",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Embed, cluster and report; exit 1 if an input could not be read (the rest still done)."""
    jobs, errors = collect(args.inputs)
    embedder = default_embedder()
    found: list[FoundFace] = []
    crops: list[np.ndarray] = []
    for job in progress(jobs, len(jobs)):
        try:
            rgb = load_image(job.path)
        except ImageError as error:
            errors.append(error)
            continue
        for face in embedder.embed(rgb):
            found.append(FoundFace(describe(job.path), face))
            crops.append(_crop(rgb, face))
    for error in errors:
        print(f"kao: error: {error}", file=sys.stderr)
    grouping = group_faces(found, len(jobs), errors, args.threshold)
    if args.out:
        _write(args.out, grouping, crops)
    report: dict[str, Any] = grouping.to_dict()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(
            f"{counted(report['people'], 'person')} in {counted(len(found), 'face')} of "
            f"{counted(len(jobs), 'image')}"
        )
        for entry in report["groups"]:
            images = sorted({Path(f["image"]).name for f in entry["faces"]})
            shown = ", ".join(images[:5]) + (", ..." if len(images) > 5 else "")
            print(f"  person {entry['person']}: {counted(len(entry['faces']), 'face')} ({shown})")
        if args.out:
            print(f"  written to {args.out}/")
    return 1 if errors else 0


def _crop(rgb: np.ndarray, face: Face) -> np.ndarray:
    """A THUMB x THUMB crop of the square around the face box with a 30% margin (black where
    it leaves the image)."""
    x1, y1, x2, y2 = face.box
    side = max(x2 - x1, y2 - y1) * 1.3
    scale = THUMB / side
    shift_x = THUMB / 2 - scale * (x1 + x2) / 2
    shift_y = THUMB / 2 - scale * (y1 + y2) / 2
    matrix = np.array([[scale, 0, shift_x], [0, scale, shift_y]], np.float32)
    return cv2.warpAffine(rgb, matrix, (THUMB, THUMB), flags=cv2.INTER_AREA)


def _write(out: Path, grouping: Grouping, crops: list[np.ndarray]) -> None:
    """out/person_001/ with one crop per face and out/person_001.jpg, its contact sheet;
    `crops[i]` is the crop of `grouping.found[i]`."""
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
