"""`--engine ray` on a real Ray cluster started here: a head node and a second node on this
machine (`ray start --head`, `ray start --address`), jobs submitted with `--address` (or
`RAY_ADDRESS`): the records of the local engine with a bad file among the photos, a worker
process killed mid-job and the job still completing, a killed job resumed."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kao.errors import KaoError
from kao.extras import MissingExtraError, installed
from kao.jobs import Task, engine, read_records, run
from kao.jobs.ray_engine import RayEngine
from tests.conftest import LFW, WIDER, shared_file

pytestmark = pytest.mark.skipif(not installed("ray"), reason="ray is not installed (kao[ray])")

RAY = Path(sys.executable).with_name("ray")
"""The `ray` command of this environment."""
STARTS = 3
"""Tries of each `ray start`: on a machine whose cores are taken, a node's agents can miss
Ray's start-up deadline (the raylet then exits, "timed out during startup")."""


@dataclass(frozen=True)
class Cluster:
    """A Ray cluster of this test module: its address, its nodes' temporary folder, and the
    environment its drivers need (its authentication token)."""

    address: str
    root: Path
    environment: dict[str, str]


def processes() -> dict[int, tuple[int, bytes]]:
    """Every process of this machine: pid -> (parent pid, command line) (Linux /proc)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                found[int(entry.name)] = (parent, (entry / "cmdline").read_bytes())
            except (OSError, IndexError):
                continue
    return found


def cluster_processes(root: Path) -> set[int]:
    """The processes of the cluster whose nodes keep their files under `root`, with every
    process they started (workers and agents rename themselves `ray::...`)."""
    table = processes()
    ours = {pid for pid, (_, command) in table.items() if str(root).encode() in command}
    grown = True
    while grown:
        children = {pid for pid, (parent, _) in table.items() if parent in ours} - ours
        ours |= children
        grown = bool(children)
    return ours - {os.getpid()}


ACTOR = b"ray::MapWorker(MapBatches(KaoBatches))"
"""How the Ray Data actor processes of kao's `map_batches` title themselves."""


def kao_workers(root: Path) -> dict[int, int]:
    """The actor processes (`ACTOR`) of the cluster under `root`: pid -> its raylet."""
    table = processes()
    return {
        pid: table[pid][0]
        for pid in cluster_processes(root)
        if pid in table and table[pid][1].startswith(ACTOR)
    }


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """Two Ray nodes of one CPU and 100 MB of object store each, token authentication on;
    every process of theirs is killed at the end (`ray stop` would stop any Ray here)."""
    root = Path(tempfile.mkdtemp(prefix="kao-ray-", dir="/tmp"))  # short: socket paths
    environment = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    environment.pop("RAY_ADDRESS", None)
    address = f"127.0.0.1:{free_port()}"
    common = ["--node-ip-address=127.0.0.1", "--num-cpus=1", "--object-store-memory=100000000"]
    common += ["--disable-usage-stats"]
    nodes = [
        ["--head", f"--port={address.split(':')[1]}", "--include-dashboard=false"],
        [f"--address={address}"],
    ]
    try:
        for index, node in enumerate(nodes):
            folder = root / f"node{index}"
            command = [str(RAY), "start", *node, *common, f"--temp-dir={folder}"]
            for _ in range(STARTS):
                started = subprocess.run(command, env=environment, capture_output=True, timeout=120)
                if started.returncode == 0:
                    break
                stop(folder)  # what the failed start left, its port included
            else:
                pytest.fail(f"ray start failed {STARTS} times: {started.stderr[-3000:]!r}")
        yield Cluster(address, root, environment)
    finally:
        stop(root)
        shutil.rmtree(root, ignore_errors=True)


def stop(folder: Path) -> None:
    """SIGKILL every process of the Ray nodes keeping their files under `folder` (see
    `cluster_processes`), and wait (10 s at most) until they are gone."""
    for pid in cluster_processes(folder):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while cluster_processes(folder) and time.monotonic() < deadline:
        time.sleep(0.2)


