"""A real `kao serve` process for the tests that need one (browser tests, several workers)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def kao_serve(
    folder: Path, *options: str, db: str | None = None, env: dict[str, str] | None = None
) -> Iterator[str]:
    """A real `kao serve` on 127.0.0.1 and a free port, with database `db` (default: a new
    SQLite file in `folder`) and extra command-line `options`; its log is `folder`/serve.log.
    Yields its base URL once /health answers; stops it afterwards (SIGINT, then SIGKILL to its
    process group: the server and the workers it started)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "kao", "serve", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--db", db or str(folder / "faces.db"), *options]
    log_path = folder / "serve.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            command,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
        try:
            with httpx.Client(base_url=base, timeout=10, trust_env=False) as client:
                deadline = time.monotonic() + 90
                while True:
                    assert server.poll() is None, log_path.read_text()
                    try:
                        if client.get("/health").status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    assert time.monotonic() < deadline, "kao serve did not start within 90 s"
                    time.sleep(0.2)
            yield base
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
