"""`kao video`: faces tracked across the frames of a video, a folder of frames or a camera,
with identities from a collection and attributes smoothed over each track."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kao.cli.batch import add_detector_option, add_device_option, add_model_option, check_min_score
from kao.cli.bench import _positive
from kao.cli.drawing import add_draw_option
from kao.cli.text import counted
from kao.errors import KaoError

if TYPE_CHECKING:
    from kao.video import Video, VideoAnalyzer

STATUS_EVERY = 10
"""Frames between two updates of the status line on a terminal."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `kao video` to the `kao` parser."""
    parser = subparsers.add_parser(
        "video",
        help="track faces across video frames, with identities and attributes",
        description="Detect and track the faces of a video file (mp4, avi, ... whatever OpenCV "
        "reads), a folder of frames (its images in sorted order) or a camera (an index such as "
        "0); name them from a collection with --db, smooth age, gender, emotion and mask over "
        "each track; print a summary per track, write an annotated video with --out.",
    )
    parser.add_argument("input", metavar="INPUT", help="video file, folder of frames or camera")
    parser.add_argument(
        "--out",
        type=Path,
        metavar="FILE",
        help="annotated video: .mp4 (H.264) or .webm (VP9), which web browsers play, or .avi "
        "(Motion JPEG)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print JSON instead of text: the summary per track, and a record per frame "
        "(its faces with track id, box, score, keypoints and the track's identity and "
        "attributes), the shape /v1/live sends",
    )
    parser.add_argument(
        "--db",
        default=os.environ.get("KAO_DB"),
        metavar="URL",
        help="face database to name the tracks from (default: $KAO_DB; none: no names)",
    )
    parser.add_argument("--collection", metavar="C", help="collection of --db to search")
    add_model_option(parser, collection=True)
    parser.add_argument(
        "--attributes",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="age, gender, emotion and mask per track (--no-attributes: detection and tracking "
        "only, the fast path)",
    )
    parser.add_argument(
        "--every",
        type=_positive,
        default=1,
        metavar="N",
        help="detect faces on every N-th frame; boxes follow the tracks' motion between "
        "(default 1)",
    )
    parser.add_argument(
        "--refresh",
        type=_positive,
        default=10,
        metavar="K",
        help="frames between two identifications / attribute runs of a track (default 10)",
    )
    parser.add_argument(
        "--min-score",
        type=float,
        default=0.6,
        metavar="S",
        help="detection score that starts a track, 0-1 (default 0.6)",
    )
    parser.add_argument(
        "--max-missed",
        type=int,
        default=15,
        metavar="N",
        help="frames a track lives on unseen; a face away longer gets a new id (default 15)",
    )
    add_detector_option(parser)
    parser.add_argument(
        "--masked-faces",
        action="store_true",
        help="also run the masked-face detection pass (finds more masked faces; slower)",
    )
    parser.add_argument(
        "--threads",
        type=_positive,
        metavar="N",
        help="detector threads (default 1: faster than more on a busy machine, and leaves the "
        "other cores to decoding and the attribute models)",
    )
    parser.add_argument(
        "--max-frames", type=_positive, metavar="N", help="stop after N frames (e.g. a camera)"
    )
    from kao.render import VIDEO_DRAWING

    add_draw_option(parser, VIDEO_DRAWING)
    add_device_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Track the faces of `args.input`; print the per-track summary."""
    from kao.analysis import FaceAnalyzer
    from kao.gallery.database import FaceDatabase
    from kao.recognition.embedder import FaceEmbedder
    from kao.tracking import Tracker
    from kao.video import DETECTOR_THREADS, VideoAnalyzer, open_video, video_detector

    check_min_score(args.min_score)
    if args.max_missed < 0:
        raise KaoError(f"--max-missed must be 0 or more, got {args.max_missed}")
    if args.collection and not args.db:
        raise KaoError("--collection needs a database: use --db URL or set KAO_DB")
    if args.db and not args.collection:
        raise KaoError("--db needs --collection C: the collection to name the tracks from")
    with open_video(args.input) as video:  # a bad input is reported before models load
        detector = video_detector(
            min_score=args.min_score,
            model=args.detector,
            masked_faces=args.masked_faces,
            threads=args.threads or DETECTOR_THREADS,
        )
        analyzer = FaceAnalyzer(detector).load() if args.attributes else None
        database = None
        if args.db:
            embedder = FaceEmbedder(detector, model=args.model) if args.model else None
            database = FaceDatabase(args.db, embedder, detector=detector)
        try:
            if database is not None:
                database.gallery.revision(args.collection)  # the collection must exist
            analysis = VideoAnalyzer(
                detector,
                tracker=Tracker(high_score=args.min_score, max_missed=args.max_missed),
                analyzer=analyzer,
                database=database,
                collection=args.collection,
                every=args.every,
                refresh=args.refresh,
            )
            report = _track(args, video, analysis)
        finally:
            if database is not None:
                database.close()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_text(report)
    return 0


def _track(args: argparse.Namespace, video: Video, analysis: VideoAnalyzer) -> dict[str, Any]:
    """Run `analysis` over `video` (until `--max-frames`, or Ctrl-C on a camera), writing the
    annotated video with `--out` and a status line on a terminal; returns the JSON report."""
    from kao.video import AnnotatedVideo, draw_frame, frame_record

    writer = AnnotatedVideo(args.out, video.width, video.height, video.fps) if args.out else None
    frames = islice(video.frames(), args.max_frames)
    status = sys.stderr.isatty()
    processed = 0
    records: list[dict[str, Any]] = []
    start = time.perf_counter()
    try:
        for result in analysis.run(frames):
            if writer is not None:
                writer.write(draw_frame(result, args.draw))
            if args.json:
                records.append(frame_record(result.index, result.index / video.fps, result.faces))
            processed += 1
            if status and result.index % STATUS_EVERY == 0:
                of = f"/{video.count}" if video.count else ""
                print(
                    f"\rframe {result.index + 1}{of}  {result.fps:5.1f} fps  "
                    f"{counted(len(result.faces), 'face')}",
                    end="",
                    file=sys.stderr,
                )
    except KeyboardInterrupt:
        if not video.source.startswith("camera "):
            raise
    finally:
        if writer is not None:
            writer.close()
        if status:
            print("\r\033[K", end="", file=sys.stderr)
    seconds = time.perf_counter() - start
    return {
        "input": video.source,
        "width": video.width,
        "height": video.height,
        "fps": round(video.fps, 3),
        "frames": processed,
        "processing_fps": round(processed / max(seconds, 1e-9), 2),
        "annotated": None if writer is None else str(writer.path),
        "tracks": [track.to_dict() for track in analysis.summary()],
        "per_frame": records,
    }


def print_text(report: dict[str, Any]) -> None:
    """The report as a header line and a table of the tracks."""
    from kao.render import age_text

    tracks = report["tracks"]
    print(
        f"{report['input']}: {report['frames']} frames of {report['width']}x{report['height']} "
        f"at {report['fps']:g} fps, processed at {report['processing_fps']:.1f} fps; "
        f"{len(tracks)} track{'' if len(tracks) == 1 else 's'}"
    )
    if tracks:
        print(
            f"  {'track':>5} {'first':>6} {'last':>6} {'frames':>6}  {'identity':<24} "
            f"{'age':>4}  {'gender':<7} {'emotion':<10} mask"
        )
    for track in tracks:
        age = "-" if track["age"] is None else age_text(track["age"])
        gender = track["gender"]["label"] if track["gender"] else "-"
        mask = track["mask"]["label"].replace("_", " ") if track["mask"] else "-"
        print(
            f"  {track['track_id']:>5} {track['first_frame']:>6} {track['last_frame']:>6} "
            f"{track['frames']:>6}  {track['identity'] or '-':<24} {age:>4}  {gender:<7} "
            f"{track['emotion'] or '-':<10} {mask}"
        )
    if report["annotated"]:
        print(f"  annotated: {report['annotated']}")
