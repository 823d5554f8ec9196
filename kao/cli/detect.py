"""`kao detect`: find faces in images and folders; text, JSON or annotated copies."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from kao.detection import MODELS, FaceDetector
from kao.errors import ImageError, KaoError
from kao.image import find_images, load_image
from kao.progress import progress
from kao.render import draw_faces


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `kao detect` to the `kao` parser."""
    parser = subparsers.add_parser(
        "detect",
        help="find faces: boxes, scores and 5 keypoints",
        description="Find every face in images and folders (walked recursively).",
    )
    parser.add_argument("inputs", nargs="+", metavar="IMAGE_OR_DIR")
    parser.add_argument("--out", type=Path, metavar="DIR", help="write annotated copies here")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
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
    parser.add_argument(
        "--model",
        choices=sorted(MODELS),
        default="yunet-n",
        help="detector network (default yunet-n)",
    )
    parser.set_defaults(run=run)


@dataclass(frozen=True)
class Job:
    """One image to process: where it is, and where its annotated copy goes (relative)."""

    path: Path
    relative: Path


def collect(inputs: list[str]) -> tuple[list[Job], list[ImageError]]:
    """Expand the command's arguments into images; arguments that fail are returned as errors
    so the rest of the batch still runs."""
    jobs: list[Job] = []
    errors: list[ImageError] = []
    for given in inputs:
        try:
            paths = find_images([given])
        except ImageError as error:
            errors.append(error)
            continue
        root = Path(given)
        for path in paths:
            relative = path.relative_to(root) if root.is_dir() else Path(path.name)
            jobs.append(Job(path, relative))
    return jobs, errors


def run(args: argparse.Namespace) -> int:
    """Detect faces in every input; exit 1 if any input failed (the others are still done)."""
    if not 0 <= args.min_score <= 1:
        raise KaoError(f"--min-score must be between 0 and 1, got {args.min_score}")
    detector = FaceDetector(min_score=args.min_score, min_size=args.min_size, model=args.model)
    jobs, errors = collect(args.inputs)
    records: list[dict[str, Any]] = [{"image": e.source, "error": e.reason} for e in errors]
    for error in errors:
        print(f"kao: error: {error}", file=sys.stderr)
    written: set[Path] = set()
    for job in progress(jobs, total=len(jobs)):
        try:
            rgb = load_image(job.path)
            faces = detector.detect(rgb)
        except ImageError as error:
            print(f"kao: error: {error}", file=sys.stderr)
            records.append({"image": str(job.path), "error": error.reason})
            continue
        record = {
            "image": str(job.path),
            "width": int(rgb.shape[1]),
            "height": int(rgb.shape[0]),
            "faces": [face.to_dict() for face in faces],
        }
        if args.out:
            record["annotated"] = str(
                write_image(args.out, job.relative, draw_faces(rgb, faces), written)
            )
        records.append(record)
        if not args.json:
            _print_text(record)
    if args.json:
        print(json.dumps(records, indent=2))
    return 1 if any("error" in r for r in records) else 0


def _print_text(record: dict[str, Any]) -> None:
    faces = record["faces"]
    print(f"{record['image']}: {len(faces)} face{'' if len(faces) == 1 else 's'}")
    for number, face in enumerate(faces, 1):
        box = ", ".join(f"{v:.0f}" for v in face["box"])
        print(f"  face {number}: box [{box}]  score {face['score']:.3f}")
    if "annotated" in record:
        print(f"  annotated: {record['annotated']}")


def write_image(out: Path, relative: Path, rgb: Any, written: set[Path]) -> Path:
    """Save `rgb` at out/relative (JPEG if the source format cannot be written), never
    overwriting a file written earlier in this run."""
    target = out / relative
    if target.suffix.lower() not in {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}:
        target = target.with_suffix(".jpg")
    stem, number = target.stem, 1
    while target in written:
        number += 1
        target = target.with_name(f"{stem}-{number}{target.suffix}")
    target.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(target, quality=92)
    written.add(target)
    return target
