"""`kao age-transform`: one face rendered at several ages, in a labelled grid."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

from kao.aging import age_grid, estimated_age, load_prototypes, meshed_face
from kao.aging.grid import TILE
from kao.cli.batch import add_device_option
from kao.detection import analysis_detector
from kao.errors import KaoError
from kao.face import Face
from kao.image import load_image

MAX_AGE = 120


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `kao age-transform` to the `kao` parser."""
    parser = subparsers.add_parser(
        "age-transform",
        help="render a face at several ages (age-group prototypes)",
        description="Move a face's shape and texture by the difference between its own age "
        "band's prototype and each target band's, and write a grid: the original, then one "
        "labelled tile per target age.",
    )
    parser.add_argument("image", metavar="IMAGE")
    parser.add_argument(
        "--ages", default="10,20,40,60,80", help="target ages in years, comma-separated"
    )
    parser.add_argument("--out", type=Path, required=True, help="grid image to write (.jpg, .png)")
    parser.add_argument(
        "--from-age",
        type=float,
        metavar="YEARS",
        help="the face's own age (default: kao's age estimate)",
    )
    parser.add_argument(
        "--face",
        type=int,
        metavar="N",
        help="face number N (from 1, as kao detect numbers them; default: the largest)",
    )
    parser.add_argument("--cropped", action="store_true", help="the image is already one face crop")
    parser.add_argument(
        "--strength", type=float, default=1.0, help="scale of the change, 0-2 (default 1)"
    )
    parser.add_argument("--tile", type=int, default=TILE, help=f"tile side in px ({TILE})")
    parser.add_argument("--json", action="store_true", help="print JSON")
    add_device_option(parser)
    parser.set_defaults(run=run)


def parse_ages(text: str) -> list[float]:
    """Comma-separated ages in years ("10,20,40") -> floats; KaoError naming the bad part."""
    ages = []
    for part in text.split(","):
        try:
            age = float(part)
        except ValueError:
            raise KaoError(f"--ages: {part.strip()!r} is not a number (e.g. 10,20,40)") from None
        if not 0 <= age <= MAX_AGE:
            raise KaoError(f"--ages: {age:g} is outside 0-{MAX_AGE} years")
        ages.append(age)
    return ages


def chosen_face(rgb: np.ndarray, number: int | None, source: str) -> Face | None:
    """Detected face `number` (from 1) of `rgb`, or None for `kao.aging.meshed_face`'s default
    (the largest face). KaoError when there is no such face."""
    if number is None:
        return None
    faces = analysis_detector().detect(rgb)
    if not 1 <= number <= len(faces):
        raise KaoError(
            f"{source}: face {number} asked for, but {len(faces)} found "
            f"(numbered 1 to {len(faces)})"
        )
    return faces[number - 1]


def run(args: argparse.Namespace) -> int:
    """Write the grid and print the ages and bands used."""
    ages = parse_ages(args.ages)
    if not 0 <= args.strength <= 2:
        raise KaoError(f"--strength must be between 0 and 2, got {args.strength:g}")
    if not 32 <= args.tile <= 1024:
        raise KaoError(f"--tile must be between 32 and 1024 px, got {args.tile}")
    if args.from_age is not None and not 0 <= args.from_age <= MAX_AGE:
        raise KaoError(f"--from-age {args.from_age:g} is outside 0-{MAX_AGE} years")
    prototypes = load_prototypes()
    rgb = load_image(args.image)
    chosen = None if args.cropped else chosen_face(rgb, args.face, args.image)
    face = meshed_face(rgb, chosen, cropped=args.cropped, source=args.image)
    source_age = (
        args.from_age
        if args.from_age is not None
        else estimated_age(rgb, face, cropped=args.cropped)
    )
    grid = age_grid(
        rgb,
        face,
        ages,
        source_age=source_age,
        prototypes=prototypes,
        strength=args.strength,
        tile=args.tile,
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    try:
        Image.fromarray(grid).save(args.out, quality=90)
    except (OSError, ValueError) as error:
        raise KaoError(f"{args.out}: cannot write the grid: {error}") from error
    labels = prototypes.labels
    record = {
        "image": args.image,
        "out": str(args.out),
        "source_age": round(float(source_age), 1),
        "source_age_from": "--from-age" if args.from_age is not None else "estimate",
        "source_band": labels[prototypes.band_index(source_age)],
        "targets": [{"age": a, "band": labels[prototypes.band_index(a)]} for a in ages],
        "width": int(grid.shape[1]),
        "height": int(grid.shape[0]),
    }
    if args.json:
        print(json.dumps(record, indent=2))
        return 0
    print(
        f"{args.image}: age {record['source_age']:g} ({record['source_age_from']}, band "
        f"{record['source_band']}) -> "
        + ", ".join(f"{t['age']:g} ({t['band']})" for t in record["targets"])
    )
    print(f"wrote {args.out} ({grid.shape[1]} x {grid.shape[0]})")
    return 0
