"""Speed of kao beside a peer measured in the same run: detection latency and throughput, face
embedding throughput, and the per-face analysis stage by stage (`kao bench detect`, `embed`,
`analyze`). Each function returns the JSON-ready report `kao bench ... --json` prints.

The peer is face_recognition 1.3 (dlib's HOG detector, its 68 landmarks and encodings), timed
on the same photos in the same process, so that the ratios hold on any machine. With
`background_load`, a separate process keeps one core busy for the whole measurement
(`kao.evaluation.background_load`), and the report says what it used."""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from kao.errors import KaoError
from kao.evaluation import baselines
from kao.evaluation.background_load import BackgroundLoad
from kao.image import find_images, load_image
from kao.models.precision import cpu_info, precision
from kao.progress import progress

BENCH_SIDE = (640, 480)
"""Width and height (px) the latency photos are resized to."""


OLD_DEFAULT = {"KAO_THREADS": str(os.cpu_count() or 1), "KAO_SPINNING": "1"}
"""The sessions' settings of kao 0.1.0 (before threads were chosen from the idle cores): every
core, ONNX Runtime's spinning worker threads."""
ALL_CORES_NO_SPIN = {"KAO_THREADS": str(os.cpu_count() or 1), "KAO_SPINNING": "0"}
"""Every core, worker threads that sleep when idle: the old default without spinning."""


def machine() -> dict[str, Any]:
    """The CPUs and processor a report was measured on: {"cpus", "processor", "cpu_model",
    "cpu_flags" (those that pick ONNX Runtime's kernels), "precision" (what kao's 8-bit
    networks run in here, `kao.models.precision`)}."""
    cpu = cpu_info()
    return {
        "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "cpu_model": cpu["model"],
        "cpu_flags": cpu["flags"],
        "precision": precision(),
    }


def load_average() -> list[float] | None:
    """The 1, 5 and 15-minute load averages, None where the OS has none."""
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


@contextmanager
def environment(settings: dict[str, str]) -> Iterator[None]:
    """The body runs with `settings` in os.environ (models made in it take their sessions'
    threads and spinning from there); the previous values are put back after."""
    before = {key: os.environ.get(key) for key in settings}
    os.environ.update(settings)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def conditions(load: BackgroundLoad, before: list[float] | None) -> dict[str, Any]:
    """What a report was measured under: {"background_load": `load.report()`,
    "load_average_before", "load_average_after"}."""
    return {
        "background_load": load.report(),
        "load_average_before": before,
        "load_average_after": load_average(),
    }


def photos_in(folder: Path, count: int | None = None) -> list[Path]:
    """The first `count` photos (all with None) of `folder`, walked recursively; KaoError when
    it is not a folder or holds none."""
    if not folder.is_dir():
        raise KaoError(f"{folder}: no such folder of photos")
    paths = find_images([folder])[:count]
    if not paths:
        raise KaoError(f"{folder}: no photos in this folder")
    return paths


