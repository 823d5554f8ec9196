"""`kao analyze`: everything kao tells about each face: landmarks, pose, gaze, age, gender,
emotion and mask; text, JSON or annotated copies."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from kao.cli.batch import (
    add_batch_options,
    add_inputs_argument,
    add_output_options,
    check_min_score,
    run_batch,
)
from kao.cli.drawing import add_draw_option
from kao.cli.text import counted, quality_line
from kao.face import EMOTIONS
from kao.jobs import Task


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `kao analyze` to the `kao` parser."""
    parser = subparsers.add_parser(
        "analyze",
        help="landmarks, head pose, gaze, age, gender, emotion and mask of every face",
        description="Analyse every face in images and folders (walked recursively): 468-point "
        "mesh, 68 landmarks, iris, head pose, gaze, age, gender, 7-class emotion, mask.",
    )
    add_inputs_argument(parser)
    parser.add_argument("--out", type=Path, metavar="DIR", help="write annotated copies here")
    add_output_options(parser)
    add_batch_options(parser)
    parser.add_argument(
        "--cropped",
        action="store_true",
        help="each image is already one face crop (as in FER2013 or UTKFace): no detection",
    )
    parser.add_argument(
        "--mesh",
        action="store_true",
        help="include the 468 mesh and iris points in the JSON, draw the mesh with --out",
    )
    parser.add_argument(
        "--accurate",
        action="store_true",
        help="read each face in more views (age, gender, emotion): a little more accurate, "
        "about 18 ms more a face",
    )
    parser.add_argument(
        "--small-faces",
        action="store_true",
        help="in photos under 640 px, also look for faces under about 20 px, as kao detect "
        "does (slower: about twice the detection time of a 250 px photo)",
    )
    parser.add_argument(
        "--min-score",
        type=float,
        default=0.6,
        metavar="S",
        help="drop faces scoring below S, 0-1 (default 0.6)",
    )
    from kao.render import ANALYSIS_DRAWING

    add_draw_option(parser, ANALYSIS_DRAWING)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Analyse every input; exit 1 if any input failed (the others are still done)."""
    check_min_score(args.min_score)
    options = ("min_score", "small_faces", "accurate", "cropped", "mesh", "draw")
    task = Task("analyze", {name: getattr(args, name) for name in options})
    return run_batch(args.inputs, task, print_text, out=args.out, output=args.output, args=args)


def emotion_line(emotion: dict[str, float]) -> str:
    """The seven probabilities as percentages in `EMOTIONS` order, e.g. "Angry: 17.5%  ..."."""
    return "  ".join(f"{name.capitalize()}: {100 * emotion[name]:.1f}%" for name in EMOTIONS)


def missing_by_reason(missing: dict[str, str]) -> dict[str, list[str]]:
    """{reason: the keys it leaves null} of a record's "missing" map, in the record's order."""
    grouped: dict[str, list[str]] = {}
    for key, reason in missing.items():
        grouped.setdefault(reason, []).append(key)
    return grouped


def print_text(record: dict[str, Any]) -> None:
    """Print one image's analysis as readable text."""
    from kao.render import age_text

    faces = record["faces"]
    print(f"{record['image']}: {counted(len(faces), 'face')}")
    for number, face in enumerate(faces, 1):
        box = ", ".join(f"{v:.0f}" for v in face["box"])
        print(f"  face {number}: box [{box}]  score {face['score']:.3f}")
        who = []
        if face["age"] is not None:
            who.append(f"age {age_text(face['age'])}")
        for key in ("gender", "mask"):
            if face[key] is not None:
                label = face[key]["label"].replace("_", " ")
                who.append(f"{key} {label} ({100 * face[key]['score']:.1f}%)")
        if who:
            print("    " + "  ".join(who))
        if face["pose"] is not None:
            angles = "  ".join(f"{k} {face['pose'][k]:.1f}" for k in ("yaw", "pitch", "roll"))
            print(f"    pose: {angles}")
        if face["gaze"] is not None:
            print(f"    gaze: yaw {face['gaze']['yaw']:.1f}  pitch {face['gaze']['pitch']:.1f}")
        if face["quality"] is not None:
            print(f"    {quality_line(face['quality'])}")
        if face["emotion"] is not None:
            emotion = face["emotion"]
            top = max(EMOTIONS, key=lambda name: emotion[name])
            print(f"    {emotion_line(emotion)}")
            print(f"    emotion: {top} ({100 * emotion[top]:.1f}%)")
        for reason, keys in missing_by_reason(face["missing"]).items():
            print(f"    no {', '.join(keys)}: {reason}")
    if "annotated" in record:
        print(f"  annotated: {record['annotated']}")
