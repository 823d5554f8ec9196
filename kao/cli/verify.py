"""`kao verify A B`: are the faces in two photos the same person?"""

from __future__ import annotations

import argparse
import json

from kao.cli.batch import add_device_option, add_model_option, add_threshold_options
from kao.face import face_index
from kao.image import describe
from kao.recognition import FaceEmbedder, verify
from kao.recognition.verify import FAR_TABLES


def strangers(far: float, model: str) -> str:
    """`far` (a false-accept rate from `false_accept_rate`) in words: how many strangers in N
    would match this closely, with the table's ends of `model` as "fewer than" / "more than"."""
    rates = [rate for rate, _ in FAR_TABLES[model]]
    if far <= min(rates) * (1 + 1e-6):
        return f"fewer than 1 in {round(1 / min(rates)):,} strangers would match this closely"
    if far >= max(rates) * (1 - 1e-6):
        return f"more than 1 in {round(1 / max(rates)):,} strangers would match this closely"
    return f"1 in {round(1 / far):,} strangers would match this closely"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `kao verify` to the `kao` parser."""
    parser = subparsers.add_parser(
        "verify",
        help="same person or not, with the distance and a similarity in [0, 1]",
        description="Compare the largest face of each photo (or the faces picked with --face-a "
        "and --face-b, numbered as `kao detect` prints them).",
    )
    parser.add_argument("a", metavar="A", help="first photo")
    parser.add_argument("b", metavar="B", help="second photo")
    parser.add_argument("--face-a", type=int, metavar="N", help="face number N of A (from 1)")
    parser.add_argument("--face-b", type=int, metavar="N", help="face number N of B (from 1)")
    add_model_option(parser)
    add_threshold_options(parser)
    parser.add_argument("--json", action="store_true", help="print JSON")
    add_device_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Print the verdict; exit 0 whatever it is (1 only for errors such as no face)."""
    result = verify(
        args.a,
        args.b,
        index_a=face_index(args.face_a),
        index_b=face_index(args.face_b),
        embedder=FaceEmbedder(model=args.model),
        threshold=args.threshold,
        far=args.far,
    )
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    verdict = "same person" if result.same else "different people"
    print(
        f"{verdict}: similarity {result.similarity:.1%}, distance {result.distance:.3f} "
        f"(threshold {result.threshold}); {strangers(result.far, result.model)}"
    )
    sides = (("a", args.a, result.a, args.face_a), ("b", args.b, result.b, args.face_b))
    for label, path, side, chosen in sides:
        box = ", ".join(f"{v:.0f}" for v in side.face.box)
        note = f"face {side.number} of {side.faces}"
        if chosen is None and side.faces > 1:
            note += f" (the largest; pick another with --face-{label})"
        print(f"  {label.upper()}: {describe(path)}: {note}, box [{box}]")
    return 0
