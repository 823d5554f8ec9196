"""Batch jobs' speed and memory (`kao bench batch`): the plain loop against the local engine's
process pool and the Ray engine's actors on the same photos, each a real `kao TASK LIST
--results FILE` run in its own process; returns the JSON-ready report."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from kao.evaluation.bench_speed import machine, photos_in
from kao.evaluation.loadtest import tree_rss_mib
from kao.extras import installed
from kao.jobs import read_records

SAMPLE_SECONDS = 0.5
"""How often the memory of a run's processes is sampled."""


def bench_batch(
    data: Path, *, images: int = 1000, workers: int = 2, task: str = "detect"
) -> dict[str, Any]:
    """Images/second and memory of `kao TASK` over the first `images` photos of `data` (a
    list file of their paths): the plain loop (one process, ONNX Runtime on every core), then
    `--engine local --workers N` (one ONNX thread a worker), then, when Ray is installed,
    `--engine ray --workers N` (N actors of one CPU on a Ray started here for the run), all
    writing JSON Lines results.
    The time is the whole command's wall clock (start-up and model loading included); memory
    is the resident set of the command and its workers, sampled every `SAMPLE_SECONDS`: peak,
    and the median over the second and the last quarter of the run (the first holds start-up;
    flat memory: the two alike; Ray's shared object store counts in each of its processes).
    `identical`: every run wrote the same records. `speedup`: the pool's images/s over the
    plain loop's; `ray_vs_local`: Ray's over the pool's (`steady_`: from the first record). A
    run that fails is reported as `{"error"}` (its command, exit code and stderr's end), and
    the others are still done."""
    photos = photos_in(data, images)
    report: dict[str, Any] = {
        "task": task,
        "images": len(photos),
        "data": str(data),
        "machine": machine(),
        "load_average_before": [round(v, 2) for v in os.getloadavg()],
        "runs": {},
    }
    with tempfile.TemporaryDirectory() as folder:
        listing = Path(folder) / "photos.txt"
        listing.write_text("".join(f"{path.resolve()}\n" for path in photos), encoding="utf-8")
        outputs = {}
        engines = [("plain", "local", 1), (f"local_{workers}", "local", workers)]
        if installed("ray"):
            engines.append((f"ray_{workers}", "ray", workers))
        else:
            report["ray"] = "not installed: pip install 'kao[ray]'"
        for name, engine, count in engines:
            outputs[name] = Path(folder) / f"{name}.jsonl"
            command = [sys.executable, "-m", "kao", task, str(listing), "--engine", engine]
            command += ["--results", str(outputs[name]), "--workers", str(count)]
            try:
                report["runs"][name] = _timed(command, outputs[name], len(photos))
            except RuntimeError as error:  # reported, and the other runs still done
                report["runs"][name] = {"error": str(error)}
                del outputs[name]
        records = [list(read_records(path)) for path in outputs.values()]
    report["identical"] = all(other == records[0] for other in records[1:])
    report["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    names = [name for name, _, _ in engines]
    for key, (base, other) in (("speedup", names[:2]), ("ray_vs_local", names[1:3])):
        if other in report["runs"]:
            first, second = report["runs"][base], report["runs"][other]
            report[key] = _ratio(second.get("images_per_s"), first.get("images_per_s"))
            steady = (second.get("steady_images_per_s"), first.get("steady_images_per_s"))
            report[f"steady_{key}"] = _ratio(*steady)
    return report


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    """numerator / denominator to 2 decimals, None when either is missing."""
    return round(numerator / denominator, 2) if numerator and denominator else None


def _timed(command: list[str], results: Path, images: int) -> dict[str, Any]:
    """Run `command` (which writes the records of `images` photos to `results`, JSON Lines):
    its wall clock, memory, and images/s from its first record on (`steady_images_per_s`:
    start-up and model loading left out)."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in {"KAO_THREADS", "RAY_ADDRESS"}  # Ray: a Ray started for the run
    }
    start = time.perf_counter()
    process = subprocess.Popen(
        command, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    memory: list[float] = []
    first: list[tuple[float, int]] = []  # (seconds, records) when the first records were seen
    finished = threading.Event()

    def sample() -> None:
        while not finished.wait(SAMPLE_SECONDS):
            memory.append(tree_rss_mib(process.pid))
            if not first and results.exists() and results.stat().st_size:
                first.append((time.perf_counter(), results.read_bytes().count(b"\n")))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, errors = process.communicate()
    seconds = time.perf_counter() - start
    finished.set()
    sampler.join()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({process.returncode}): {errors[-600:]}")
    quarter = max(1, len(memory) // 4)
    end = start + seconds
    steady = (images - first[0][1]) / (end - first[0][0]) if first else None
    return {
        "seconds": round(seconds, 1),
        "images_per_s": round(images / seconds, 2),
        "steady_images_per_s": None if steady is None else round(steady, 2),
        "rss_mib": {
            "peak": round(max(memory, default=0.0), 1),
            "second_quarter_median": round(
                statistics.median(memory[quarter : 2 * quarter] or [0.0]), 1
            ),
            "last_quarter_median": round(statistics.median(memory[-quarter:] or [0.0]), 1),
        },
        "load_average_after": round(os.getloadavg()[0], 2),
    }
