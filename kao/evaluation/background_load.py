"""A process that keeps one core busy while kao is measured (`kao bench ... --background-load`):
servers and laptops always run something else.

The load is a separate Python process spinning a tight arithmetic loop (one thread: pure
Python, no library threads). It is started before the measurement and stopped after it by the
`BackgroundLoad` context manager (which returns once the loop runs), on any exit (an
exception, Ctrl-C); the loop also ends by itself within `CHECK_S` seconds when its parent
process is gone (killed with SIGKILL), so no load outlives a benchmark."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from types import TracebackType
from typing import Any

CHECK_S = 0.5
"""How often the load checks that its parent is alive, seconds."""
LOOP = f"""
import os, sys, time
parent = int(sys.argv[1])
deadline = time.monotonic()
x = 0
print("busy", flush=True)
while True:
    for _ in range(100_000):
        x = (x * 1103515245 + 12345) & 0xFFFFFFFF
    if time.monotonic() >= deadline:
        if os.getppid() != parent:
            break
        deadline = time.monotonic() + {CHECK_S}
"""
"""The load's program: a linear congruential generator in a loop, its parent (whose pid is its
argument, not read at start-up: the parent may die first) checked every `CHECK_S` seconds (a
dead parent's child is re-parented, so getppid changes)."""


class BackgroundLoad:
    """`with BackgroundLoad() as load:` runs the busy loop for the body's duration (nothing
    with `enabled=False`); `load.report()` afterwards: {"processes": 1 (0 when not enabled),
    "seconds": wall seconds it ran, "cpu_seconds": CPU seconds it used (from the OS's
    accounting of the reaped child), "busy_cores": cpu_seconds / seconds, about 1.0 when it
    held a core}."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.process: subprocess.Popen[bytes] | None = None
        self._started = 0.0
        self._seconds = 0.0
        self._cpu_seconds = 0.0

    def __enter__(self) -> BackgroundLoad:
        if self.enabled:
            self.process = subprocess.Popen(
                [sys.executable, "-c", LOOP, str(os.getpid())],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                env={**os.environ, "OMP_NUM_THREADS": "1"},
            )
            assert self.process.stdout is not None
            self.process.stdout.readline()  # its loop has started: the core is busy from here
            self._started = time.monotonic()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """Kill the load and reap it, recording its wall and CPU seconds (idempotent)."""
        if self.process is None or self.process.returncode is not None:
            return
        self.process.kill()
        if self.process.stdout is not None:
            self.process.stdout.close()
        if hasattr(os, "wait4"):
            _, status, usage = os.wait4(self.process.pid, 0)
            self.process.returncode = os.waitstatus_to_exitcode(status)
            self._cpu_seconds = usage.ru_utime + usage.ru_stime
        else:  # no per-child accounting (Windows): CPU time unknown
            self.process.wait()
            self._cpu_seconds = float("nan")
        self._seconds = time.monotonic() - self._started

    def report(self) -> dict[str, Any]:
        """What the load did (see the class); {"processes": 0} when it was not enabled."""
        if not self.enabled:
            return {"processes": 0}
        busy = self._cpu_seconds / self._seconds if self._seconds else 0.0
        return {
            "processes": 1,
            "seconds": round(self._seconds, 2),
            "cpu_seconds": round(self._cpu_seconds, 2),
            "busy_cores": round(busy, 2),
        }
