"""A bounded load test of `kao serve` on this machine: a real server process with N workers on
127.0.0.1, client threads sending real photos for a fixed time, latencies, throughput and the
server's memory over the run; and a mixed load (`mixed`): good requests among bad, face-less and
oversized uploads and connections left idle.

`serve_load` is `kao bench serve`: a server, a detect phase, an identify phase and optionally
the mixed phase, measured and reported.

Traffic goes only to 127.0.0.1; every loop stops at its deadline (and at `max_requests`)."""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import cv2

from kao.errors import KaoError
from kao.image import find_images, load_image

MIXED_MEMORY_CEILING_MIB = 2048
"""Default memory ceiling of the mixed phase: 2 workers and their uploads."""

Request = Callable[[Any], Any]
"""Sends one request with an httpx.Client and returns its response."""


@dataclass
class Phase:
    """Latencies (seconds) of the answered requests (HTTP 200) of one endpoint under load, and
    the others by status ("transport" for no answer)."""

    name: str
    seconds: float
    latencies: list[float] = field(default_factory=list)
    failed: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def failures(self) -> int:
        return sum(self.failed.values())

    def record(self, status: int | None, seconds: float) -> int:
        """Count one request (its status, None for no answer); returns the requests so far."""
        with self.lock:
            if status == 200:
                self.latencies.append(seconds)
            else:
                self.failed["transport" if status is None else str(status)] += 1
            return len(self.latencies) + self.failures

    def report(self) -> dict[str, Any]:
        ordered = sorted(self.latencies) or [float("nan")]
        return {
            "requests": len(self.latencies),
            "failures": self.failures,
            **({"failed_by_status": dict(sorted(self.failed.items()))} if self.failed else {}),
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
    phase = Phase(name, seconds)
    deadline = time.monotonic() + seconds
    loop = partial(_client_loop, base, send, deadline, max_requests, phase.record)
    _run_threads([loop] * clients, on_tick)
    return phase


def _client_loop(
    base: str,
    send: Request,
    deadline: float,
    max_requests: int,
    record: Callable[[int | None, float], int],
) -> None:
    """One client thread: `send` requests back to back to `base` on one connection until
    `deadline`, or until `record` (given each answer's status, None for no answer, and its
    seconds) says `max_requests` were sent by all the loops that share it."""
    import httpx

    with httpx.Client(base_url=base, timeout=60, trust_env=False) as client:
        while time.monotonic() < deadline:
            start = time.perf_counter()
            try:
                status: int | None = send(client).status_code
            except httpx.HTTPError:
                status = None
            if record(status, time.perf_counter() - start) >= max_requests:
                return


def _run_threads(targets: list[Callable[[], None]], on_tick: Callable[[], None] | None) -> None:
    """Run each of `targets` in a thread until all end; `on_tick` about once a second."""
    threads = [threading.Thread(target=target) for target in targets]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        if on_tick is not None:
            on_tick()
        time.sleep(1.0)
    for thread in threads:
        thread.join()


IDLE_OPENINGS = (
    b"",
    b"POST /v1/detect HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le",
    b"POST /v1/detect HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; "
    b"boundary=x\r\nContent-Length: 100000\r\n\r\n--x\r\n",
)
"""What an idle connection sends before it goes quiet: nothing, half a request head, a whole
head whose body never comes."""


@dataclass
class Idle:
    """Connections held open without finishing a request: how many were opened (or refused),
    how the server ended them (the status it answered, or "closed" without one) and after how
    many seconds."""

    opened: int = 0
    refused: int = 0
    ended: Counter[str] = field(default_factory=Counter)
    lifetimes: list[float] = field(default_factory=list)

    def report(self) -> dict[str, Any]:
        return {
            "opened": self.opened,
            "refused": self.refused,
            "ended_by_server": sum(self.ended.values()),
            "ended_by_status": dict(sorted(self.ended.items())),
            "median_lifetime_s": round(statistics.median(self.lifetimes), 1)
            if self.lifetimes
            else None,
        }


def hold_idle(port: int, count: int, deadline: float, idle: Idle) -> None:
    """Keep `count` connections to 127.0.0.1:`port` open until `deadline`, each having sent one
    of IDLE_OPENINGS in turn; one the server ends is recorded in `idle` and replaced."""
    import select

    held: dict[socket.socket, float] = {}
    try:
        while time.monotonic() < deadline:
            while len(held) < count and time.monotonic() < deadline:
                try:
                    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
                    sock.sendall(IDLE_OPENINGS[idle.opened % len(IDLE_OPENINGS)])
                except OSError:
                    idle.refused += 1
                    time.sleep(0.1)
                    continue
                idle.opened += 1
                held[sock] = time.monotonic()
            readable = select.select(list(held), [], [], 0.5)[0]
            for sock in readable:
                try:
                    answer = sock.recv(64)
                except OSError:
                    answer = b""
                status = answer.split(b" ", 2)[1].decode() if answer.startswith(b"HTTP/") else ""
                idle.ended[status or "closed"] += 1
                idle.lifetimes.append(time.monotonic() - held.pop(sock))
                sock.close()
    finally:
        for sock in held:
            sock.close()


def bad_requests(paths: list[str], max_upload: int) -> list[Request]:
    """Requests a server must answer with a 4xx (or, for a face-less image, a 200): an upload
    of `max_upload` + 1 MiB bytes to each of `paths`, then, in a fixed random order, every file
    of `kao.evaluation.hostile.bad_images` as a multipart upload to each of `paths` and as base64
    JSON to the first."""
    import base64
    import random

    from kao.evaluation.hostile import bad_images

    def upload(path: str, name: str, data: bytes) -> Request:
        return lambda client: client.post(path, files=[("image", (name, data, "image/jpeg"))])

    def encoded(path: str, data: bytes) -> Request:
        return lambda client: client.post(path, json={"image": base64.b64encode(data).decode()})

    samples = bad_images()
    mixed = [upload(p, name, s.data) for name, s in samples.items() for p in paths]
    mixed += [encoded(paths[0], s.data) for s in samples.values()]
    random.Random(15).shuffle(mixed)
    oversized = b"\xff\xd8" + bytes(max_upload + 2**20)
    return [upload(p, "oversized.jpg", oversized) for p in paths] + mixed


def mixed(
    server: Server,
    good: Request,
    bad: list[Request],
    seconds: float,
    clients: tuple[int, int, int],
    memory_ceiling_mib: float,
    max_requests: int,
) -> dict[str, Any]:
    """Good requests (`good`) from clients[0] threads, the `bad` ones in turn from clients[1]
    threads and clients[2] idle connections (`hold_idle`) at once against `server` for
    `seconds` (and `max_requests` of each kind at most), its memory sampled every second.

    The report has the good requests' latencies and failures by status, the bad ones by status
    ("transport": no answer), the idle connections, the memory (MiB: start, max, end against
    `memory_ceiling_mib`) and "problems": a good request not answered 200, a bad one answered
    5xx other than 503 (overload, counted apart) or not at all, memory over the ceiling.
    Traffic goes to 127.0.0.1 only."""
    good_clients, bad_clients, idle_count = clients
    answered = Phase("good", seconds)
    refused = Phase("bad", seconds)
    idle = Idle()
    turn = iter(range(10**12))

    def send_bad(client: Any) -> Any:
        return bad[next(turn) % len(bad)](client)

    memory: list[float] = []
    deadline = time.monotonic() + seconds
    good_loop = partial(_client_loop, server.base, good, deadline, max_requests, answered.record)
    bad_loop = partial(_client_loop, server.base, send_bad, deadline, max_requests, refused.record)
    targets = [good_loop] * good_clients + [bad_loop] * bad_clients
    targets.append(partial(hold_idle, server.port, idle_count, deadline, idle))
    memory.append(tree_rss_mib(server.process.pid))
    _run_threads(targets, lambda: memory.append(tree_rss_mib(server.process.pid)))
    memory.append(tree_rss_mib(server.process.pid))

    by_status = {**refused.failed, **({"200": len(refused.latencies)} if refused.latencies else {})}
    server_errors = {k: n for k, n in by_status.items() if k.startswith("5") and k != "503"}
    problems = []
    if answered.failures or not answered.latencies:
        problems.append(f"good requests not answered 200: {dict(answered.failed)}")
    if server_errors:
        problems.append(f"bad requests answered 5xx: {server_errors}")
    if "transport" in by_status:
        problems.append(f"{by_status['transport']} bad requests got no answer")
    if max(memory) > memory_ceiling_mib:
        problems.append(f"server memory {max(memory):.0f} MiB over {memory_ceiling_mib:.0f}")
    return {
        "seconds": seconds,
        "clients": {"good": good_clients, "bad": bad_clients, "idle_connections": idle_count},
        "good": answered.report(),
        "bad": {
            "requests": sum(by_status.values()),
            "by_status": dict(sorted(by_status.items())),
            "server_errors": sum(server_errors.values()),
            "overloaded_503": by_status.get("503", 0),
            "no_answer": by_status.get("transport", 0),
        },
        "idle": idle.report(),
        "memory_mib": {
            "start": round(memory[0], 1),
            "max": round(max(memory), 1),
            "end": round(memory[-1], 1),
            "ceiling": memory_ceiling_mib,
            "samples": len(memory),
        },
        "problems": problems,
    }


@dataclass(frozen=True)
class Load:
    """The shape of a `serve_load` run: server processes, client threads, phase lengths (s),
    requests per phase at most, and for the mixed phase (none when `mixed_seconds` is 0) the
    bad uploaders, the connections held idle and the server's memory ceiling (MiB)."""

    workers: int = 2
    clients: int = 4
    seconds: int = 300
    identify_seconds: int = 60
    max_requests: int = 200_000
    mixed_seconds: int = 0
    bad_clients: int = 2
    idle_connections: int = 64
    memory_ceiling_mib: int = MIXED_MEMORY_CEILING_MIB


def serve_load(data: Path, faces: Path, load: Load) -> dict[str, Any]:
    """Load-test a real `kao serve --workers N` on 127.0.0.1 (`kao bench serve`): 640 x 480
    JPEGs of the first 20 photos of `data` sent to /v1/detect, then a photo of the first of 20
    persons of the LFW folder `faces` (enrolled first) to /v1/collections/.../identify, then the
    mixed phase when `load.mixed_seconds` > 0 (see `mixed`). The report: requests/s and p50/p99
    latency (ms) per phase, the server's memory (MiB, all its processes, sampled every second)
    and, with the mixed phase, its report under "mixed" (its "problems" empty when it held)."""
    from kao.server.settings import DEFAULT_MAX_UPLOAD

    photos = find_images([data])[:20] if data.is_dir() else []
    people = sorted(p for p in faces.iterdir() if p.is_dir())[:20] if faces.is_dir() else []
    if not photos or not people:
        raise KaoError(f"need photos in {data} and LFW people folders in {faces}")
    jpegs = [
        cv2.imencode(".jpg", cv2.resize(load_image(p), (640, 480))[:, :, ::-1])[1].tobytes()
        for p in photos
    ]
    probe = (people[0] / sorted(os.listdir(people[0]))[0]).read_bytes()
    memory: list[tuple[float, float]] = []
    with (
        tempfile.TemporaryDirectory() as folder,
        Server(
            str(Path(folder) / "load.db"),
            Path(folder) / "serve.log",
            "--workers",
            str(load.workers),
            env={"KAO_THREADS": "1"},  # one ONNX thread per request, workers side by side
        ) as server,
    ):
        start = time.monotonic()

        def sample() -> None:
            memory.append((time.monotonic() - start, tree_rss_mib(server.process.pid)))

        import httpx

        with httpx.Client(base_url=server.base, timeout=60, trust_env=False) as client:
            client.post("/v1/collections", json={"name": "load"}).raise_for_status()
            for person in people:
                photo = (person / sorted(os.listdir(person))[0]).read_bytes()
                files = [("images", ("p.jpg", photo, "image/jpeg"))]
                client.post(
                    "/v1/collections/load/enroll", files=files, data={"person": person.name}
                ).raise_for_status()
        counter = iter(range(10**9))

        def detect(client: Any) -> Any:
            image = jpegs[next(counter) % len(jpegs)]
            return client.post("/v1/detect", files=[("image", ("a.jpg", image, "image/jpeg"))])

        def identify(client: Any) -> Any:
            files = [("image", ("b.jpg", probe, "image/jpeg"))]
            return client.post("/v1/collections/load/identify", files=files)

        sample()
        phases = [
            hammer(
                server.base, "detect", detect, load.seconds, load.clients, load.max_requests, sample
            ),
            hammer(
                server.base,
                "identify",
                identify,
                load.identify_seconds,
                load.clients,
                load.max_requests,
                sample,
            ),
        ]
        if load.mixed_seconds > 0:
            clients = (load.clients, load.bad_clients, load.idle_connections)
            bad = bad_requests(["/v1/detect", "/v1/analyze"], DEFAULT_MAX_UPLOAD)
            under_attack = mixed(
                server,
                detect,
                bad,
                load.mixed_seconds,
                clients,
                load.memory_ceiling_mib,
                load.max_requests,
            )
    detect_memory = [rss for t, rss in memory if t <= load.seconds + 5]
    minute = max(1, len(detect_memory) // max(1, load.seconds // 60))
    report: dict[str, Any] = {
        "workers": load.workers,
        "clients": load.clients,
        "photos": "640x480 JPEG, " + str(len(jpegs)) + " WIDER photos in turn",
        **{phase.name: phase.report() for phase in phases},
        "memory_mib": {
            "start": round(memory[0][1], 1),
            "first_minute_median": round(statistics.median(detect_memory[:minute]), 1),
            "last_minute_median": round(statistics.median(detect_memory[-minute:]), 1),
            "peak": round(max(rss for _, rss in memory), 1),
            "samples": len(memory),
        },
        "machine": {"cpus": os.cpu_count(), "load_average_after": os.getloadavg()[0]},
    }
    if load.mixed_seconds > 0:
        report["mixed"] = under_attack
    return report
