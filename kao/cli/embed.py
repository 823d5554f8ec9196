"""`kao embed`: every face of images and folders with its embedding, from a chosen model."""

from __future__ import annotations

import argparse
from typing import Any

from kao.cli.batch import (
    add_batch_options,
    add_inputs_argument,
    add_model_option,
    add_output_options,
    run_batch,
)
from kao.cli.text import counted
from kao.jobs import Task


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `kao embed` to the `kao` parser."""
    parser = subparsers.add_parser(
        "embed",
        help="face embeddings of every face, from a chosen model",
        description="Find every face in images and folders (walked recursively) and give each "
        "its embedding: L2-normalised float32 values (512 for EdgeFace, 128 for dlib), with its "
        "box, score and keypoints. Two faces are the same person when the Euclidean distance "
        "between their embeddings is below the model's threshold (`kao models list`).",
    )
    add_inputs_argument(parser)
    add_output_options(parser)
    add_batch_options(parser)
    add_model_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Embed every face of every input; exit 1 if any input failed (the others are still done)."""
    task = Task("embed", {"model": args.model})
    return run_batch(args.inputs, task, _print_text, out=None, output=args.output, args=args)


def _print_text(record: dict[str, Any]) -> None:
    faces = record["faces"]
    print(f"{record['image']}: {counted(len(faces), 'face')} ({record['model']})")
    for number, face in enumerate(faces, 1):
        box = ", ".join(f"{v:.0f}" for v in face["box"])
        head = ", ".join(f"{v:+.3f}" for v in face["embedding"][:4])
        print(f"  face {number}: box [{box}]  embedding [{head}, ...] ({len(face['embedding'])})")
