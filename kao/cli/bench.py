"""`kao bench`: speed of kao beside a peer measured in the same run (medians and ratios)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from kao.cli.progress import progress
from kao.detection import MODELS
from kao.errors import KaoError
from kao.evaluation import baselines
from kao.image import find_images, load_image

DEFAULT_PHOTOS = Path("../shared/data/widerface_val_subset/images")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `kao bench` and its targets to the `kao` parser."""
    parser = subparsers.add_parser("bench", help="measure speed beside a peer tool")
    targets = parser.add_subparsers(dest="target", required=True, metavar="TARGET")
    detect = targets.add_parser(
        "detect",
        help="face detection latency on 640x480 photos and throughput on a folder",
        description="Median latency per 640x480 photo and images/second over a folder, for kao "
        "and face_recognition 1.3's HOG detector, interleaved in one run.",
    )
    detect.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_PHOTOS,
        help=f"folder of photos (default {DEFAULT_PHOTOS})",
    )
    detect.add_argument("--photos", type=int, default=20, help="photos for the latency test")
    detect.add_argument("--repeat", type=int, default=3, help="timed runs per photo")
    detect.add_argument(
        "--folder-images",
        type=int,
        default=100,
        help="images of --data read and processed for the throughput test",
    )
    detect.add_argument("--model", choices=sorted(MODELS), default="yunet-n")
    detect.add_argument("--json", action="store_true", help="print JSON")
    detect.set_defaults(run=run_detect)


def run_detect(args: argparse.Namespace) -> int:
    """Time kao (all cores and one thread) and face_recognition's HOG side by side."""
    if not args.data.is_dir():
        raise KaoError(f"{args.data}: no such folder (give a folder of photos with --data)")
    paths = find_images([args.data])
    photos = [
        cv2.resize(load_image(p), (640, 480), interpolation=cv2.INTER_AREA)
        for p in paths[: args.photos]
    ]
    detectors: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "kao": baselines.kao_detector(model=args.model),
        "kao_1_thread": baselines.kao_detector(model=args.model, threads=1),
        "face_recognition_hog": baselines.face_recognition_hog(),
    }
    latency = {
        name: statistics.median(times) * 1000
        for name, times in _interleaved(detectors, photos, args.repeat).items()
    }
    folder = paths[: args.folder_images]
    throughput = {}
    for name in ("kao", "face_recognition_hog"):
        start = time.perf_counter()
        for path in progress(folder, len(folder)):
            detectors[name](load_image(path))
        throughput[name] = len(folder) / (time.perf_counter() - start)
    report: dict[str, Any] = {
        "photos": len(photos),
        "repeat": args.repeat,
        "median_ms_640x480": {k: round(v, 2) for k, v in latency.items()},
        "speedup_vs_hog": round(latency["face_recognition_hog"] / latency["kao"], 1),
        "speedup_vs_hog_1_thread": round(
            latency["face_recognition_hog"] / latency["kao_1_thread"], 1
        ),
        "folder": {
            "path": str(args.data),
            "images": len(folder),
            "images_per_s": {k: round(v, 1) for k, v in throughput.items()},
        },
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
        },
        "model": args.model,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"median latency per 640x480 photo ({len(photos)} photos x {args.repeat}):")
    for name, value in latency.items():
        print(f"  {name:<22} {value:8.2f} ms")
    print(
        f"  kao is {report['speedup_vs_hog']}x faster than HOG "
        f"({report['speedup_vs_hog_1_thread']}x on one thread)"
    )
    print(f"folder of {len(folder)} images from {args.data}, decode included:")
    for name, value in throughput.items():
        print(f"  {name:<22} {value:8.1f} images/s")
    return 0


def _interleaved(
    detectors: dict[str, Callable[[np.ndarray], np.ndarray]], photos: list[np.ndarray], repeat: int
) -> dict[str, list[float]]:
    """Seconds per call of each detector, the detectors taking turns on each photo so that
    background load on a shared machine hits them alike. One untimed warm-up call each."""
    for detect in detectors.values():
        detect(photos[0])
    times: dict[str, list[float]] = {name: [] for name in detectors}
    for _ in progress(range(repeat), repeat, "rounds"):
        for photo in photos:
            for name, detect in detectors.items():
                start = time.perf_counter()
                detect(photo)
                times[name].append(time.perf_counter() - start)
    return times
