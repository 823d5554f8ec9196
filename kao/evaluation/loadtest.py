"""A bounded load test of `kao serve` on this machine: a real server process with N workers on
127.0.0.1, client threads sending real photos for a fixed time, latencies, throughput and the
server's memory over the run.

Traffic goes only to 127.0.0.1; every loop stops at its deadline (and at `max_requests`)."""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kao.errors import KaoError

Request = Callable[[Any], Any]
"""Sends one request with an httpx.Client and returns its response."""


@dataclass
class Phase:
    """Latencies (seconds) and failures of one endpoint under load."""

    name: str
    seconds: float
    latencies: list[float] = field(default_factory=list)
    failures: int = 0

    def report(self) -> dict[str, Any]:
        ordered = sorted(self.latencies) or [float("nan")]
        return {
            "requests": len(self.latencies),
            "failures": self.failures,
            "requests_per_s": round(len(self.latencies) / self.seconds, 1),
            "p50_ms": round(1000 * statistics.median(ordered), 1),
            "p99_ms": round(1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 1),
        }


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def tree_rss_mib(pid: int) -> float:
    """Resident memory (MiB) of process `pid` and all its descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        todo += children.get(current, [])
        try:
            status = Path(f"/proc/{current}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024


class Server:
    """A real `kao serve` on 127.0.0.1 and a free port with database `db` and extra
    command-line `options`, its output in `log`, extra environment `env`. Started on enter
    (returns once /health answers, within 120 s), stopped on exit (SIGINT, then SIGKILL to its
    process group: the server and the workers it started)."""

    def __init__(
        self, db: str, log: Path, *options: str, env: dict[str, str] | None = None
    ) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.command = [sys.executable, "-m", "kao", "serve", "--host", "127.0.0.1"]
        self.command += ["--port", str(self.port), "--db", db, *options]
        self.log = log
        self.env = {**os.environ, **(env or {})}

    def __enter__(self) -> Server:
        import httpx

        self._log = self.log.open("wb")
        self.process = subprocess.Popen(
            self.command,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=self.env,
            start_new_session=True,
        )
        deadline = time.monotonic() + 120
        with httpx.Client(base_url=self.base, timeout=10, trust_env=False) as client:
            while True:
                if self.process.poll() is not None:
                    self.__exit__()
                    raise KaoError(f"kao serve exited: {self.log.read_text()[-2000:]}")
                try:
                    if client.get("/health").status_code == 200:
                        return self
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    self.__exit__()
                    raise KaoError(f"kao serve did not start within 120 s; see {self.log}")
                time.sleep(0.2)

    def __exit__(self, *_: object) -> None:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self._log.close()


def hammer(
    base: str,
    name: str,
    send: Request,
    seconds: float,
    clients: int,
    max_requests: int,
    on_tick: Callable[[], None] | None = None,
) -> Phase:
    """`clients` threads each sending `send` requests back to back to `base` for `seconds`
    (and `max_requests` in all at most); `on_tick` runs about once a second meanwhile."""
    import httpx

    phase = Phase(name, seconds)
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client_loop() -> None:
        with httpx.Client(base_url=base, timeout=60, trust_env=False) as client:
            while time.monotonic() < deadline:
                with lock:
                    if len(phase.latencies) + phase.failures >= max_requests:
                        return
                start = time.perf_counter()
                try:
                    ok = send(client).status_code == 200
                except httpx.HTTPError:
                    ok = False
                with lock:
                    if ok:
                        phase.latencies.append(time.perf_counter() - start)
                    else:
                        phase.failures += 1

    threads = [threading.Thread(target=client_loop) for _ in range(clients)]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        if on_tick is not None:
            on_tick()
        time.sleep(1.0)
    for thread in threads:
        thread.join()
    return phase
