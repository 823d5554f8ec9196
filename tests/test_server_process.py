"""A real `kao serve` process against clients that hold connections open without finishing a
request, and against large uploads that run past the request timeout; `kao serve`'s start-up
line."""

from __future__ import annotations

import io
import os
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image

from kao.cli import main
from kao.evaluation.loadtest import Server
from kao.server.connections import HeadTimeoutProtocol
from kao.server.settings import ENV, Settings
from tests.conftest import shared_file

httpx = pytest.importorskip("httpx")

GROUP = "data/widerface_val_subset/images/0_Parade_Parade_0_194.jpg"  # 5 faces, 416 x 416


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of process `pid`, all its threads, in seconds (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def closed(sock: socket.socket, wait: float) -> bool:
    """Whether the server has closed `sock` within `wait` seconds (end of stream or reset)."""
    sock.settimeout(wait)
    try:
        return sock.recv(1024) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_unfinished_request_heads_are_closed(tmp_path: Path) -> None:
    """60 connections send half a request head to a server capped at 30: the oldest make way
    for the newer ones at once, a normal request is answered while the others are open, and
    those are closed after --header-timeout."""
    options = ("--header-timeout", "3", "--max-connections", "30", "--no-analysis")
    with Server(str(tmp_path / "faces.db"), tmp_path / "serve.log", *options) as server:
        port = int(server.base.rsplit(":", 1)[1])
        idle = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(60)]
        try:
            for sock in idle:
                sock.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            opened = time.monotonic()
            assert all(closed(sock, 2) for sock in idle[:30])  # made way for the newer ones
            with httpx.Client(base_url=server.base, timeout=5, trust_env=False) as client:
                assert client.get("/health").status_code == 200
            assert not any(closed(sock, 0.01) for sock in idle[-25:])  # not yet
            assert all(closed(sock, 8) for sock in idle[30:])  # after the head timeout
            assert 2.5 < time.monotonic() - opened < 9
        finally:
            for sock in idle:
                sock.close()


def test_timed_out_uploads_stop_computing(tmp_path: Path) -> None:
    """Four group requests of 16 large photos each, --timeout 1, one thread: all answer 503
    within seconds, and then the server's CPU goes quiet (without the stop it would work on
    for tens of seconds)."""
    stream = io.BytesIO()
    large = Image.open(shared_file(GROUP)).convert("RGB").resize((1600, 1600))
    large.save(stream, "JPEG", quality=80)
    images = [("images", (f"{i}.jpg", stream.getvalue(), "image/jpeg")) for i in range(16)]
    options = ("--timeout", "1", "--threads", "1", "--no-analysis")
    with (
        Server(str(tmp_path / "faces.db"), tmp_path / "serve.log", *options) as server,
        httpx.Client(base_url=server.base, timeout=30, trust_env=False) as client,
    ):

        def send(_: int) -> int:
            return client.post("/v1/group", files=images).status_code

        start = time.monotonic()
        with ThreadPoolExecutor(4) as pool:
            statuses = list(pool.map(send, range(4)))
        assert statuses == [503] * 4 and time.monotonic() - start < 10
        time.sleep(2.0)  # at most one image's work may still finish
        before = cpu_seconds(server.process.pid)
        time.sleep(2.0)
        assert cpu_seconds(server.process.pid) - before < 0.5
        health = client.get("/health")
        assert health.status_code == 200 and health.elapsed.total_seconds() < 1


def test_serve_start_line_hides_the_password(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import uvicorn

    calls: list[dict] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: calls.append(options))
    monkeypatch.setenv(ENV, "")  # restored after the test: kao serve sets it for its workers
    keywords = "host=127.0.0.1 user=kao password=s3cret-pass dbname=faces"  # libpq's form
    assert main(["serve", "--db", keywords]) == 0
    assert "password=*** dbname=faces" in capsys.readouterr().err
    url = "postgresql://kao:s3cret-pass@127.0.0.1:5432/faces"
    options = ["--header-timeout", "3", "--max-connections", "50", "--allowed-hosts", "a.example"]
    assert main(["serve", "--db", url, *options]) == 0
    line = capsys.readouterr().err
    assert "s3cret-pass" not in line and "postgresql://kao:***@127.0.0.1:5432/faces" in line
    given = calls[-1]
    assert given["http"] is HeadTimeoutProtocol and given["limit_concurrency"] == 50
    assert given["timeout_keep_alive"] == 5
    workers = Settings.from_env()  # what each worker process reads
    assert workers.header_timeout == 3 and workers.allowed_hosts == ("a.example",)
