"""Batch jobs (`kao.jobs`, `--results`, `--workers`): JSON Lines and Parquet results, resume
after a killed job or a killed worker, bad files recorded, the pool identical to the plain
loop on real photos."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from kao.cli import main
from kao.errors import KaoError
from kao.extras import MissingExtraError
from kao.jobs import LocalEngine, Task, collect, open_results, read_records, run
from kao.jobs.results import UNFINISHED
from tests.conftest import LFW, WIDER, shared_file

GROUP = "data/widerface_val_subset/images/0_Parade_Parade_0_194.jpg"  # 5 faces


def lfw_photos(count: int) -> list[Path]:
    """The first `count` LFW photos (sorted by person), or skip without the data."""
    if not LFW.is_dir():
        pytest.skip(f"{LFW} is not available")
    return sorted(LFW.glob("A*/*.jpg"))[:count]


def listing(tmp_path: Path, photos: list[Path]) -> Path:
    """A list file naming `photos`, one absolute path a line."""
    path = tmp_path / "photos.txt"
    path.write_text("".join(f"{photo}\n" for photo in photos), encoding="utf-8")
    return path


def plain(inputs: list[str], task: Task) -> list[dict[str, Any]]:
    """The records of the plain loop, in this process."""
    records: list[dict[str, Any]] = []
    run(inputs, task, records.append)
    return records


def start(args: list[str], rows_per_part: int | None = None) -> subprocess.Popen[str]:
    """`kao ARGS` in a subprocess (Parquet parts of `rows_per_part` rows when given)."""
    setup = f"import kao.jobs.results as r; r.ROWS_PER_PART = {rows_per_part}; " * bool(
        rows_per_part
    )
    code = f"{setup}import sys; from kao.cli import main; sys.exit(main({args!r}))"
    return subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_for(condition: Any, process: subprocess.Popen[str], seconds: float = 60) -> None:
    """Poll `condition()` until true; fail if `process` ends or time runs out first."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert process.poll() is None, f"finished before it could be killed: {process.stderr}"
        assert time.monotonic() < deadline, "condition never met"
        time.sleep(0.05)


def workers_of(pid: int) -> list[int]:
    """The pool workers among the children of process `pid` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if parent == pid and b"spawn_main" in command:
                found.append(int(entry.name))
    return found


def test_jsonl_resume_after_the_job_is_killed(tmp_path: Path) -> None:
    """A job killed mid-run, then a torn last line as a kill mid-write leaves: the rerun
    completes with every photo once and the plain loop's records."""
    photos = lfw_photos(40)
    results = tmp_path / "results.jsonl"
    args = ["detect", str(listing(tmp_path, photos)), "--results", str(results)]
    job = start(args)
    wait_for(lambda: results.exists() and results.read_text().count("\n") >= 5, job)
    job.send_signal(signal.SIGKILL)
    job.wait()
    before = results.read_text().count("\n")
    assert 5 <= before < len(photos)
    with results.open("a") as torn:
        torn.write('{"image": "' + str(photos[before]))
    assert main(args) == 0
    records = list(read_records(results))
    assert [r["image"] for r in records] == [str(p) for p in photos]
    assert records == plain([str(p) for p in photos], Task("detect"))


def test_parquet_resume_after_a_worker_is_killed(tmp_path: Path) -> None:
    """A pool worker killed mid-run ends the job with an error naming it; finished parts stay,
    an unfinished part is dropped, and the rerun completes with every photo once."""
    photos = lfw_photos(60)
    results = tmp_path / "results.parquet"
    args = ["embed", str(listing(tmp_path, photos)), "--results", str(results), "--workers", "2"]
    job = start(args, rows_per_part=4)
    wait_for(lambda: len(list(results.glob("part-*.parquet"))) >= 2, job)
    workers = workers_of(job.pid)
    assert len(workers) == 2
    os.kill(workers[0], signal.SIGKILL)
    _, errors = job.communicate(timeout=60)
    assert job.returncode == 1 and "worker process died" in errors
    done = list(read_records(results))
    assert 8 <= len(done) < len(photos)
    (results / ".part-99999.parquet.unfinished").write_bytes(b"PAR1 half a part")
    assert main(args) == 0
    assert not list(results.glob(f".*{UNFINISHED}"))
    records = list(read_records(results))
    assert sorted(r["image"] for r in records) == sorted(str(p) for p in photos)
    assert pq.read_table(results).num_rows == len(photos)  # the folder reads as one table
    reference = {r["image"]: r for r in plain([str(p) for p in photos], Task("embed"))}
    for record in records:
        expected = reference[record["image"]]
        assert len(record["faces"]) == len(expected["faces"])
        for face, truth in zip(record["faces"], expected["faces"], strict=True):
            assert len(face["embedding"]) == 512
            assert face["embedding"] == pytest.approx(truth["embedding"], abs=1e-6)
            assert face["box"] == pytest.approx(truth["box"], abs=1e-4)
            assert face["keypoints"] == truth["keypoints"]


