"""URL inputs of batch jobs (`kao.jobs.inputs`): ``file://`` URLs of real photos (pyarrow's
local file system, as ``s3://`` or ``gs://`` URLs go through pyarrow's other ones) as images,
folders, patterns and list lines; errors as records without secrets; resume keyed by URL;
JSON Lines and Parquet; the pool; annotated copies."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pyarrow.fs import FileSystem

import kao.jobs.inputs as inputs_module
from kao.cli import main
from kao.errors import ImageError
from kao.jobs import LocalEngine, Task, collect, read_records, run, run_to_results
from kao.jobs.inputs import _filesystem, max_bytes, read_url, redact, refusal
from tests.conftest import LFW, WIDER

SECRET = "wJalrXUtnFEMIK7MDENG"  # an access key's secret part, never to be printed or written


def url(path: Path) -> str:
    """The file:// URL of the local `path`."""
    return path.resolve().as_uri()


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """A folder of real photos: two LFW portraits at the top, a WIDER group photo in a
    sub-folder with a space in its name, a hidden folder and a text file (both skipped)."""
    if not LFW.is_dir() or not WIDER.is_dir():
        pytest.skip("the LFW and WIDER FACE photos are not available")
    folder = tmp_path / "photos"
    (folder / "the group").mkdir(parents=True)
    (folder / ".hidden").mkdir()
    portraits = sorted(LFW.glob("A*/*.jpg"))[:2]
    for portrait in portraits:
        shutil.copy(portrait, folder / portrait.name)
    shutil.copy(sorted((WIDER / "images").glob("0_Parade_*.jpg"))[0], folder / "the group/g.jpg")
    shutil.copy(portraits[0], folder / ".hidden" / "skipped.jpg")
    (folder / "notes.txt").write_text("not a photo")
    return folder


def plain(inputs: list[str], **options: Any) -> list[dict[str, Any]]:
    """The records of `kao detect` over `inputs`, in this process."""
    records: list[dict[str, Any]] = []
    run(inputs, Task("detect"), records.append, **options)
    return records