def interleaved(
    detectors: dict[str, Callable[[np.ndarray], Any]], photos: list[np.ndarray], repeat: int
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


def bench_detect(
    data: Path,
    *,
    photos: int = 20,
    repeat: int = 3,
    folder_images: int = 100,
    detector: str,
    background_load: bool = False,
) -> dict[str, Any]:
    """Median latency (ms) per 640 x 480 photo of kao (its default sessions; the old default,
    every core with spinning threads; every core without spinning; one thread; the default
    with the masked-face pass) and face_recognition's HOG, interleaved over the first `photos`
    photos of `data` `repeat` times; then images/s over the first `folder_images` photos,
    decoding included, for each but the masked-face pass, taking turns on each file.
    `detector` names kao's detector network. With `background_load`, one core is kept busy
    from after the models load (on a quiet machine, as a server's load before other work
    starts) to the end; "sessions" says how kao's default sessions run under it
    (`thread_report`)."""
    from kao.models.runtime import thread_report

    paths = photos_in(data)
    resized = [
        cv2.resize(load_image(p), BENCH_SIDE, interpolation=cv2.INTER_AREA) for p in paths[:photos]
    ]
    detectors: dict[str, Callable[[np.ndarray], Any]] = {
        "kao": baselines.kao_detector(model=detector),
    }
    with environment(OLD_DEFAULT):
        detectors["kao_old_default"] = baselines.kao_detector(model=detector)
    with environment(ALL_CORES_NO_SPIN):
        detectors["kao_all_cores_no_spin"] = baselines.kao_detector(model=detector)
    detectors["kao_1_thread"] = baselines.kao_detector(model=detector, threads=1)
    detectors["kao_masked_pass"] = baselines.kao_detector(model=detector, masked_faces=True)
    detectors["face_recognition_hog"] = baselines.face_recognition_hog()
    before = load_average()
    with BackgroundLoad(background_load) as load:
        latency = {
            name: statistics.median(times) * 1000
            for name, times in interleaved(detectors, resized, repeat).items()
        }
        threads = thread_report()  # as the default sessions ran by the end
        folder = paths[:folder_images]
        seconds = {name: 0.0 for name in detectors if name != "kao_masked_pass"}
        for path in progress(folder, len(folder)):  # taking turns on each file, as above
            for name in seconds:
                start = time.perf_counter()
                detectors[name](load_image(path))
                seconds[name] += time.perf_counter() - start
        throughput = {name: len(folder) / spent for name, spent in seconds.items()}
    hog = latency["face_recognition_hog"]
    return {
        "photos": len(resized),
        "repeat": repeat,
        "median_ms_640x480": {k: round(v, 2) for k, v in latency.items()},
        "speedup_vs_hog": round(hog / latency["kao"], 1),
        "speedup_vs_hog_1_thread": round(hog / latency["kao_1_thread"], 1),
        "speedup_vs_hog_masked_pass": round(hog / latency["kao_masked_pass"], 1),
        "folder": {
            "path": str(data),
            "images": len(folder),
            "images_per_s": {k: round(v, 1) for k, v in throughput.items()},
        },
        "sessions": threads,
        "machine": machine(),
        "model": detector,
        **conditions(load, before),
    }


def bench_embed(
    data: Path,
    *,
    images: int = 100,
    models: Sequence[str] | None = None,
    background_load: bool = False,
) -> dict[str, Any]:
    """Finding and embedding every face of the first `images` photos of `data` on one core,
    with each recognition model of `models` (default: all) and with face_recognition (HOG +
    face_encodings). Per pipeline: faces/s and ms per face end to end (decoding, detection,
    alignment and network), and the median ms per face of the embedding alone (alignment and
    network; the faces found beforehand). kao's models share one detection per photo; the
    pipelines take turns on each photo so that background load hits them alike. With
    `background_load`, one core is kept busy from before the models load to the end.

    Sets KAO_THREADS=1 for the process: call it before any model is loaded (a fresh process)."""
    os.environ["KAO_THREADS"] = "1"
    before = load_average()
    with BackgroundLoad(background_load) as load:
        report = _bench_embed(data, images, models)
    return report | conditions(load, before)


def _bench_embed(data: Path, images: int, models: Sequence[str] | None) -> dict[str, Any]:
    """`bench_embed`'s measurement (see there), without the background load."""
    face_recognition = baselines.import_face_recognition()

    from kao.recognition.embedder import RECOGNITION_MODELS, FaceEmbedder, check_model

    names = [check_model(m) for m in models] if models else list(RECOGNITION_MODELS)
    paths = photos_in(data, images)
    embedders = {name: FaceEmbedder(model=name) for name in names}
    detector = embedders[names[0]].detector
    first = load_image(paths[0])  # load the models before timing
    for embedder in embedders.values():
        embedder.embed_faces(first, detector.detect(first))
    face_recognition.face_encodings(first, face_recognition.face_locations(first, 1))

    seconds = dict.fromkeys([*names, "face_recognition"], 0.0)
    faces = dict.fromkeys(["kao", "face_recognition"], 0)
    embed_ms: dict[str, list[float]] = {name: [] for name in seconds}
    for path in progress(paths, len(paths)):
        start = time.perf_counter()
        rgb = load_image(path)
        found = detector.detect(rgb)
        shared = time.perf_counter() - start  # decoding and detection, shared by kao's models
        faces["kao"] += len(found)
        for name, embedder in embedders.items():
            start = time.perf_counter()
            embedder.embed_faces(rgb, found)
            spent = time.perf_counter() - start
            seconds[name] += shared + spent
            if found:
                embed_ms[name].append(1000 * spent / len(found))
        start = time.perf_counter()
        rgb = load_image(path)
        located = face_recognition.face_locations(rgb, 1)
        middle = time.perf_counter()
        face_recognition.face_encodings(rgb, located)
        end = time.perf_counter()
        seconds["face_recognition"] += end - start
        faces["face_recognition"] += len(located)
        if located:
            embed_ms["face_recognition"].append(1000 * (end - middle) / len(located))

    def entry(name: str, count: int) -> dict[str, Any]:
        return {
            "faces": count,
            "seconds": round(seconds[name], 2),
            "faces_per_s": round(count / seconds[name], 1),
            "ms_per_face": round(1000 * seconds[name] / max(1, count), 2),
            "embed_ms_per_face": round(statistics.median(embed_ms[name]), 2),
        }

    peer = entry("face_recognition", faces["face_recognition"])
    kao = {name: entry(name, faces["kao"]) for name in names}
    return {
        "images": len(paths),
        "threads": 1,
        "models": kao,
        "face_recognition": peer,
        "speedup": {
            name: round(r["faces_per_s"] / peer["faces_per_s"], 1) for name, r in kao.items()
        },
        "data": str(data),
        "machine": machine(),
    }


def bench_analyze(
    data: Path, *, images: int = 100, accurate: bool = False, background_load: bool = False
) -> dict[str, Any]:
    """Median ms per face of each `kao analyze` stage on one thread over the first `images`
    photos of `data`, beside face_recognition finding the 68 landmarks of the same photos.
    With `background_load`, one core is kept busy from before the models load to the end.

    Sets KAO_THREADS=1 for the process: call it before any model is loaded (a fresh process)."""
    os.environ["KAO_THREADS"] = "1"
    before = load_average()
    with BackgroundLoad(background_load) as load:
        report = _bench_analyze(data, images, accurate)
    return report | conditions(load, before)


def _bench_analyze(data: Path, images: int, accurate: bool) -> dict[str, Any]:
    """`bench_analyze`'s measurement (see there), without the background load."""
    face_recognition = baselines.import_face_recognition()

    from kao.analysis import STAGES, FaceAnalyzer

    paths = photos_in(data, images)
    analyzer = FaceAnalyzer(accurate=accurate).load()
    photos = [load_image(path) for path in paths]
    analyzer.analyze_faces(photos[0], analyzer.detector.detect(photos[0]))  # warm-up
    per_face: dict[str, list[float]] = {stage: [] for stage in (*STAGES, "total")}
    peer: list[float] = []
    faces_seen = 0
    for rgb in progress(photos, len(photos)):
        timings: dict[str, float] = {}
        start = time.perf_counter()
        faces = analyzer.detector.detect(rgb)
        timings["detection"] = time.perf_counter() - start
        if not faces:
            continue
        analyzer.analyze_faces(rgb, faces, timings=timings)
        faces_seen += len(faces)
        for stage in STAGES:
            per_face[stage].append(1000 * timings[stage] / len(faces))
        per_face["total"].append(1000 * sum(timings.values()) / len(faces))
        start = time.perf_counter()
        found = face_recognition.face_locations(rgb, 1)
        face_recognition.face_landmarks(rgb, found)
        if found:
            peer.append(1000 * (time.perf_counter() - start) / len(found))
    if not faces_seen:
        raise KaoError(f"{data}: no face found in the first {len(paths)} photos")
    return {
        "images": len(paths),
        "faces": faces_seen,
        "threads": 1,
        "accurate": accurate,
        "median_ms_per_face": {k: round(statistics.median(v), 2) for k, v in per_face.items()},
        "face_recognition_68_landmarks_ms_per_face": round(statistics.median(peer), 2),
        "data": str(data),
        "machine": machine(),
    }
