"""`kao video`'s speed and tracking (`kao bench video`): frames/s on a synthetic scene and
track id switches on every test scene; returns the JSON-ready report."""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from kao.analysis import FaceAnalyzer
from kao.errors import ModelError
from kao.evaluation.bench_speed import machine
from kao.evaluation.synthetic_video import SCENES, render, score_tracking, write_scene
from kao.progress import progress
from kao.video import VideoAnalyzer, open_video, video_detector


def bench_video(lfw: Path, wider: Path, *, repeat: int = 3, detector: str) -> dict[str, Any]:
    """Frames/s of `kao video` on the 300-frame 640 x 480 bench scene built from the LFW
    deep-funneled folder `lfw` and the WIDER FACE images `wider` (decoding, detection and
    tracking; on every core instead of one; every other frame; with the masked-face pass; with
    attributes), the median of `repeat` runs each; then the track id switches on every test
    scene against its ground truth. `detector` names the detector network."""

    def fps(path: Path, analysis: Callable[[], VideoAnalyzer]) -> dict[str, Any]:
        """Frames/second of --repeat runs over `path`, each with a fresh `analysis()`."""
        runs = []
        for _ in progress(range(repeat), repeat, "runs"):
            start = time.perf_counter()
            with open_video(path) as video:
                frames = sum(1 for _ in analysis().run(video.frames()))
            runs.append(frames / (time.perf_counter() - start))
        return {"median": round(statistics.median(runs), 1), "runs": [round(r, 1) for r in runs]}

    plain = video_detector(model=detector)
    masked = video_detector(model=detector, masked_faces=True)
    all_cores = video_detector(model=detector, threads=None)
    report: dict[str, Any] = {"model": detector, "repeat": repeat, "fps": {}}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.mp4"
        write_scene(SCENES["bench"], path, lfw, wider)
        report["fps"]["tracking"] = fps(path, lambda: VideoAnalyzer(plain))
        report["fps"]["tracking_all_cores"] = fps(path, lambda: VideoAnalyzer(all_cores))
        report["fps"]["tracking_every_2"] = fps(path, lambda: VideoAnalyzer(plain, every=2))
        report["fps"]["tracking_masked_pass"] = fps(path, lambda: VideoAnalyzer(masked))
        try:
            analyzer = FaceAnalyzer(plain).load()
        except ModelError as error:
            report["fps"]["attributes"] = {"error": str(error)}
        else:
            report["fps"]["attributes"] = fps(path, lambda: VideoAnalyzer(plain, analyzer=analyzer))
    scores = {}
    for name, scene in SCENES.items():
        truth: list[dict[str, np.ndarray]] = []
        analysis = VideoAnalyzer(plain)
        frames = _scene_frames(render(scene, lfw, wider), truth)
        tracked = [{f.track_id: f.face.box for f in r.faces} for r in analysis.run(frames)]
        scores[name] = score_tracking(truth, tracked, analysis.tracker.max_missed).to_dict()
    switches = sum(s["id_switches"] for s in scores.values())
    people = sum(s["people"] for s in scores.values())
    report["tracking"] = {
        "scenes": scores,
        "id_switches": switches,
        "ground_truth_tracks": people,
        "id_switches_per_track": round(switches / people, 4),
    }
    report["machine"] = {
        "cpus": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "processor": machine()["processor"],
    }
    return report


def _scene_frames(
    rendered: Iterator[tuple[np.ndarray, dict[str, np.ndarray]]], truth: list[dict[str, np.ndarray]]
) -> Iterator[np.ndarray]:
    """The frames of a rendered scene, appending each one's ground truth to `truth`."""
    for rgb, people in rendered:
        truth.append(people)
        yield rgb
