"""`kao bench`: speed of kao beside a peer measured in the same run (medians and ratios).

The measuring lives in the library (`kao.evaluation.bench_speed`, `bench_search`,
`bench_video`, `bench_live`, `loadtest.serve_load`); this module parses, calls and prints. The
default data folders are this project's development copies beside the checkout (../shared);
elsewhere pass your own (--data DIR, --faces DIR, --lfw DIR, --wider DIR)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from kao.cli.batch import add_detector_option
from kao.errors import KaoError
from kao.evaluation.loadtest import MIXED_MEMORY_CEILING_MIB
from kao.gallery.index import APPROXIMATE
from kao.recognition.embedder import RECOGNITION_MODELS

DEFAULT_PHOTOS = Path("../shared/data/widerface_val_subset/images")
DEFAULT_FACES = Path("../shared/data/lfw/lfw-deepfunneled")


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
    _add_background_load(detect)
    detect.add_argument("--json", action="store_true", help="print JSON")
    detect.set_defaults(run=run_detect)
    embed = targets.add_parser(
        "embed",
        help="detection + embedding on one core: faces/s and ms per face, per model",
        description="Faces/second and ms per face on one core for finding and embedding every "
        "face of a folder of photos (decoding included), and ms per face of the embedding "
        "alone, for each recognition model and face_recognition 1.3 (HOG + face_encodings), "
        "taking turns on each photo in one run. Run it in a fresh process: it sets "
        "KAO_THREADS=1 before any model loads.",
    )
    embed.add_argument("--data", type=Path, default=DEFAULT_FACES, help="folder of photos")
    embed.add_argument("--images", type=_positive, default=100, help="photos to process")
    embed.add_argument(
        "--model",
        dest="models",
        action="append",
        choices=RECOGNITION_MODELS,
        help="recognition model to time (repeat for several; default: every one)",
    )
    _add_background_load(embed)
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
    _add_background_load(analyze)
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
    live = targets.add_parser(
        "live",
        help="the live WebSocket of kao serve: frames/s and latency at a camera's pace",
        description="Start `kao serve` on 127.0.0.1 and stream the 300-frame 640x480 video of "
        "one to three faces built from LFW and WIDER FACE photos (as `kao bench video`), "
        "JPEG-encoded, through /v1/live at the camera's pace, one frame in flight as the web "
        "page sends them: frames answered per second and p50/p95 latency from a frame sent to "
        "its answer, tracking only, with attributes, and with attributes and landmarks.",
    )
    live.add_argument("--lfw", type=Path, default=DEFAULT_FACES, help="LFW deep-funneled folder")
    live.add_argument("--wider", type=Path, default=DEFAULT_PHOTOS, help="WIDER FACE images")
    live.add_argument("--fps", type=_positive, default=30, help="the camera's frames/s")
    live.add_argument("--json", action="store_true", help="print JSON")
    live.set_defaults(run=run_live)
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
    batch = targets.add_parser(
        "batch",
        help="batch jobs: images/s and memory of the plain loop, the local process pool and Ray",
        description="Images/second (whole command, model loading included) and resident memory "
        "of `kao TASK LIST --results FILE` over the same photos: the plain loop, then "
        "--engine local --workers N, then --engine ray --workers N (a Ray started on this "
        "machine; when kao[ray] is installed), in one run; says whether all wrote the same "
        "records.",
    )
    batch.add_argument("--data", type=Path, default=DEFAULT_FACES, help="folder of photos")
    batch.add_argument("--images", type=_positive, default=1000, help="photos to process")
    batch.add_argument(
        "--workers", type=_positive, default=2, help="workers of the pool, actors of Ray"
    )
    batch.add_argument(
        "--task",
        choices=("detect", "analyze", "embed", "count"),
        default="detect",
        help="the command run (default detect)",
    )
    batch.add_argument("--json", action="store_true", help="print JSON")
    batch.set_defaults(run=run_batch)


def _add_background_load(parser: argparse.ArgumentParser) -> None:
    """`--background-load`: one core kept busy by another process while kao and its peer are
    measured."""
    parser.add_argument(
        "--background-load",
        action="store_true",
        help="keep one core busy with a separate process during the measurement",
    )


def _print_conditions(report: dict[str, Any]) -> None:
    """The CPU, the precision of 8-bit networks, the background load and load averages of a
    `kao bench` report, as one line."""
    cpu, load = report["machine"], report["background_load"]
    busy = f"one core busy ({load['busy_cores']} cores used)" if load["processes"] else "none"
    flags = ", ".join(cpu["cpu_flags"]) or "none known"
    print(
        f"CPU {cpu['cpu_model']} ({cpu['cpus']} CPUs; flags {flags}; 8-bit networks in "
        f"{cpu['precision']}); background load: {busy}; load average "
        f"{report['load_average_before'][0] if report['load_average_before'] else '?'} before, "
        f"{report['load_average_after'][0] if report['load_average_after'] else '?'} after"
    )


def _folder(path: Path, option: str) -> Path:
    """`path` when it is a folder, else KaoError telling how to name one with `option`."""
    if not path.is_dir():
        raise KaoError(
            f"{path}: no such folder; pass {option} DIR (the default is this project's "
            "development data beside the checkout)"
        )
    return path


def _emit(args: argparse.Namespace, report: dict[str, Any]) -> bool:
    """Print `report` as JSON with --json; True when it was printed."""
    if args.json:
        print(json.dumps(report, indent=2))
    return bool(args.json)


def run_serve(args: argparse.Namespace) -> int:
    """Load-test a real `kao serve` (see the sub-command's description); exit 1 when the mixed
    phase found a problem."""
    from kao.evaluation.loadtest import Load, serve_load

    load = Load(
        workers=args.workers,
        clients=args.clients,
        seconds=args.seconds,
        identify_seconds=args.identify_seconds,
        max_requests=args.max_requests,
        mixed_seconds=args.mixed_seconds,
        bad_clients=args.bad_clients,
        idle_connections=args.idle_connections,
        memory_ceiling_mib=args.memory_ceiling_mib,
    )
    report = serve_load(_folder(args.data, "--data"), _folder(args.faces, "--faces"), load)
    failed = int(bool(report.get("mixed", {}).get("problems")))
    if _emit(args, report):
        return failed
    for phase in ("detect", "identify"):
        r = report[phase]
        print(
            f"{phase:<9} {r['requests_per_s']:6.1f} requests/s  p50 {r['p50_ms']} ms  "
            f"p99 {r['p99_ms']} ms  ({r['requests']} ok, {r['failures']} failed)"
        )
    m = report["memory_mib"]
    print(
        f"memory: {m['first_minute_median']} MiB in the first minute, "
        f"{m['last_minute_median']} in the last, peak {m['peak']}"
    )
    if "mixed" in report:
        _print_mixed(report["mixed"])
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
    from kao.evaluation.bench_speed import bench_detect

    report = bench_detect(
        _folder(args.data, "--data"),
        photos=args.photos,
        repeat=args.repeat,
        folder_images=args.folder_images,
        detector=args.detector,
        background_load=args.background_load,
    )
    if _emit(args, report):
        return 0
    _print_conditions(report)
    sessions = report["sessions"]
    how = "following the idle cores" if sessions["adaptive"] else "KAO_THREADS"
    idle = sessions["idle_cores"]
    print(
        f"kao's sessions ({how}): {sessions['threads']} thread(s) at the end "
        f"({'?' if idle is None else round(idle, 1)} of {sessions['usable_cores']} cores idle), "
        f"spinning {'on' if sessions['spinning'] else 'off'}"
    )
    print(f"median latency per 640x480 photo ({report['photos']} photos x {args.repeat}):")
    for name, value in report["median_ms_640x480"].items():
        print(f"  {name:<22} {value:8.2f} ms")
    print(
        f"  kao is {report['speedup_vs_hog']}x faster than HOG "
        f"({report['speedup_vs_hog_1_thread']}x on one thread, "
        f"{report['speedup_vs_hog_masked_pass']}x with the masked-face pass)"
    )
    folder = report["folder"]
    print(f"folder of {folder['images']} images from {args.data}, decode included:")
    for name, value in folder["images_per_s"].items():
        print(f"  {name:<22} {value:8.1f} images/s")
    return 0


def run_embed(args: argparse.Namespace) -> int:
    """Detect and embed every face of each photo with each model and with face_recognition."""
    from kao.evaluation.bench_speed import bench_embed

    report = bench_embed(
        _folder(args.data, "--data"),
        images=args.images,
        models=args.models,
        background_load=args.background_load,
    )
    if _emit(args, report):
        return 0
    _print_conditions(report)
    print(f"one core, {report['images']} photos of {args.data}, decoding and detection included:")
    rows = {**report["models"], "face_recognition": report["face_recognition"]}
    for name, r in rows.items():
        print(
            f"  {name:<17} {r['faces_per_s']:6.1f} faces/s  {r['ms_per_face']:7.2f} ms a face  "
            f"(embedding alone {r['embed_ms_per_face']:.2f} ms; {r['faces']} faces)"
        )
    return 0


def run_analyze(args: argparse.Namespace) -> int:
    """Time each analysis stage per face on one thread, and face_recognition's landmarks."""
    from kao.evaluation.bench_speed import bench_analyze

    report = bench_analyze(
        _folder(args.data, "--data"),
        images=args.images,
        accurate=args.accurate,
        background_load=args.background_load,
    )
    if _emit(args, report):
        return 0
    _print_conditions(report)
    print(f"median ms per face, one thread ({report['faces']} faces in {report['images']} photos):")
    for stage, value in report["median_ms_per_face"].items():
        print(f"  {stage:<12} {value:8.2f}")
    print(
        "  face_recognition HOG + 68 landmarks: "
        f"{report['face_recognition_68_landmarks_ms_per_face']:.2f} ms per face"
    )
    return 0


def run_search(args: argparse.Namespace) -> int:
    """Time the approximate index beside exact search on one synthetic collection."""
    from kao.evaluation.bench_search import bench_search

    report = bench_search(
        args.size,
        args.dim,
        args.queries,
        args.k,
        seed=args.seed,
        connectivity=args.connectivity,
        expansion_add=args.expansion_add,
        expansion_search=args.expansion_search,
        threads=args.threads,
    )
    if _emit(args, report):
        return 0
    data, memory, build = report["data"], report["memory_mib"], report["build_s"]
    print(
        f"{args.size} synthetic faces of {args.dim}-d ({data['identities']} identities; cosine "
        f"{data['same_identity_cosine']} same person, {data['other_identity_cosine']} others), "
        f"{args.queries} queries, k={args.k}"
    )
    print(
        f"  build: approximate {build['approximate']:.1f} s "
        f"(M={args.connectivity}, ef_add={args.expansion_add}, {args.threads} thread(s)), "
        f"exact {build['exact']:.1f} s"
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


def run_video(args: argparse.Namespace) -> int:
    """Time `kao video`'s processing on the bench scene and score its tracking on every scene."""
    from kao.evaluation.bench_video import bench_video

    report = bench_video(
        _folder(args.lfw, "--lfw"),
        _folder(args.wider, "--wider"),
        repeat=args.repeat,
        detector=args.detector,
    )
    if _emit(args, report):
        return 0
    print(
        f"kao video on 300 frames of 640x480, 1-3 faces, {args.detector}, median of {args.repeat}:"
    )
    for name, figure in report["fps"].items():
        text = f"{figure['median']:6.1f} fps" if "median" in figure else figure["error"]
        print(f"  {name:<22} {text}")
    tracking = report["tracking"]
    print(
        f"track id switches: {tracking['id_switches']} over {tracking['ground_truth_tracks']} "
        "ground-truth tracks"
    )
    for name, score in tracking["scenes"].items():
        print(
            f"  {name:<10} people {score['people']}  tracks {score['tracks']}  switches "
            f"{score['id_switches']}  new ids after an absence {score['new_ids_after_absence']}  "
            f"matched {100 * score['matched']:.1f}%"
        )
    return 0


def run_live(args: argparse.Namespace) -> int:
    """Stream the bench video through a real `kao serve`'s /v1/live; print fps and latency."""
    from kao.evaluation.bench_live import bench_live

    report = bench_live(_folder(args.lfw, "--lfw"), _folder(args.wider, "--wider"), fps=args.fps)
    if _emit(args, report):
        return 0
    video = report["video"]
    print(
        f"/v1/live, {video['frames']} frames of {video['width']}x{video['height']} at "
        f"{video['fps']:g} fps, 1-3 faces; load average {report['load_average_before'][0]} "
        f"before, {report['load_average_after'][0]} after:"
    )
    for name, r in report["settings"].items():
        print(
            f"  {name:<11} {r['fps']:5.1f} fps  p50 {r['p50_ms']} ms  p95 {r['p95_ms']} ms  "
            f"(server p50 {r['server_p50_ms']} ms, {r['faces_mean']} faces a frame, "
            f"{100 * r['faces_with_attributes']:.0f}% with attributes, {r['errors']} errors, "
            f"load {r['load_average']})"
        )
    return 0


def run_batch(args: argparse.Namespace) -> int:
    """Time the plain loop, the local pool and Ray on the same photos; print images/s and
    memory."""
    from kao.evaluation.bench_batch import bench_batch

    report = bench_batch(
        _folder(args.data, "--data"), images=args.images, workers=args.workers, task=args.task
    )
    if _emit(args, report):
        return 0
    print(
        f"kao {report['task']} --results on {report['images']} photos of {report['data']} "
        f"({report['machine']['cpus']} CPUs; load average {report['load_average_before'][0]} "
        f"before, {report['load_average_after'][0]} after):"
    )
    for name, run in report["runs"].items():
        if "error" in run:
            print(f"  {name:<9} {run['error']}")
            continue
        memory = run["rss_mib"]
        print(
            f"  {name:<9} {run['images_per_s']:6.2f} images/s ({run['seconds']} s; "
            f"{run['steady_images_per_s']} from the first record)  "
            f"memory peak {memory['peak']} MiB, {memory['second_quarter_median']} -> "
            f"{memory['last_quarter_median']} MiB (second -> last quarter)"
        )
    same = "identical" if report["identical"] else "DIFFERENT"
    print(
        f"speed-up {report['speedup']}x ({report['steady_speedup']}x from the first record); "
        f"records {same}"
    )
    if report.get("ray_vs_local"):
        print(
            f"Ray against the pool {report['ray_vs_local']}x "
            f"({report['steady_ray_vs_local']}x from the first record)"
        )
    elif "ray" in report:
        print(f"Ray {report['ray']}")
    return 0
