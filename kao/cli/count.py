"""`kao count`: how many people are in each image, or in each frame of a video or camera (crowd
density maps or face detection), in the whole frame or a region of it."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kao.cli.batch import add_batch_options, add_output_options, run_batch
from kao.cli.bench import _positive
from kao.cli.text import counted
from kao.crowd.counting import METHOD_CHOICES
from kao.crowd.series import WINDOW_S
from kao.errors import KaoError
from kao.jobs import Task

if TYPE_CHECKING:
    from kao.crowd.roi import Roi
    from kao.crowd.series import Row

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")
"""Inputs with these extensions are videos (counted frame by frame); others are images."""
VIDEO_ONLY = ("series", "plot", "camera", "max_frames")
"""Options that only a video or camera takes."""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `kao count` to the `kao` parser."""
    parser = subparsers.add_parser(
        "count",
        help="count the people in images or video frames (crowd density or face detection)",
        description="Count the people in images and folders (walked recursively), or in the "
        "frames of a video or camera, with a smoothed series and its plot: crowd density maps "
        "or detected faces; auto picks one per image (see docs/BENCHMARKS.md for the rule and "
        "its accuracy). Each count has an 80% range.",
    )
    parser.add_argument(
        "inputs",
        nargs="*",
        metavar="INPUT",
        help="an image, a folder (walked recursively), a glob pattern in quotes, a list file of "
        f"image paths (.txt, .lst, .list), or one video ({', '.join(VIDEO_SUFFIXES)})",
    )
    parser.add_argument(
        "--out",
        type=Path,
        metavar="PATH",
        help="images: a folder for the heat maps (or detected faces); a video or camera: the "
        "annotated video, .mp4, .webm or .avi",
    )
    add_output_options(parser)
    add_batch_options(parser)
    parser.add_argument(
        "--method",
        choices=METHOD_CHOICES,
        default="auto",
        help="auto (default): the rule of docs/BENCHMARKS.md; density: MCNN (A for dense "
        "crowds, else B); detection: the number of faces; or a counter by name",
    )
    parser.add_argument(
        "--roi",
        metavar="POLYGON",
        help='count inside this polygon only: "x1,y1 x2,y2 x3,y3 ..." in pixels, or fractions '
        'of the width and height when every number is between 0 and 1 ("0,0 0.5,0 0.5,1 0,1": '
        "the left half); a density map counts each cell's share inside, detection the faces "
        "whose centre is inside",
    )
    parser.add_argument(
        "--points",
        action="store_true",
        help="add approximate head positions: the density map's peaks (or the faces' centres), "
        "in the record and drawn on the heat map",
    )
    video = parser.add_argument_group("video and camera")
    video.add_argument("--camera", metavar="N", help="count the frames of camera N (e.g. 0)")
    video.add_argument(
        "--every", type=_positive, default=1, metavar="K", help="count every K-th frame (default 1)"
    )
    video.add_argument(
        "--smooth",
        type=float,
        default=WINDOW_S,
        metavar="SECONDS",
        help=f"window of the centred running median that smooths the count (default "
        f"{WINDOW_S:g}; 0: none)",
    )
    video.add_argument(
        "--series",
        type=Path,
        metavar="FILE",
        help="write the series as it comes, .csv or .json: frame, time_s, count, smoothed, "
        "low, high",
    )
    video.add_argument(
        "--plot", type=Path, metavar="FILE", help="draw the count and smoothed count vs time, .png"
    )
    video.add_argument(
        "--max-frames", type=_positive, metavar="N", help="stop after N frames (e.g. a camera)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Count every input (exit 1 if any failed, the others still done), or a video's frames."""
    from kao.crowd.roi import Roi

    roi = Roi.parse(args.roi) if args.roi is not None else None  # bad syntax: before any model
    source = _video_source(args)
    if source is not None:
        return _run_video(args, source, roi)
    for name in VIDEO_ONLY:
        if getattr(args, name) is not None:
            raise KaoError(f"--{name.replace('_', '-')} needs a video or --camera")
    if not args.inputs:
        raise KaoError("give an image, a folder or a video to count (or --camera N)")
    task = Task("count", {"method": args.method, "roi": args.roi, "points": args.points})
    return run_batch(args.inputs, task, _print_text, out=args.out, output=args.output, args=args)


def _video_source(args: argparse.Namespace) -> str | None:
    """The video or camera to count, None for images; KaoError for a mix."""
    videos = [i for i in args.inputs if Path(i).suffix.lower() in VIDEO_SUFFIXES]
    if args.camera is not None:
        if args.inputs:
            raise KaoError("--camera counts a camera: give no INPUT with it")
        if not args.camera.isdigit():
            raise KaoError(f"--camera takes a camera number such as 0, got {args.camera!r}")
        return args.camera
    if videos and len(args.inputs) > 1:
        raise KaoError(f"count one video at a time, got {', '.join(args.inputs)}")
    return videos[0] if videos else None


def _run_video(args: argparse.Namespace, source: str, roi: Roi | None) -> int:
    """Count the frames of `source`; print each row (or JSON), write the series, the plot and
    the annotated video. Only the plot and --json keep the rows (a few numbers a frame)."""
    from kao.crowd import CrowdCounter
    from kao.crowd.plot import plot_series
    from kao.crowd.series import CentredMedian, SeriesWriter, count_frames
    from kao.video import AnnotatedVideo, open_video

    if args.results is not None:
        raise KaoError("--results is for images; write a video's counts with --series FILE")
    if args.engine != "local" or args.workers != 1 or args.address is not None:
        raise KaoError("--engine, --workers and --address are for images; a video is counted here")
    median = CentredMedian(args.smooth)  # a bad window is reported before the video opens
    if args.plot is not None and args.plot.suffix.lower() != ".png":
        raise KaoError(f"--plot {args.plot}: write a .png file")
    with open_video(source) as video:
        polygon = roi.polygon(video.width, video.height) if roi is not None else None
        rows: list[Row] = []
        keep = args.plot is not None or args.output == "json"
        counted_frames = 0
        annotated = (
            AnnotatedVideo(args.out, video.width, video.height, video.fps / args.every)
            if args.out is not None
            else None
        )
        series = SeriesWriter(args.series) if args.series is not None else None

        def emit(row: Row) -> None:
            nonlocal counted_frames
            counted_frames += 1
            if keep:
                rows.append(row)
            if series is not None:
                series.write(row)
            if args.output == "jsonl":
                print(json.dumps(row.to_dict()), flush=True)
            elif args.output == "text":
                print(_row_text(row), flush=True)

        frames = count_frames(
            video,
            CrowdCounter(),
            method=args.method,
            every=args.every,
            roi=polygon,
            points=args.points,
            max_frames=args.max_frames,
            annotated=annotated,
        )
        try:
            try:
                for sample in frames:
                    for row in median.push(sample):
                        emit(row)
            except KeyboardInterrupt:  # how a camera is stopped: keep what was counted
                print("kao: interrupted; writing the frames counted so far", file=sys.stderr)
            for row in median.flush():
                emit(row)
        finally:
            if series is not None:
                series.close()
            if annotated is not None:
                annotated.close()
        if args.plot is not None:
            plot_series(rows, args.plot, title=Path(video.source).name)
        summary = {
            "source": video.source,
            "fps": video.fps,
            "every": args.every,
            "smooth_s": args.smooth,
            "frames": counted_frames,
        }
    if args.output == "json":
        print(json.dumps(summary | {"rows": [row.to_dict() for row in rows]}, indent=2))
    elif args.output == "text":
        print(f"{source}: {counted(counted_frames, 'frame')} counted")
        for name, path in (("series", args.series), ("plot", args.plot), ("annotated", args.out)):
            if path is not None:
                print(f"  {name}: {path}")
    return 0


def _row_text(row: Row) -> str:
    return (
        f"frame {row.frame} ({row.time_s:.2f} s): {row.count:.1f} people, smoothed "
        f"{row.smoothed:.1f} (range {row.low:.0f}-{row.high:.0f})"
    )


def _print_text(record: dict[str, Any]) -> None:
    people = record["count"]
    low, high = record["range"]
    where = " in the region" if "roi" in record else ""
    print(
        f"{record['image']}: {people} {'person' if people == 1 else 'people'}{where} "
        f"(range {low}-{high}, {record['method']})"
    )
    if "points" in record:
        print(f"  head points: {len(record['points'])}")
    if "annotated" in record:
        print(f"  annotated: {record['annotated']}")