def kao(cluster: Cluster, *args: str, address: bool = True) -> subprocess.Popen[str]:
    """`python -m kao ARGS --engine ray --workers 2` started against `cluster` (through
    `--address`, or `RAY_ADDRESS` when not `address`)."""
    environment = dict(cluster.environment)
    command = [sys.executable, "-m", "kao", *args, "--engine", "ray", "--workers", "2"]
    if address:
        command += ["--address", cluster.address]
    else:
        environment["RAY_ADDRESS"] = cluster.address
    return subprocess.Popen(
        command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def listing(folder: Path, photos: list[Path]) -> Path:
    """A list file naming `photos`, one absolute path a line."""
    path = folder / "photos.txt"
    path.write_text("".join(f"{photo}\n" for photo in photos), encoding="utf-8")
    return path


def lfw_photos(count: int) -> list[Path]:
    """The first `count` LFW photos of people whose name starts with B, or skip."""
    if not LFW.is_dir():
        pytest.skip(f"{LFW} is not available")
    return sorted(LFW.glob("B*/*.jpg"))[:count]


def plain(photos: list[Path]) -> list[dict[str, Any]]:
    """`kao detect`'s records of `photos` by the plain loop (the local engine), here."""
    records: list[dict[str, Any]] = []
    run([str(photo) for photo in photos], Task("detect"), records.append)
    return records


def lines(path: Path) -> int:
    """The complete lines of the JSON Lines file at `path` (0 before it exists)."""
    return path.read_bytes().count(b"\n") if path.exists() else 0


def wait_for(condition: Any, job: subprocess.Popen[str], seconds: float = 90) -> None:
    """Poll `condition()` until true; fail if `job` ends or time runs out first."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert job.poll() is None, f"the job ended first: {job.communicate()}"
        assert time.monotonic() < deadline, "condition never met"
        time.sleep(0.05)


def test_a_cluster_job_gives_the_local_records(cluster: Cluster, tmp_path: Path) -> None:
    """Group photos, portraits and a truncated JPEG on two nodes: the records of the local
    engine, in the same order; the bad file recorded with its reason, not fatal."""
    group = shared_file("data/widerface_val_subset/images/0_Parade_Parade_0_194.jpg")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(group.read_bytes()[:2000])
    photos = [*sorted((WIDER / "images").glob("0_Parade_*.jpg"))[:2], broken, *lfw_photos(12)]
    results = tmp_path / "ray.jsonl"
    job = kao(cluster, "detect", str(listing(tmp_path, photos)), "--results", str(results))
    out, errors = job.communicate(timeout=150)
    assert job.returncode == 1, errors  # 1: a file failed
    assert f"{len(photos)} records written (1 failed)" in out
    records = list(read_records(results))
    expected = plain(photos)
    assert records == expected
    assert [r["image"] for r in records] == [str(p) for p in photos]
    assert records[2]["error"] and "error" not in records[0]
    assert sum(len(r.get("faces", [])) for r in records) > len(photos)  # group photos


def test_a_worker_killed_mid_job_and_the_job_completes(cluster: Cluster, tmp_path: Path) -> None:
    """SIGKILL one of the two actor processes (one on each node) mid-job: Ray restarts it and
    retries its blocks; the job ends well with every photo once, the local engine's records."""
    photos = lfw_photos(120)
    results = tmp_path / "ray.jsonl"
    job = kao(cluster, "detect", str(listing(tmp_path, photos)), "--results", str(results))
    wait_for(lambda: lines(results) >= 5, job)
    workers = kao_workers(cluster.root)
    assert len(workers) == 2 and len(set(workers.values())) == 2  # one actor on each node
    victim = min(workers)
    os.kill(victim, signal.SIGKILL)
    assert lines(results) < len(photos)
    wait_for(lambda: set(kao_workers(cluster.root)) - set(workers), job)  # restarted
    out, errors = job.communicate(timeout=150)
    assert job.returncode == 0, errors
    assert f"{len(photos)} records written (0 failed)" in out
    assert list(read_records(results)) == plain(photos)


def test_a_killed_job_resumes(cluster: Cluster, tmp_path: Path) -> None:
    """The driver killed mid-job, then rerun (joining through RAY_ADDRESS): the rerun does only
    what is missing, and the results hold every photo once, the local engine's records."""
    photos = lfw_photos(100)
    results = tmp_path / "ray.jsonl"
    args = ["detect", str(listing(tmp_path, photos)), "--results", str(results)]
    job = kao(cluster, *args)
    wait_for(lambda: lines(results) >= 5, job)
    job.send_signal(signal.SIGKILL)
    job.wait()
    done = lines(results)
    assert 5 <= done < len(photos)
    rerun = kao(cluster, *args, address=False)
    out, errors = rerun.communicate(timeout=150)
    assert rerun.returncode == 0, errors
    written = int(out.split(": ", 1)[1].split()[0])
    assert done <= len(photos) - written <= done + 1  # a torn last line is redone
    assert list(read_records(results)) == plain(photos)


def test_cluster_errors_say_why(
    cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More actors than the cluster's CPUs, GPUs asked of a cluster without any (a fraction per
    actor, or one each with --device cuda), and a task that cannot load on the actors: each a
    KaoError with its reason."""
    photos = [str(photo) for photo in lfw_photos(2)]
    monkeypatch.setenv("RAY_AUTH_MODE", "token")
    monkeypatch.setenv("RAY_AUTH_TOKEN", cluster.environment["RAY_AUTH_TOKEN"])
    with pytest.raises(KaoError, match="--workers 3 needs 3 CPUs; the Ray cluster has 2"):
        run(photos, Task("detect"), print, runner=RayEngine(3, cluster.address))
    with pytest.raises(KaoError, match="--workers 2 needs 1 GPUs; the Ray cluster has 0"):
        run(photos, Task("detect"), print, runner=RayEngine(2, cluster.address, gpus=0.5))
    monkeypatch.setenv("KAO_DEVICE", "cuda")  # --device cuda: one GPU per actor
    with pytest.raises(KaoError, match="--workers 2 needs 2 GPUs; the Ray cluster has 0"):
        run(photos, Task("detect"), print, runner=RayEngine(2, cluster.address))
    monkeypatch.delenv("KAO_DEVICE")
    unknown = Task("embed", {"model": "nobody"})
    with pytest.raises(KaoError, match="unknown recognition model 'nobody'"):
        run(photos, unknown, print, runner=RayEngine(2, cluster.address))


def test_engine_names_and_the_missing_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    assert engine("ray", workers=3, address="10.0.0.5:6379") == RayEngine(3, "10.0.0.5:6379")
    with pytest.raises(KaoError, match="--address is the Ray cluster of --engine ray"):
        engine("local", address="10.0.0.5:6379")
    monkeypatch.setattr("kao.extras.installed", lambda module: module != "ray")
    with pytest.raises(MissingExtraError, match=r"pip install 'kao\[ray\]'"):
        next(RayEngine().map(Task("detect"), []))
