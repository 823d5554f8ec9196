"""The batch loop every per-image command shares (`kao detect`, `kao analyze`, `kao count`):
inputs expanded to images (folders walked), each image processed on its own so that a bad one
is reported and the rest still done, text, JSON or JSON Lines out, annotated copies with
`--out`."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from kao.errors import ImageError, KaoError
from kao.image import describe, find_images, load_image
from kao.progress import progress


def add_detector_option(parser: argparse.ArgumentParser) -> None:
    """``--detector NAME``: the YuNet network of the face detector (one of `kao.detection`'s
    MODELS), under the same name in every command."""
    from kao.detection import MODELS

    parser.add_argument(
        "--detector",
        choices=sorted(MODELS),
        default="yunet-n",
        help="detector network (default yunet-n)",
    )


def add_model_option(parser: argparse.ArgumentParser, *, collection: bool = False) -> None:
    """``--model NAME``: the face recognition model (one of `kao.recognition.embedder`'s
    RECOGNITION_MODELS), under the same name in every command that embeds faces. With
    `collection`, the default is None: the collection's own model (see `FaceDatabase`)."""
    from kao.recognition.embedder import DEFAULT_MODEL, RECOGNITION_MODELS

    default = (
        f"the collection's model, {DEFAULT_MODEL} for a new one" if collection else DEFAULT_MODEL
    )
    parser.add_argument(
        "--model",
        choices=RECOGNITION_MODELS,
        default=None if collection else DEFAULT_MODEL,
        help=f"recognition model (default: {default})",
    )


def add_threshold_options(
    parser: argparse.ArgumentParser, default: str = "the model's calibrated one"
) -> None:
    """``--threshold D`` or ``--far F`` (one of them; `default` says what applies without
    either), stored as ``args.threshold`` / ``args.far``: see
    `kao.recognition.verify.decision_threshold`."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--threshold",
        type=float,
        metavar="D",
        help=f"same person below this Euclidean distance (default: {default})",
    )
    group.add_argument(
        "--far",
        type=float,
        metavar="F",
        help="same person below the distance at which a share F of strangers would match on LFW "
        "(e.g. 1e-4; from 1e-5 to 0.1)",
    )


def add_output_options(parser: argparse.ArgumentParser) -> None:
    """``--json`` / ``--jsonl`` (one of them, default text), stored as ``args.output``: "text",
    "json" or "jsonl" (see `run_batch`)."""
    formats = parser.add_mutually_exclusive_group()
    formats.set_defaults(output="text")
    formats.add_argument(
        "--json",
        dest="output",
        action="store_const",
        const="json",
        help="print one JSON list of every image's record, once all are done",
    )
    formats.add_argument(
        "--jsonl",
        dest="output",
        action="store_const",
        const="jsonl",
        help="print JSON Lines: each image's record (its faces or its error) on one line as soon "
        "as it is done, for large folders",
    )


def check_min_score(value: float) -> float:
    """`value` of a `--min-score` option if it lies in 0-1; KaoError saying so otherwise."""
    if not 0 <= value <= 1:
        raise KaoError(f"--min-score must be between 0 and 1, got {value}")
    return value


Output = Literal["text", "json", "jsonl"]
"""How a batch prints its records (see `run_batch`)."""
Processor = Callable[[np.ndarray], tuple[dict[str, Any], Callable[[], np.ndarray]]]
"""Reads one RGB image -> (its JSON fields, a function drawing its annotated copy)."""


@dataclass(frozen=True)
class Job:
    """One image to process: where it is, and where its annotated copy goes (relative)."""

    path: Path
    relative: Path


def collect(inputs: list[str]) -> tuple[list[Job], list[ImageError]]:
    """Expand the command's arguments into images; what cannot be read (a missing path, an
    unreadable sub-folder, a FIFO in a folder, ...) is returned as errors so the rest of the
    batch still runs."""
    jobs: list[Job] = []
    errors: list[ImageError] = []
    for given in inputs:
        root = Path(given)
        for path in find_images([given], errors=errors):
            relative = path.relative_to(root) if root.is_dir() else Path(path.name)
            jobs.append(Job(path, relative))
    return jobs, errors


def run_batch(
    inputs: list[str],
    process: Processor,
    print_text: Callable[[dict[str, Any]], None],
    *,
    out: Path | None,
    output: Output,
) -> int:
    """Process every image of `inputs`: each record is `{"image", "width", "height", ...fields}`
    (plus `"annotated"`: the copy written under `out`), or `{"image", "error"}` for an image
    that failed (its error also goes to stderr). `output` "text" prints each record with
    `print_text` as it comes, "jsonl" prints each as one JSON line as it comes (flushed; no
    record is kept), "json" prints them all as one JSON list at the end. Returns the exit code:
    1 if any input failed, else 0."""
    jobs, errors = collect(inputs)
    held: list[dict[str, Any]] = []

    def emit(record: dict[str, Any]) -> None:
        if output == "json":
            held.append(record)
        elif output == "jsonl":
            print(json.dumps(record), flush=True)
        elif "error" not in record:
            print_text(record)

    for error in errors:
        print(f"kao: error: {error}", file=sys.stderr)
        emit({"image": error.source, "error": error.reason})
    failed = bool(errors)
    written: set[Path] = set()
    for job in progress(jobs, total=len(jobs)):
        record = _record(job, process, out, written)
        failed = failed or "error" in record
        emit(record)
    if output == "json":
        print(json.dumps(held, indent=2))
    return int(failed)


def _record(job: Job, process: Processor, out: Path | None, written: set[Path]) -> dict[str, Any]:
    """The record of one image (see `run_batch`); a failure is reported on stderr and becomes
    `{"image", "error"}`."""
    try:
        rgb = load_image(job.path)
        fields, draw = process(rgb)
    except KaoError as error:
        reason = error.reason if isinstance(error, ImageError) else str(error)
        print(f"kao: error: {describe(job.path)}: {reason}", file=sys.stderr)
        return {"image": describe(job.path), "error": reason}
    record = {"image": describe(job.path), "width": int(rgb.shape[1]), "height": int(rgb.shape[0])}
    record.update(fields)
    if out:
        record["annotated"] = describe(write_image(out, job.relative, draw(), written))
    return record


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