def test_bad_files_are_recorded_not_fatal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    group = shared_file(GROUP)
    (folder / "group.jpg").write_bytes(group.read_bytes())
    (folder / "truncated.jpg").write_bytes(group.read_bytes()[:2000])
    (folder / "notes.png").write_text("hello")
    results = tmp_path / "results.jsonl"
    args = ["detect", str(folder), str(tmp_path / "missing.jpg"), "--results", str(results)]
    assert main(args) == 1
    records = {Path(r["image"]).name: r for r in read_records(results)}
    assert set(records) == {"group.jpg", "truncated.jpg", "notes.png", "missing.jpg"}
    assert len(records["group.jpg"]["faces"]) == 5
    assert all("error" in records[name] for name in ("truncated.jpg", "notes.png", "missing.jpg"))
    assert "4 records written (3 failed), 0 images already there" in capsys.readouterr().out
    assert main(args) == 0  # all recorded: nothing done again
    assert "0 records written (0 failed), 4 images already there" in capsys.readouterr().out
    assert len(results.read_text().splitlines()) == 4


def test_two_workers_give_the_plain_loop_records(tmp_path: Path) -> None:
    """The pool, with annotated copies, on group photos and portraits: the same records, in
    the same order, as the plain loop."""
    photos = [*sorted((WIDER / "images").glob("0_Parade_*.jpg"))[:4], *lfw_photos(6)]
    inputs = [str(p) for p in photos]
    task = Task("detect")
    pooled: list[dict[str, Any]] = []
    counts = run(inputs, task, pooled.append, runner=LocalEngine(2), out=tmp_path / "out")
    assert counts.written == len(photos) and counts.failed == 0
    expected = plain(inputs, task)
    assert [{k: v for k, v in r.items() if k != "annotated"} for r in pooled] == expected
    assert sum(len(r["faces"]) for r in expected) > len(photos)  # group photos among them
    assert all(Path(r["annotated"]).is_file() for r in pooled)


def test_a_task_that_cannot_load_in_the_pool_says_why() -> None:
    photos = [str(p) for p in lfw_photos(2)]
    with pytest.raises(KaoError, match="unknown recognition model 'nobody'"):
        run(photos, Task("embed", {"model": "nobody"}), print, runner=LocalEngine(2))


def test_inputs_globs_and_list_files(tmp_path: Path) -> None:
    photos = lfw_photos(3)
    listed = tmp_path / "lists" / "photos.lst"
    listed.parent.mkdir()
    relative = os.path.relpath(photos[1], listed.parent)
    listed.write_text(f"# my photos\n{photos[0]}\n\n{relative}\n", encoding="utf-8")
    pattern = str(photos[2].parent / "*.jpg")
    jobs, errors = collect([str(listed), pattern, str(tmp_path / "none-*.jpg")])
    assert [job.path.resolve() for job in jobs[:2]] == [p.resolve() for p in photos[:2]]
    assert [job.path for job in jobs[2:]] == sorted(photos[2].parent.glob("*.jpg"))
    assert [error.reason for error in errors] == ["no file matches this pattern"]


@pytest.mark.parametrize("suffix", ["jsonl", "parquet"])
def test_two_jobs_never_write_the_same_results(tmp_path: Path, suffix: str) -> None:
    first = open_results(tmp_path / f"results.{suffix}")
    try:
        with pytest.raises(KaoError, match="is being written by another job"):
            open_results(tmp_path / f"results.{suffix}")
    finally:
        first.close()
    open_results(tmp_path / f"results.{suffix}").close()  # free once the first is closed


def test_results_name_their_format_and_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(Exception, match=r"must end with \.jsonl or \.parquet"):
        open_results(tmp_path / "results.csv")
    monkeypatch.setattr("kao.extras.installed", lambda module: module != "pyarrow")
    with pytest.raises(MissingExtraError, match=r"kao\[batch\]"):
        open_results(tmp_path / "results.parquet")


def test_jsonl_records_are_the_commands_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--results` writes what `--jsonl` prints."""
    group = str(shared_file(GROUP))
    assert main(["count", group, "--jsonl", "--method", "detection"]) == 0
    printed = json.loads(capsys.readouterr().out)
    results = tmp_path / "count.jsonl"
    assert main(["count", group, "--method", "detection", "--results", str(results)]) == 0
    assert list(read_records(results)) == [printed]


def test_parquet_and_jsonl_hold_the_same_records(tmp_path: Path) -> None:
    """`kao count` (no face list: its fields in JSON text) with a bad file, in both formats."""
    folder = tmp_path / "photos"
    folder.mkdir()
    group = shared_file(GROUP)
    (folder / "a_group.jpg").write_bytes(group.read_bytes())
    (folder / "b_broken.jpg").write_bytes(b"not an image")
    (folder / "c_portrait.jpg").write_bytes(lfw_photos(1)[0].read_bytes())
    records = {}
    for suffix in ("jsonl", "parquet"):
        results = tmp_path / f"count.{suffix}"
        args = ["count", str(folder), "--method", "detection", "--results", str(results)]
        assert main(args) == 1
        records[suffix] = list(read_records(results))
    assert records["parquet"] == records["jsonl"]
    assert [r.get("count") for r in records["jsonl"]] == [5, None, 1]
    assert "error" in records["jsonl"][1]
