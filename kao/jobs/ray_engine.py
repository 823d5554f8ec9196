"""The Ray engine (`--engine ray`): a task run by Ray Data on this machine or a cluster.

The images become a dataset of small blocks (`ray.data.from_items`, `batch_size` images a
block) streamed through `map_batches` on a fixed pool of actors (`ActorPoolStrategy`): each
actor loads the task once (its models, `KaoBatches`) and turns each block into its records.
The driver reads the records back block by block as they are done (`iter_batches`), in input
order (`preserve_order`), so the records are those of the plain loop and a results file
resumes the same way. An actor whose process dies is restarted by Ray (its models loaded
again) and its blocks retried, so the job completes with every image done once in the results.
Actor processes are titled `ray::MapWorker(MapBatches(KaoBatches))` (`ps`).

Every node must have kao (same version, with kao[ray]) and its models (`kao models download`,
or `KAO_MODELS` naming a shared folder) installed, and see the images under the same paths."""

from __future__ import annotations

import logging
import math
import os
import pickle
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from kao.errors import KaoError
from kao.extras import require
from kao.jobs.tasks import Item, Loadable, LoadedTask

ADDRESS_VARIABLE = "RAY_ADDRESS"
"""The environment variable naming the cluster to join when `--address` is not given."""
PASSED = ("KAO_THREADS", "KAO_DEVICE", "KAO_MODELS", "KAO_OFFLINE")
"""The driver's environment variables that its actors get (unless their node's `ray start`
had them): threads, device, where the model files are."""
MAX_BLOCKS = 10_000
"""At most this many blocks a job: past `MAX_BLOCKS * batch_size` images the blocks grow, so
that a million-image job is not a million tasks (each block is one task and one object)."""


@dataclass(frozen=True)
class RayEngine:
    """`workers` Ray actors of `cpus` CPUs (ONNX Runtime on that many threads, unless
    `KAO_THREADS` is set; see `PASSED`) and `gpus` GPUs each (None: 1 when `KAO_DEVICE` is
    cuda, else 0; a fraction shares a GPU between actors), on the cluster at `address` (else
    `RAY_ADDRESS`, else a Ray started here for this job and stopped after it). Images go to
    the actors `batch_size` at a time (a block: the unit of streaming, ordering and retry)."""

    workers: int = 1
    address: str | None = None
    cpus: float = 1.0
    gpus: float | None = None
    batch_size: int = 8

    def map(self, task: Loadable, items: Iterable[Item]) -> Iterator[dict[str, Any]]:
        """See `kao.jobs.Engine.map`."""
        require("ray", "--engine ray", "ray")
        require("pandas", "--engine ray", "ray")  # Ray Data's dependency
        import ray
        import ray.data
        from ray.exceptions import RayError

        rows = [{"item": pickle.dumps(item)} for item in items]
        if not rows:
            return
        _quiet(logging.getLogger("ray.data"))
        self._connect(ray)
        try:
            context = ray.data.DataContext.get_current()
            context.execution_options.preserve_order = True
            context.enable_progress_bars = False
            context.print_on_execution_start = False
            size = max(self.batch_size, math.ceil(len(rows) / MAX_BLOCKS))
            records = ray.data.from_items(
                rows, override_num_blocks=math.ceil(len(rows) / size)
            ).map_batches(
                KaoBatches,
                fn_constructor_args=(task, self._settings()),
                batch_size=size,
                batch_format="numpy",
                compute=ray.data.ActorPoolStrategy(size=self.workers),
                num_cpus=self.cpus,
                num_gpus=self._gpus(),
            )
            try:
                for batch in records.iter_batches(batch_size=None, batch_format="numpy"):
                    for record in batch["record"]:
                        value = pickle.loads(record)
                        if isinstance(value, KaoError):
                            raise value
                        yield value
            except RayError as error:
                raise KaoError(f"the Ray job failed ({error}); rerun to resume") from None
        finally:
            ray.shutdown()

    def _settings(self) -> dict[str, str]:
        """The environment variables of the actors (see `PASSED`)."""
        settings = {"KAO_THREADS": str(max(1, int(self.cpus)))}
        settings.update({name: os.environ[name] for name in PASSED if name in os.environ})
        return settings

    def _gpus(self) -> float:
        """GPUs per actor: `gpus`, else 1 when `KAO_DEVICE` is cuda, else 0."""
        if self.gpus is not None:
            return self.gpus
        return 1.0 if os.environ.get("KAO_DEVICE") == "cuda" else 0.0

    def _connect(self, ray: Any) -> None:
        """Join the cluster at `address` or `RAY_ADDRESS`, or start Ray here with enough CPUs
        for the actors; KaoError when Ray cannot be joined or started, or has fewer CPUs or
        GPUs than the actors need."""
        address = self.address or os.environ.get(ADDRESS_VARIABLE)
        quiet = {"logging_level": logging.WARNING, "log_to_driver": False}
        if address:
            try:
                ray.init(address=address, **quiet)
            except ConnectionError as error:
                raise KaoError(f"cannot join the Ray cluster at {address}: {error}") from None
        else:
            cpus = max(os.cpu_count() or 1, math.ceil(self.workers * self.cpus))
            try:
                ray.init(address="local", num_cpus=cpus, include_dashboard=False, **quiet)
            except Exception as error:  # Ray raises a bare Exception when its processes fail
                raise KaoError(f"Ray did not start on this machine: {error}") from None
        available = ray.cluster_resources()
        for resource, flag, each in (("CPU", "CPUs", self.cpus), ("GPU", "GPUs", self._gpus())):
            needed, has = self.workers * each, available.get(resource, 0)
            if needed > has:
                ray.shutdown()
                raise KaoError(
                    f"--workers {self.workers} needs {needed:g} {flag}; the Ray cluster has {has:g}"
                )


class KaoBatches:
    """The `map_batches` class of an actor (see `RayEngine`): the task loaded once
    (`LoadedTask`) with the environment variables of `settings` that the node does not set;
    a batch {"item": pickled `Item`s} -> {"record": their pickled records}, in order (a KaoError
    in their place when the task did not load)."""

    def __init__(self, task: Loadable, settings: dict[str, str]) -> None:
        for name, value in settings.items():
            os.environ.setdefault(name, value)
        self.loaded = LoadedTask(task)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        records = []
        for item in batch["item"]:
            try:
                records.append(pickle.dumps(self.loaded.process(pickle.loads(item))))
            except KaoError as error:  # the task did not load: the driver raises it
                records.append(pickle.dumps(KaoError(str(error))))
        return {"record": np.array(records, dtype=object)}


def _quiet(logger: logging.Logger) -> None:
    """No Ray Data messages on the console (its log file keeps them all): kao reports what
    failed."""
    for handler in logger.handlers:
        if not isinstance(handler, logging.FileHandler):
            handler.setLevel(logging.CRITICAL)
