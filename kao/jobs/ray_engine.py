"""The Ray engine (`--engine ray`): a task run by Ray actors, on this machine or a cluster.

Each actor loads the task once (its models) and processes one image per call; the driver keeps
at most `ahead` calls per actor in flight and yields the records in input order, so the
records are those of the plain loop and a results file resumes the same way. An actor whose
process dies is restarted by Ray (its models loaded again) and its calls retried, so the job
completes with every image done once in the results. Actor processes are titled
`ray::KaoWorker` (`ps`).

Plain actors rather than Ray Data's `map_batches`: the work is one call per image whose
record must come back in input order, a bounded number of images in flight (Ray Data bounds
its object store bytes, not images, and wants the inputs as a dataset built up front), and
nothing more than the `ray` package (Ray Data adds pandas and its own executor).
`ray.util.ActorPool` would do, but gives each actor one call at a time, idle for each round
trip.

Every node must have kao (same version) and its models (`kao models download`, or
`KAO_MODELS` naming a shared folder) installed, and see the images under the same paths."""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from kao.errors import KaoError
from kao.extras import require
from kao.jobs.tasks import Item, Loadable, LoadedTask

ADDRESS_VARIABLE = "RAY_ADDRESS"
"""The environment variable naming the cluster to join when `--address` is not given."""
PASSED = ("KAO_THREADS", "KAO_DEVICE", "KAO_MODELS", "KAO_OFFLINE")
"""The driver's environment variables that its actors get (unless their node's `ray start`
had them): threads, device, where the model files are."""


@dataclass(frozen=True)
class RayEngine:
    """`workers` Ray actors of `cpus` CPUs each (ONNX Runtime on that many threads, unless
    `KAO_THREADS` is set; see `PASSED`), on the cluster at `address` (else `RAY_ADDRESS`, else
    a Ray started here for this job and stopped after it); at most `ahead` images per actor in
    flight, so memory stays flat however many images."""

    workers: int = 1
    address: str | None = None
    ahead: int = 2
    cpus: float = 1.0

    def map(self, task: Loadable, items: Iterable[Item]) -> Iterator[dict[str, Any]]:
        """See `kao.jobs.Engine.map`."""
        require("ray", "--engine ray", "ray")
        import ray
        from ray.exceptions import RayError, RayTaskError

        self._connect(ray)
        try:
            settings = {"KAO_THREADS": str(max(1, int(self.cpus)))}
            settings.update({name: os.environ[name] for name in PASSED if name in os.environ})
            remote = ray.remote(num_cpus=self.cpus, max_restarts=-1, max_task_retries=-1)
            actors = [remote(KaoWorker).remote(task, settings) for _ in range(self.workers)]
            busy = [0] * self.workers  # calls of each actor whose record is not yet yielded
            pending: deque[tuple[Any, int]] = deque()  # (the call's result, its actor)

            def oldest() -> dict[str, Any]:
                result, actor = pending.popleft()
                busy[actor] -= 1
                try:
                    return ray.get(result)
                except RayTaskError as error:
                    if isinstance(error.cause, KaoError):
                        raise KaoError(str(error.cause)) from None
                    raise
                except RayError as error:
                    raise KaoError(f"the Ray job failed ({error}); rerun to resume") from None

            for item in items:
                if len(pending) >= self.workers * self.ahead:
                    yield oldest()
                actor = busy.index(min(busy))
                pending.append((actors[actor].process.remote(item), actor))
                busy[actor] += 1
            while pending:
                yield oldest()
        finally:
            ray.shutdown()

    def _connect(self, ray: Any) -> None:
        """Join the cluster at `address` or `RAY_ADDRESS`, or start Ray here with enough CPUs
        for the actors; KaoError when Ray cannot be joined or started, or has fewer CPUs than
        the actors need."""
        address = self.address or os.environ.get(ADDRESS_VARIABLE)
        quiet = {"logging_level": logging.WARNING, "log_to_driver": False}
        if address:
            try:
                ray.init(address=address, **quiet)
            except ConnectionError as error:
                raise KaoError(f"cannot join the Ray cluster at {address}: {error}") from None
        else:
            cpus = max(os.cpu_count() or 1, int(self.workers * self.cpus + 0.999))
            try:
                ray.init(address="local", num_cpus=cpus, include_dashboard=False, **quiet)
            except Exception as error:  # Ray raises a bare Exception when its processes fail
                raise KaoError(f"Ray did not start on this machine: {error}") from None
        available = ray.cluster_resources().get("CPU", 0)
        if self.workers * self.cpus > available:
            ray.shutdown()
            raise KaoError(
                f"--workers {self.workers} needs {self.workers * self.cpus:g} CPUs; the Ray "
                f"cluster has {available:g}"
            )


class KaoWorker(LoadedTask):
    """A Ray actor (see `RayEngine`): the task loaded once (`LoadedTask`) with the environment
    variables of `settings` that the node does not set."""

    def __init__(self, task: Loadable, settings: dict[str, str]) -> None:
        for name, value in settings.items():
            os.environ.setdefault(name, value)
        super().__init__(task)