def without_image(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records without their "image" and "annotated" fields (the rest: what was found)."""
    return [{k: v for k, v in r.items() if k not in ("image", "annotated")} for r in records]


def test_a_folder_url_is_walked_like_the_folder(photos: Path) -> None:
    by_url = plain([url(photos)])
    by_path = plain([str(photos)])
    assert [r["image"] for r in by_url] == [
        url(photos / name) for name in sorted(p.name for p in photos.glob("*.jpg"))
    ] + [f"{url(photos)}/the%20group/g.jpg"]
    assert without_image(by_url) == without_image(by_path)
    assert len(by_url[-1]["faces"]) > 1 and all(r.get("faces") for r in by_url)


def test_patterns_files_and_list_files_mixing_paths_and_urls(photos: Path) -> None:
    first, second = sorted(photos.glob("*.jpg"))
    listing = photos.parent / "photos.txt"
    listing.write_text(f"# mixed\n{url(second)}\nphotos/{first.name}\n\n{url(photos)}/nope.jpg\n")
    inputs = [f"{url(photos)}/**/*.jpg", url(first), str(listing), f"{url(photos)}/x*.png"]
    jobs, errors = collect(inputs)
    assert [job.path for job in jobs] == [
        url(first),
        url(second),
        f"{url(photos)}/the%20group/g.jpg",
        url(first),
        url(second),
        photos / first.name,
        f"{url(photos)}/nope.jpg",
    ]
    assert [job.relative for job in jobs[:3]] == [
        Path(first.name),
        Path(second.name),
        Path("g.jpg"),
    ]
    assert [(e.source, e.reason) for e in errors] == [
        (f"{url(photos)}/x*.png", "no file matches this pattern")
    ]
    everything, _ = collect([f"{url(photos)}/**", f"{url(photos)}/*/[fg].jpg"])
    assert [job.path for job in everything] == [
        url(first),
        url(second),
        f"{url(photos)}/notes.txt",
        f"{url(photos)}/the%20group/g.jpg",
        f"{url(photos)}/the%20group/g.jpg",
    ]
    records = plain(inputs)
    assert records[0] == {"image": f"{url(photos)}/x*.png", "error": "no file matches this pattern"}
    assert records[-1] == {"image": f"{url(photos)}/nope.jpg", "error": "no such file"}
    assert without_image(records[1:3]) == without_image(plain([str(first), str(second)]))


def test_url_errors_are_records_without_secrets(
    photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    (tmp_path / "zero.jpg").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("not a photo")
    bad = {
        url(tmp_path / "missing.jpg"): "no such file or directory",
        url(empty): "no images found",
        "foo://bucket/a.jpg": "unknown URL scheme 'foo'",
        "https://example.com/a.jpg": "https URLs are not read (pyarrow has no HTTP file system)",
        f"s3://AKIAEXAMPLE:{SECRET}@bucket/a.jpg": "a password or secret in the URL is refused",
        f"abfs://box@acct.dfs.core.windows.net/a.jpg?client_secret={SECRET}": "is refused",
        url(tmp_path / "zero.jpg"): "empty file",
        url(tmp_path / "text.jpg"): "not an image or unsupported format",
    }
    listing = tmp_path / "bad.lst"
    listing.write_text(f"s3://AKIAEXAMPLE:{SECRET}@bucket/b.jpg\n{url(tmp_path)}/gone.jpg\n")
    results = tmp_path / "results.jsonl"
    args = ["detect", *bad, str(listing), url(photos / "the group"), "--results", str(results)]
    assert main(args) == 1
    records = {r["image"]: r for r in read_records(results)}
    for given, reason in bad.items():
        assert reason in records.pop(redact(given))["error"]
    assert "is refused" in records.pop("s3://AKIAEXAMPLE:***@bucket/b.jpg")["error"]
    assert records.pop(f"{url(tmp_path)}/gone.jpg")["error"] == "no such file"
    assert [len(r["faces"]) > 1 for r in records.values()] == [True]  # the group photo
    printed = capsys.readouterr()
    assert "11 records written (10 failed)" in printed.out
    assert SECRET not in printed.out + printed.err + results.read_text()
    assert f"{url(tmp_path)}/gone.jpg: no such file" in printed.err


def test_redaction_and_refusals() -> None:
    assert redact(f"s3://AKIA:{SECRET}@bucket/k.jpg?region=eu-west-1") == (
        "s3://AKIA:***@bucket/k.jpg?region=eu-west-1"
    )
    assert redact(f"abfs://box@acct/k.jpg?sas_token={SECRET}&enable_tls=false") == (
        "abfs://box@acct/k.jpg?sas_token=***&enable_tls=false"
    )
    for plain_url in ("hdfs://kao@namenode:8020/p/a.jpg", "s3://bucket/k.jpg?region=us-east-1"):
        assert redact(plain_url) == plain_url and refusal(plain_url) is None
    assert "http URLs are not read" in (refusal("http://example.com/a.jpg") or "")
    with pytest.raises(ImageError) as raised:
        read_url(f"gs://user:{SECRET}@bucket/a.jpg")
    assert raised.value.source == "gs://user:***@bucket/a.jpg" and SECRET not in str(raised.value)


@pytest.mark.parametrize(
    "given",
    [
        "file:///tmp/some%20folder/a.jpg",
        "s3://bucket/2024/a%2Bb.jpg?region=eu-west-1",
        "gs://bucket/key/a.jpg",
        "abfs://box@acct.dfs.core.windows.net/p/a.jpg",
    ],
)
def test_one_file_system_per_root_finds_the_same_path(given: str) -> None:
    """The file system made once per root (scheme, host or bucket, query) gives each URL the
    path that pyarrow gives it from the whole URL."""
    assert _filesystem(given)[1] == FileSystem.from_uri(given)[1]


def test_without_pyarrow_urls_need_the_batch_extra(
    photos: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    needs = "reading URLs needs the batch extra (no module pyarrow): pip install 'kao[batch]'"
    jobs, errors = collect([url(photos), str(photos / "the group")])
    assert [job.path for job in jobs] == [photos / "the group" / "g.jpg"]
    assert [(e.source, e.reason) for e in errors] == [(url(photos), needs)]
    with pytest.raises(ImageError, match=r"needs the batch extra"):
        read_url(url(photos / "the group" / "g.jpg"))


def test_a_file_over_the_byte_limit_is_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAO_MAX_PIXELS", "1000")
    limit = max_bytes()
    assert limit == 8 * 1000 + 16 * 2**20
    huge = tmp_path / "huge.jpg"
    with huge.open("wb") as file:
        file.truncate(limit + 1)  # sparse: nothing written
    with pytest.raises(ImageError, match=rf"file too large: {limit + 1} bytes, over the limit"):
        read_url(url(huge))


@pytest.mark.parametrize("suffix", ["jsonl", "parquet"])
def test_resume_with_urls(photos: Path, tmp_path: Path, suffix: str) -> None:
    """A job over part of the URLs, then over all of them: the rest done, nothing twice; the
    records those of the local paths in the same format."""
    urls = [url(p) for p in sorted(photos.glob("*.jpg"))] + [url(photos / "the group/g.jpg")]
    results = tmp_path / f"results.{suffix}"
    task = Task("detect")
    first = run_to_results([*urls[:1], f"{url(tmp_path)}/gone.jpg"], task, results)
    assert (first.written, first.failed, first.skipped) == (2, 1, 0)
    second = run_to_results([f"{url(photos)}/**/*.jpg", f"{url(tmp_path)}/gone.jpg"], task, results)
    assert (second.written, second.failed, second.skipped) == (2, 0, 2)
    records = list(read_records(results))
    assert sorted(r["image"] for r in records) == sorted([*urls, f"{url(tmp_path)}/gone.jpg"])
    done = {r["image"]: r for r in records}
    run_to_results([str(photos)], task, tmp_path / f"local.{suffix}")
    local = list(read_records(tmp_path / f"local.{suffix}"))
    assert without_image([done[u] for u in urls]) == without_image(local)


def test_two_workers_and_annotated_copies_from_urls(
    photos: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pool's workers read the photos: this process (the driver) cannot, and the records
    are still those of the plain loop."""
    inputs = [url(photos), f"{url(photos)}/*.jpg"]
    out = tmp_path / "out"
    with monkeypatch.context() as patched:
        patched.setattr(inputs_module, "read_url", lambda given: pytest.fail(f"read {given}"))
        pooled = plain(inputs, runner=LocalEngine(2), out=out)
    assert [{k: v for k, v in r.items() if k != "annotated"} for r in pooled] == plain(inputs)
    names = sorted(p.name for p in photos.glob("*.jpg"))
    assert [Path(r["annotated"]).relative_to(out).as_posix() for r in pooled] == [
        *names,
        "the group/g.jpg",
        *[f"{Path(n).stem}-2.jpg" for n in names],
    ]
    assert all(Path(r["annotated"]).is_file() for r in pooled)


def test_the_command_reads_urls_in_pool_workers(photos: Path, tmp_path: Path) -> None:
    """`kao detect URL --workers 2 --results R.parquet` in its own process."""
    results = tmp_path / "r.parquet"
    args = ["detect", url(photos), "--workers", "2", "--results", str(results)]
    code = f"import sys; from kao.cli import main; sys.exit(main({args!r}))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "3 records written (0 failed), 0 images already there" in done.stdout
    records = list(read_records(results))
    assert [r["image"] for r in records] == [r["image"] for r in plain([url(photos)])]


class Refusing:
    """A file system that refuses everything, as an S3 bucket without the right to read."""

    def get_file_info(self, path: str) -> Any:
        raise PermissionError(13, "Permission denied", path)

    def open_input_file(self, path: str) -> Any:
        detail = "".join(f"retry {n}: {'x' * 50}\n" for n in range(80))
        raise OSError(
            f"When reading information for key '{path}': AWS Error ACCESS_DENIED during "
            f"HeadObject operation: No response body.\n{detail}"
        )


def test_refused_reads_are_short_reasons(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(inputs_module, "_root", lambda scheme, netloc, query: (Refusing(), netloc))
    jobs, errors = collect(["s3://bucket/photos/"])
    assert not jobs and [(e.source, e.reason) for e in errors] == [
        ("s3://bucket/photos/", "permission denied")
    ]
    with pytest.raises(ImageError) as raised:
        read_url("s3://bucket/photos/a.jpg")
    assert raised.value.reason == (
        "cannot read: When reading information for key 'bucket/photos/a.jpg': AWS Error "
        "ACCESS_DENIED during HeadObject operation: No response body."
    )


def test_kao_group_reads_urls(photos: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`kao group` takes the same URLs: the same groups as the folder, the photos named by
    their URLs, a missing URL an error naming it."""
    assert main(["group", str(photos), "--json"]) == 0
    by_path = json.loads(capsys.readouterr().out)
    missing = url(photos / "missing.jpg")
    assert main(["group", url(photos), missing, "--json"]) == 1
    captured = capsys.readouterr()
    by_url = json.loads(captured.out)
    assert f"{missing}: no such file or directory" in captured.err
    assert by_url["people"] == by_path["people"] and by_url["faces"] == by_path["faces"] > 2
    named = {face["image"] for g in by_url["groups"] for face in g["faces"]}
    assert named == {url(p) for p in photos.rglob("*.jpg") if ".hidden" not in p.parts}
