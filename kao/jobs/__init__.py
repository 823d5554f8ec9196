"""Batch jobs: a command's per-image work (`kao.jobs.tasks`) over many images (folders, globs,
list files: `kao.jobs.inputs`), run by an engine (`kao.jobs.engine`: a local process pool), the
records streamed to a sink or to a results file that a rerun resumes (`kao.jobs.results`)."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kao.image import describe
from kao.jobs.engine import ENGINES, Engine, LocalEngine, engine
from kao.jobs.inputs import Job, collect
from kao.jobs.results import open_results, read_records
from kao.jobs.tasks import Given, Item, Loadable, Processor, Task, process_item
from kao.progress import progress

__all__ = [
    "ENGINES",
    "Engine",
    "Given",
    "Item",
    "Job",
    "JobCounts",
    "Loadable",
    "LocalEngine",
    "Processor",
    "Task",
    "collect",
    "engine",
    "open_results",
    "process_item",
    "read_records",
    "run",
    "run_to_results",
]


@dataclass(frozen=True)
class JobCounts:
    """What a run did: `written` records (of which `failed` errors) and `skipped` images
    already in the results."""

    written: int
    failed: int
    skipped: int


def run(
    inputs: list[str],
    task: Loadable,
    sink: Callable[[dict[str, Any]], None],
    *,
    runner: Engine | None = None,
    out: Path | None = None,
    skip: Collection[str] = (),
) -> JobCounts:
    """Run `task` over the images of `inputs` (see `collect`) with `runner` (default: the plain
    loop), handing each record to `sink` as it comes, in input order: first an `{"image",
    "error"}` record per input that could not be expanded, then one per image (see
    `process_item`). Images whose record "image" is in `skip` are not done again; with `out`,
    annotated copies go there under each image's relative path (never overwriting a copy of
    this run: a second one gets "-2" and so on)."""
    jobs, errors = collect(inputs)
    written = failed = 0
    for error in errors:
        if error.source not in skip:
            sink({"image": error.source, "error": error.reason})
            written, failed = written + 1, failed + 1
    todo = [job for job in jobs if describe(job.path) not in skip]
    skipped = len(jobs) - len(todo) + len(errors) - written
    reserved: set[Path] = set()
    items = (Item(job.path, _target(out, job.relative, reserved) if out else None) for job in todo)
    for record in progress((runner or LocalEngine()).map(task, items), total=len(todo)):
        sink(record)
        written, failed = written + 1, failed + ("error" in record)
    return JobCounts(written, failed, skipped)


def run_to_results(
    inputs: list[str],
    task: Task,
    results: Path,
    *,
    runner: Engine | None = None,
    out: Path | None = None,
    on_record: Callable[[dict[str, Any]], None] | None = None,
) -> JobCounts:
    """`run`, each record appended to the results file `results` (.jsonl or .parquet, see
    `kao.jobs.results`) and passed to `on_record`; what the file already holds is skipped."""
    opened = open_results(results, dimension=task.dimension)

    def sink(record: dict[str, Any]) -> None:
        opened.write(record)
        if on_record is not None:
            on_record(record)

    try:
        return run(inputs, task, sink, runner=runner, out=out, skip=opened.done)
    finally:
        opened.close()


def _target(out: Path, relative: Path, reserved: set[Path]) -> Path:
    """Where the annotated copy of an image goes: out/relative (JPEG if the source format
    cannot be written), numbered "-2", "-3", ... past a path already `reserved` (added)."""
    target = out / relative
    if target.suffix.lower() not in {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}:
        target = target.with_suffix(".jpg")
    stem, number = target.stem, 1
    while target in reserved:
        number += 1
        target = target.with_name(f"{stem}-{number}{target.suffix}")
    reserved.add(target)
    return target
