"""Engines: what runs a task over a stream of images. One interface (`Engine.map`), two
implementations: `LocalEngine`, a pool of processes on this machine, and
`kao.jobs.ray_engine.RayEngine`, Ray Data's `map_batches` on a pool of actors, on this machine
or a cluster."""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Protocol

from kao.errors import KaoError
from kao.jobs.tasks import Item, Loadable, LoadedTask, process_item

ENGINES = ("local", "ray")
"""The names `--engine` accepts."""


class Engine(Protocol):
    """Runs a task over items."""

    def map(self, task: Loadable, items: Iterable[Item]) -> Iterator[dict[str, Any]]:
        """The record of each item (see `process_item`), in the items' order, each yielded as
        soon as it and those before it are done."""
        ...


@dataclass(frozen=True)
class LocalEngine:
    """`workers` processes on this machine (1: the plain loop, in this process). Each worker
    loads the task once, with `KAO_THREADS` set to its share of the cores (unless set); at most
    `ahead` images per worker are in flight, so memory stays flat however many images."""

    workers: int = 1
    ahead: int = 2

    def map(self, task: Loadable, items: Iterable[Item]) -> Iterator[dict[str, Any]]:
        """See `Engine.map`."""
        if self.workers <= 1:
            process = task.load()
            for item in items:
                yield process_item(item, process)
            return
        threads = os.environ.get("KAO_THREADS") or str(
            max(1, (os.cpu_count() or 1) // self.workers)
        )
        pool = ProcessPoolExecutor(
            self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start,
            initargs=(task, threads),
        )
        pending: deque[Future[dict[str, Any]]] = deque()
        try:
            for item in items:
                pending.append(pool.submit(_work, item))
                if len(pending) >= self.workers * self.ahead:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        except BrokenProcessPool as error:
            raise KaoError(f"a worker process died ({error}); rerun to resume") from None
        finally:
            for future in pending:
                future.cancel()
            pool.shutdown(wait=True, cancel_futures=True)


def engine(name: str = "local", *, workers: int = 1, address: str | None = None) -> Engine:
    """The engine called `name` (one of `ENGINES`) with `workers` processes (local) or actors
    of one CPU (ray; one GPU each too when `KAO_DEVICE` is cuda); `address`: the Ray cluster
    to join (ray only; default `RAY_ADDRESS`, else a Ray started for the job)."""
    if name not in ENGINES:
        raise KaoError(f"unknown engine {name!r}; choose one of {', '.join(ENGINES)}")
    if workers < 1:
        raise KaoError(f"--workers must be at least 1, got {workers}")
    if name == "ray":
        from kao.jobs.ray_engine import RayEngine

        return RayEngine(workers, address)
    if address is not None:
        raise KaoError("--address is the Ray cluster of --engine ray")
    return LocalEngine(workers)


_loaded: LoadedTask | None = None
"""The task loaded in this worker process (set by `_start`)."""


def _start(task: Loadable, threads: str) -> None:
    """Worker initializer: load the task once (`LoadedTask`)."""
    global _loaded
    os.environ.setdefault("KAO_THREADS", threads)
    _loaded = LoadedTask(task)


def _work(item: Item) -> dict[str, Any]:
    """One item's record, in a worker."""
    assert _loaded is not None, "worker not started"
    return _loaded.process(item)
