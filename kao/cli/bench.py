"""`kao bench`: speed of kao beside a peer measured in the same run (medians and ratios)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from kao.cli.batch import add_detector_option
from kao.errors import KaoError
from kao.evaluation import baselines
from kao.gallery.index import APPROXIMATE, ApproximateIndex, ExactIndex
from kao.image import find_images, load_image
from kao.progress import progress

DEFAULT_PHOTOS = Path("../shared/data/widerface_val_subset/images")
DEFAULT_FACES = Path("../shared/data/lfw/lfw-deepfunneled")
FACES_PER_IDENTITY = 5
SAME_PERSON_COSINE = 0.9  # typical cosine of two embeddings of one person (dlib model)
BLOCK = 10_000  # faces generated and inserted at a time
EXACT_LATENCY_QUERIES = 100  # single exact queries timed (each scans the whole collection)
MIXED_MEMORY_CEILING_MIB = 2048  # kao bench serve --mixed-seconds: 2 workers and their uploads


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
    add_detector_option(detect)
    detect.add_argument("--json", action="store_true", help="print JSON")
    detect.set_defaults(run=run_detect)
    embed = targets.add_parser(
        "embed",
        help="detection + embedding throughput in faces/second, beside face_recognition",
        description="Faces/second for finding and embedding every face of a folder of photos "
        "(decoding included), kao and face_recognition 1.3 (HOG + face_encodings) in one run.",
    )
    embed.add_argument("--data", type=Path, default=DEFAULT_FACES, help="folder of photos")
    embed.add_argument("--images", type=_positive, default=100, help="photos to process")
    embed.add_argument("--json", action="store_true", help="print JSON")
    embed.set_defaults(run=run_embed)
    analyze = targets.add_parser(
        "analyze",
        help="the whole per-face analysis on one core, stage by stage (ms per face)",
        description="Median milliseconds per face of each `kao analyze` stage on one thread "
        "(detection, landmarks, pose and gaze, age and gender, emotion, mask), beside "
        "face_recognition 1.3 finding the 68 landmarks of the same photos (HOG + face_landmarks)."
        " Run it in a fresh process: it sets KAO_THREADS=1 before any model loads.",
    )
    analyze.add_argument("--data", type=Path, default=DEFAULT_FACES, help="folder of photos")
    analyze.add_argument("--images", type=_positive, default=100, help="photos to process")
    analyze.add_argument("--json", action="store_true", help="print JSON")
    analyze.add_argument("--accurate", action="store_true", help="as `kao analyze --accurate`")
    analyze.set_defaults(run=run_analyze)
    search = targets.add_parser(
        "search",
        help="face search on a synthetic collection: approximate index beside exact search",
        description="Build the approximate (HNSW) index of a synthetic collection of face "
        "embeddings (5 per identity, same-person cosine about 0.9) and report build time, "
        "memory, single-query latency, batch throughput and recall@1 against exact search, "
        "whose latency is measured in the same run.",
    )
    search.add_argument("--size", type=_positive, default=100_000, help="faces in the collection")
    search.add_argument("--dim", type=_positive, default=128, help="embedding dimension")
    search.add_argument("--queries", type=_positive, default=1000, help="queries to time")
    search.add_argument("--k", type=_positive, default=1, help="neighbours per query")
    search.add_argument("--seed", type=int, default=0, help="seed of the synthetic data")
    search.add_argument(
        "--connectivity", type=_positive, default=APPROXIMATE.connectivity, help="HNSW M"
    )
    search.add_argument(
        "--expansion-add",
        type=_positive,
        default=APPROXIMATE.expansion_add,
        help="HNSW efConstruction",
    )
    search.add_argument(
        "--expansion-search",
        type=_positive,
        default=APPROXIMATE.expansion_search,
        help="HNSW ef",
    )
    search.add_argument(
        "--threads",
        type=int,
        default=1,
        help="threads inserting faces: 1 (default, reproducible) or 0 for every core",
    )
    search.add_argument("--json", action="store_true", help="print JSON")
    search.set_defaults(run=run_search)
    video = targets.add_parser(
        "video",
        help="kao video's frames/second (tracking, attributes) and its track id switches",
        description="Frames/second of `kao video` on a 300-frame 640x480 video of one to three "
        "faces built from LFW and WIDER FACE photos (decoding, detection and tracking; the same "
        "with the detector on every core instead of one, on every other frame, with the "
        "masked-face pass; with attributes), the median of --repeat runs each; then the track "
        "id switches on every test scene against its ground truth.",
    )
    video.add_argument("--lfw", type=Path, default=DEFAULT_FACES, help="LFW deep-funneled folder")
    video.add_argument("--wider", type=Path, default=DEFAULT_PHOTOS, help="WIDER FACE images")
    video.add_argument("--repeat", type=_positive, default=3, help="timed runs of each setting")
    add_detector_option(video)
    video.add_argument("--json", action="store_true", help="print JSON")
    video.set_defaults(run=run_video)
    serve = targets.add_parser(
        "serve",
        help="load test of kao serve on 127.0.0.1: requests/s, p50/p99 latency, memory",
        description="Start `kao serve --workers N` on 127.0.0.1, send 640x480 photos to "
        "/v1/detect from --clients threads for --seconds, then photos to /v1/.../identify for "
        "--identify-seconds; report requests/s, p50/p99 latency and the server's memory (all "
        "its processes) sampled every second. With --mixed-seconds, then a mixed phase: the "
        "same detect requests from --clients threads while --bad-clients threads send bad, "
        "face-less and oversized uploads to /v1/detect and /v1/analyze and "
        "--idle-connections connections stay open without finishing a request; every good "
        "request must be answered 200, every bad one answered and not 5xx (503, overload, "
        "counted apart) and the "
        "server's memory must stay under --memory-ceiling-mib (exit code 1 otherwise). "
        "Bounded in time and count; local traffic only.",
    )
    serve.add_argument("--data", type=Path, default=DEFAULT_PHOTOS, help="folder of photos")
    serve.add_argument("--faces", type=Path, default=DEFAULT_FACES, help="LFW folder to enrol")
    serve.add_argument("--workers", type=_positive, default=2, help="server processes")
    serve.add_argument("--clients", type=_positive, default=4, help="client threads")
    serve.add_argument("--seconds", type=_positive, default=300, help="detect phase length")
    serve.add_argument("--identify-seconds", type=_positive, default=60, help="identify phase")
    serve.add_argument("--max-requests", type=_positive, default=200_000, help="per phase")
    serve.add_argument(
        "--mixed-seconds", type=int, default=0, help="mixed phase length (default 0: none)"
    )
    serve.add_argument("--bad-clients", type=_positive, default=2, help="mixed: bad uploaders")
    serve.add_argument(
        "--idle-connections", type=int, default=64, help="mixed: connections held idle"
    )
    serve.add_argument(
        "--memory-ceiling-mib",
        type=_positive,
        default=MIXED_MEMORY_CEILING_MIB,
        help=f"mixed: most server memory, MiB (default {MIXED_MEMORY_CEILING_MIB})",
    )
    serve.add_argument("--json", action="store_true", help="print JSON")
    serve.set_defaults(run=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    """Load-test a real `kao serve` (see the sub-command's description)."""
    import tempfile

    from kao.evaluation.loadtest import Server, bad_requests, hammer, mixed, tree_rss_mib
    from kao.server.settings import DEFAULT_MAX_UPLOAD

    photos = find_images([args.data])[:20]
    people = (
        sorted(p for p in args.faces.iterdir() if p.is_dir())[:20] if args.faces.is_dir() else []
    )
    if not photos or not people:
        raise KaoError(f"need photos in {args.data} and LFW people folders in {args.faces}")
    jpegs = [
        cv2.imencode(".jpg", cv2.resize(load_image(p), (640, 480))[:, :, ::-1])[1].tobytes()
        for p in photos
    ]
    probe = (people[0] / sorted(os.listdir(people[0]))[0]).read_bytes()
    memory: list[tuple[float, float]] = []
    with (
        tempfile.TemporaryDirectory() as folder,
        Server(
            str(Path(folder) / "load.db"),
            Path(folder) / "serve.log",
            "--workers",
            str(args.workers),
            env={"KAO_THREADS": "1"},  # one ONNX thread per request, workers side by side
        ) as server,
    ):
        start = time.monotonic()

        def sample() -> None:
            memory.append((time.monotonic() - start, tree_rss_mib(server.process.pid)))

        import httpx

        with httpx.Client(base_url=server.base, timeout=60, trust_env=False) as client:
            client.post("/v1/collections", json={"name": "load"}).raise_for_status()
            for person in people:
                photo = (person / sorted(os.listdir(person))[0]).read_bytes()
                files = [("images", ("p.jpg", photo, "image/jpeg"))]
                client.post(
                    "/v1/collections/load/enroll", files=files, data={"person": person.name}
                ).raise_for_status()
        counter = iter(range(10**9))

        def detect(client: Any) -> Any:
            image = jpegs[next(counter) % len(jpegs)]
            return client.post("/v1/detect", files=[("image", ("a.jpg", image, "image/jpeg"))])

        def identify(client: Any) -> Any:
            files = [("image", ("b.jpg", probe, "image/jpeg"))]
            return client.post("/v1/collections/load/identify", files=files)

        sample()
        phases = [
            hammer(
                server.base, "detect", detect, args.seconds, args.clients, args.max_requests, sample
            ),
            hammer(
                server.base,
                "identify",
                identify,
                args.identify_seconds,
                args.clients,
                args.max_requests,
                sample,
            ),
        ]
        if args.mixed_seconds > 0:
            clients = (args.clients, args.bad_clients, args.idle_connections)
            bad = bad_requests(["/v1/detect", "/v1/analyze"], DEFAULT_MAX_UPLOAD)
            under_attack = mixed(
                server,
                detect,
                bad,
                args.mixed_seconds,
                clients,
                args.memory_ceiling_mib,
                args.max_requests,
            )
    detect_memory = [rss for t, rss in memory if t <= args.seconds + 5]
    minute = max(1, len(detect_memory) // max(1, args.seconds // 60))
    report: dict[str, Any] = {
        "workers": args.workers,
        "clients": args.clients,
        "photos": "640x480 JPEG, " + str(len(jpegs)) + " WIDER photos in turn",
        **{phase.name: phase.report() for phase in phases},
        "memory_mib": {
            "start": round(memory[0][1], 1),
            "first_minute_median": round(statistics.median(detect_memory[:minute]), 1),
            "last_minute_median": round(statistics.median(detect_memory[-minute:]), 1),
            "peak": round(max(rss for _, rss in memory), 1),
            "samples": len(memory),
        },
        "machine": {"cpus": os.cpu_count(), "load_average_after": os.getloadavg()[0]},
    }
    if args.mixed_seconds > 0:
        report["mixed"] = under_attack
    failed = int(bool(args.mixed_seconds > 0 and under_attack["problems"]))
    if args.json:
        print(json.dumps(report, indent=2))
        return failed
    for phase in phases:
        r = phase.report()
        print(
            f"{phase.name:<9} {r['requests_per_s']:6.1f} requests/s  p50 {r['p50_ms']} ms  "
            f"p99 {r['p99_ms']} ms  ({r['requests']} ok, {r['failures']} failed)"
        )
    m = report["memory_mib"]
    print(
        f"memory: {m['first_minute_median']} MiB in the first minute, "
        f"{m['last_minute_median']} in the last, peak {m['peak']}"
    )
    if args.mixed_seconds > 0:
        _print_mixed(under_attack)
    return failed


def _print_mixed(report: dict[str, Any]) -> None:
    """The mixed phase of `kao bench serve` as text."""
    good, bad, idle, memory = (report[k] for k in ("good", "bad", "idle", "memory_mib"))
    print(
        f"mixed {report['seconds']} s: good {good['requests']} ok, {good['failures']} failed, "
        f"p50 {good['p50_ms']} ms, p99 {good['p99_ms']} ms; bad {bad['requests']} "
        f"{bad['by_status']}; idle {idle['opened']} opened, {idle['ended_by_server']} ended by "
        f"the server {idle['ended_by_status']}; memory {memory['start']} -> max "
        f"{memory['max']} -> {memory['end']} MiB (ceiling {memory['ceiling']})"
    )
    for problem in report["problems"]:
        print(f"problem: {problem}")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


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
        "kao": baselines.kao_detector(model=args.detector),
        "kao_1_thread": baselines.kao_detector(model=args.detector, threads=1),
        "kao_masked_pass": baselines.kao_detector(model=args.detector, masked_faces=True),
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
        "speedup_vs_hog_masked_pass": round(
            latency["face_recognition_hog"] / latency["kao_masked_pass"], 1
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
        "model": args.detector,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"median latency per 640x480 photo ({len(photos)} photos x {args.repeat}):")
    for name, value in latency.items():
        print(f"  {name:<22} {value:8.2f} ms")
    print(
        f"  kao is {report['speedup_vs_hog']}x faster than HOG "
        f"({report['speedup_vs_hog_1_thread']}x on one thread, "
        f"{report['speedup_vs_hog_masked_pass']}x with the masked-face pass)"
    )
    print(f"folder of {len(folder)} images from {args.data}, decode included:")
    for name, value in throughput.items():
        print(f"  {name:<22} {value:8.1f} images/s")
    return 0


def run_embed(args: argparse.Namespace) -> int:
    """Detect and embed every face of each photo with kao, then with face_recognition."""
    import face_recognition

    from kao.recognition import default_embedder

    if not args.data.is_dir():
        raise KaoError(f"{args.data}: no such folder (give a folder of photos with --data)")
    paths = find_images([args.data])[: args.images]
    embedder = default_embedder()

    def kao_faces(path: Path) -> int:
        return len(embedder.embed(path))

    def face_recognition_faces(path: Path) -> int:
        rgb = load_image(path)
        return len(face_recognition.face_encodings(rgb, face_recognition.face_locations(rgb, 1)))

    kao_faces(paths[0])  # load the models before timing
    report: dict[str, Any] = {"images": len(paths), "data": str(args.data)}
    for name, run in (("kao", kao_faces), ("face_recognition", face_recognition_faces)):
        start = time.perf_counter()
        faces = sum(run(path) for path in progress(paths, len(paths)))
        seconds = time.perf_counter() - start
        report[name] = {
            "faces": faces,
            "seconds": round(seconds, 2),
            "faces_per_s": round(faces / seconds, 1),
        }
    report["speedup"] = round(
        report["kao"]["faces_per_s"] / report["face_recognition"]["faces_per_s"], 1
    )
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    for name in ("kao", "face_recognition"):
        r = report[name]
        print(
            f"{name:<17} {r['faces_per_s']:6.1f} faces/s ({r['faces']} faces in {r['seconds']} s)"
        )
    print(f"kao is {report['speedup']}x faster")
    return 0


def run_analyze(args: argparse.Namespace) -> int:
    """Time each analysis stage per face on one thread, and face_recognition's landmarks."""
    os.environ["KAO_THREADS"] = "1"
    import face_recognition

    from kao.analysis import STAGES, FaceAnalyzer

    if not args.data.is_dir():
        raise KaoError(f"{args.data}: no such folder (give a folder of photos with --data)")
    paths = find_images([args.data])[: args.images]
    analyzer = FaceAnalyzer(accurate=args.accurate).load()
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
        raise KaoError(f"{args.data}: no face found in the first {len(paths)} photos")
    report: dict[str, Any] = {
        "images": len(paths),
        "faces": faces_seen,
        "threads": 1,
        "accurate": args.accurate,
        "median_ms_per_face": {k: round(statistics.median(v), 2) for k, v in per_face.items()},
        "face_recognition_68_landmarks_ms_per_face": round(statistics.median(peer), 2),
        "data": str(args.data),
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"median ms per face, one thread ({faces_seen} faces in {len(paths)} photos):")
    for stage, value in report["median_ms_per_face"].items():
        print(f"  {stage:<12} {value:8.2f}")
    print(
        "  face_recognition HOG + 68 landmarks: "
        f"{report['face_recognition_68_landmarks_ms_per_face']:.2f} ms per face"
    )
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


def run_search(args: argparse.Namespace) -> int:
    """Time the approximate index beside exact search on one synthetic collection."""
    ids, vectors, queries, identities = synthetic_faces(
        args.size, args.dim, args.queries, args.seed
    )
    same, other = _cosines(vectors, queries, identities)

    start = time.perf_counter()
    exact = ExactIndex.build(ids, vectors)
    exact_build = time.perf_counter() - start

    rss_before = _rss_mib()
    start = time.perf_counter()
    approximate = ApproximateIndex(
        args.dim,
        connectivity=args.connectivity,
        expansion_add=args.expansion_add,
        expansion_search=args.expansion_search,
        threads=args.threads,
    )
    for first in progress(range(0, args.size, BLOCK), -(-args.size // BLOCK), "blocks"):
        approximate.add(ids[first : first + BLOCK], vectors[first : first + BLOCK])
    approximate_build = time.perf_counter() - start
    rss_growth = _rss_mib() - rss_before
    del vectors

    start = time.perf_counter()
    exact_ids, _ = exact.search(queries, args.k)
    exact_batch = time.perf_counter() - start
    start = time.perf_counter()
    found_ids, _ = approximate.search(queries, args.k)
    approximate_batch = time.perf_counter() - start

    approximate_times, exact_times = _single_queries(approximate, exact, queries, args.k)
    report: dict[str, Any] = {
        "size": args.size,
        "dim": args.dim,
        "queries": args.queries,
        "k": args.k,
        "data": {
            "identities": int(-(-args.size // FACES_PER_IDENTITY)),
            "faces_per_identity": FACES_PER_IDENTITY,
            "same_identity_cosine": round(same, 3),
            "other_identity_cosine": round(other, 3),
            "seed": args.seed,
        },
        "index": {
            "library": "usearch",
            "version": _usearch_version(),
            "connectivity": args.connectivity,
            "expansion_add": args.expansion_add,
            "expansion_search": args.expansion_search,
            "storage": approximate.storage,
            "build_threads": args.threads,
        },
        "build_s": {
            "approximate": round(approximate_build, 2),
            "exact": round(exact_build, 2),
        },
        "memory_mib": {
            "approximate_index": round(approximate.nbytes / 2**20, 1),
            "approximate_rss_growth": round(rss_growth, 1),
            "exact_index": round(exact.nbytes / 2**20, 1),
            "peak_rss": round(_peak_rss_mib(), 1),
        },
        "latency_ms": {
            "approximate": _percentiles(approximate_times),
            "exact": _percentiles(exact_times),
        },
        "exact_latency_queries": len(exact_times),
        "speedup_p50": round(
            statistics.median(exact_times) / statistics.median(approximate_times), 1
        ),
        "batch_queries_per_s": {
            "approximate": round(len(queries) / approximate_batch, 1),
            "exact": round(len(queries) / exact_batch, 1),
        },
        "recall_at_1": round(float(np.mean(found_ids[:, 0] == exact_ids[:, 0])), 4),
        f"recall_at_{args.k}": round(_recall(found_ids, exact_ids), 4),
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
        },
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    data, memory = report["data"], report["memory_mib"]
    print(
        f"{args.size} synthetic faces of {args.dim}-d ({data['identities']} identities; cosine "
        f"{data['same_identity_cosine']} same person, {data['other_identity_cosine']} others), "
        f"{args.queries} queries, k={args.k}"
    )
    print(
        f"  build: approximate {approximate_build:.1f} s "
        f"(M={args.connectivity}, ef_add={args.expansion_add}, {args.threads} thread(s)), "
        f"exact {exact_build:.1f} s"
    )
    print(
        f"  memory: approximate index {memory['approximate_index']} MiB, exact "
        f"{memory['exact_index']} MiB, process peak {memory['peak_rss']} MiB"
    )
    for name in ("approximate", "exact"):
        latency = report["latency_ms"][name]
        print(
            f"  {name:<12} p50 {latency['p50']:8.3f} ms  p99 {latency['p99']:8.3f} ms  "
            f"batch {report['batch_queries_per_s'][name]:10.1f} queries/s"
        )
    print(
        f"  recall@1 {report['recall_at_1']} against exact search (ef={args.expansion_search}); "
        f"p50 speed-up over exact {report['speedup_p50']}x"
    )
    return 0


def synthetic_faces(
    size: int, dim: int, queries: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A synthetic face collection shaped like real embeddings: identity centres uniform on the
    unit sphere, FACES_PER_IDENTITY faces each (centre plus Gaussian noise, re-normalised) so
    that two faces of one person have cosine about SAME_PERSON_COSINE and of two people about 0.
    Face i belongs to identity i // FACES_PER_IDENTITY. Returns face ids (N,) int64, vectors
    (N, D) float32, queries (Q, D) float32 (fresh faces of random identities) and the queries'
    identities (Q,) int64. Generated in blocks to bound the temporary memory."""
    rng = np.random.default_rng(seed)
    count = -(-size // FACES_PER_IDENTITY)
    centres = _normalised(rng.standard_normal((count, dim), dtype=np.float32))
    # |centre + noise|^2 = 1 + D sigma^2, so two faces of a person have cosine 1 / (1 + D sigma^2)
    sigma = np.float32(np.sqrt((1 / SAME_PERSON_COSINE - 1) / dim))
    vectors = np.empty((size, dim), np.float32)
    for first in range(0, size, BLOCK):
        rows = np.arange(first, min(size, first + BLOCK))
        noise = rng.standard_normal((len(rows), dim), dtype=np.float32)
        vectors[rows] = _normalised(centres[rows // FACES_PER_IDENTITY] + sigma * noise)
    identities = rng.integers(0, count, queries)
    noise = rng.standard_normal((queries, dim), dtype=np.float32)
    query_vectors = _normalised(centres[identities] + sigma * noise)
    return np.arange(size, dtype=np.int64), vectors, query_vectors, identities


def _normalised(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _cosines(
    vectors: np.ndarray, queries: np.ndarray, identities: np.ndarray
) -> tuple[float, float]:
    """Mean cosine of each query with the first stored face of its identity and with a face of
    the next identity (a different person)."""
    first = identities * FACES_PER_IDENTITY
    same = np.einsum("ij,ij->i", queries, vectors[first])
    other = np.einsum("ij,ij->i", queries, vectors[(first + FACES_PER_IDENTITY) % len(vectors)])
    return float(same.mean()), float(other.mean())


def _single_queries(
    approximate: ApproximateIndex, exact: ExactIndex, queries: np.ndarray, k: int
) -> tuple[list[float], list[float]]:
    """Seconds per query of each index, one query at a time, the two taking turns so that
    background load hits them alike; exact search only on the first EXACT_LATENCY_QUERIES
    queries (each scans the whole collection). One untimed warm-up query each."""
    approximate.search(queries[:1], k)
    exact.search(queries[:1], k)
    times: tuple[list[float], list[float]] = ([], [])
    for row in progress(range(len(queries)), len(queries), "queries"):
        query = queries[row : row + 1]
        for index, spent in ((approximate, times[0]), (exact, times[1])):
            if index is exact and row >= EXACT_LATENCY_QUERIES:
                continue
            start = time.perf_counter()
            index.search(query, k)
            spent.append(time.perf_counter() - start)
    return times


def _percentiles(times: list[float]) -> dict[str, float]:
    values = np.asarray(times) * 1000
    return {
        "p50": round(float(np.percentile(values, 50)), 3),
        "p99": round(float(np.percentile(values, 99)), 3),
    }


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean fraction of each query's exact top-k that the approximate top-k contains."""
    hits = [
        len(np.intersect1d(f[f >= 0], t[t >= 0])) / max(1, (t >= 0).sum())
        for f, t in zip(found, truth, strict=True)
    ]
    return float(np.mean(hits))


def _rss_mib() -> float:
    """The resident memory of this process now (Linux; 0 elsewhere)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_rss_mib() -> float:
    """The peak resident memory of this process (ru_maxrss is KiB on Linux)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _usearch_version() -> str:
    import usearch

    return usearch.__version__


def run_video(args: argparse.Namespace) -> int:
    """Time `kao video`'s processing on the bench scene and score its tracking on every scene."""
    import tempfile

    from kao.analysis import FaceAnalyzer
    from kao.errors import ModelError
    from kao.evaluation.synthetic_video import SCENES, render, score_tracking, write_scene
    from kao.video import VideoAnalyzer, open_video, video_detector

    def fps(path: Path, analysis: Callable[[], VideoAnalyzer]) -> dict[str, Any]:
        """Frames/second of --repeat runs over `path`, each with a fresh `analysis()`."""
        runs = []
        for _ in progress(range(args.repeat), args.repeat, "runs"):
            start = time.perf_counter()
            with open_video(path) as video:
                frames = sum(1 for _ in analysis().run(video.frames()))
            runs.append(frames / (time.perf_counter() - start))
        return {"median": round(statistics.median(runs), 1), "runs": [round(r, 1) for r in runs]}

    plain = video_detector(model=args.detector)
    masked = video_detector(model=args.detector, masked_faces=True)
    all_cores = video_detector(model=args.detector, threads=None)
    report: dict[str, Any] = {"model": args.detector, "repeat": args.repeat, "fps": {}}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.mp4"
        write_scene(SCENES["bench"], path, args.lfw, args.wider)
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
        frames = _scene_frames(render(scene, args.lfw, args.wider), truth)
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
        "processor": platform.processor() or platform.machine(),
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(
        f"kao video on 300 frames of 640x480, 1-3 faces, {args.detector}, median of {args.repeat}:"
    )
    for name, figure in report["fps"].items():
        text = f"{figure['median']:6.1f} fps" if "median" in figure else figure["error"]
        print(f"  {name:<22} {text}")
    print(f"track id switches: {switches} over {people} ground-truth tracks")
    for name, score in scores.items():
        print(
            f"  {name:<10} people {score['people']}  tracks {score['tracks']}  switches "
            f"{score['id_switches']}  new ids after an absence {score['new_ids_after_absence']}  "
            f"matched {100 * score['matched']:.1f}%"
        )
    return 0


def _scene_frames(
    rendered: Iterator[tuple[np.ndarray, dict[str, np.ndarray]]], truth: list[dict[str, np.ndarray]]
) -> Iterator[np.ndarray]:
    """The frames of a rendered scene, appending each one's ground truth to `truth`."""
    for rgb, people in rendered:
        truth.append(people)
        yield rgb
