"""The face search indexes: exact results, approximate agreement, updates, files and the bench."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from kao.cli import main
from kao.errors import KaoError
from kao.evaluation.bench_search import synthetic_faces
from kao.gallery.index import (
    EXACT_LIMIT,
    ApproximateIndex,
    ExactIndex,
    IndexFileError,
    choose_index,
    load_index,
)

KINDS = [ExactIndex, ApproximateIndex]
Kind = type[ExactIndex] | type[ApproximateIndex]
# Similarities are exact to float32 for ExactIndex, to 1e-3 for ApproximateIndex (f16 storage).


def unit(*rows: list[float]) -> np.ndarray:
    vectors = np.array(rows, np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


# Four faces in 3-d: cosines with the query [1, 0, 0] are 1, 0.8, 0 and -0.6.
IDS = np.array([40, 10, 30, 20], np.int64)
VECTORS = unit([1, 0, 0], [0.8, 0.6, 0], [0, 0, 1], [-0.6, 0.8, 0])
QUERY = unit([1, 0, 0])


@pytest.fixture(scope="module")
def clustered() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """20k synthetic 128-d faces (4000 identities of 5) and 300 fresh faces of them."""
    ids, vectors, queries, _ = synthetic_faces(20_000, 128, 300, seed=1)
    return ids, vectors, queries


def test_exact_on_hand_made_data() -> None:
    index = ExactIndex.build(IDS, VECTORS)
    ids, similarities = index.search(np.vstack([QUERY, unit([0, 0, 1])]), 3)
    assert ids.dtype == np.int64 and similarities.dtype == np.float32
    assert ids.tolist() == [[40, 10, 30], [30, 40, 10]]
    np.testing.assert_allclose(similarities, [[1, 0.8, 0], [1, 0, 0]], atol=1e-6)
    assert len(index) == 4 and index.dim == 3


@pytest.mark.parametrize("kind", KINDS)
def test_both_kinds_agree_on_hand_made_data(kind: Kind) -> None:
    ids, similarities = kind.build(IDS, VECTORS).search(QUERY, 4)
    assert ids.tolist() == [[40, 10, 30, 20]]
    np.testing.assert_allclose(similarities, [[1, 0.8, 0, -0.6]], atol=1e-3)


def test_approximate_finds_the_exact_best_match(
    clustered: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> None:
    ids, vectors, queries = clustered
    exact, _ = ExactIndex.build(ids, vectors).search(queries, 1)
    index = ApproximateIndex.build(ids, vectors)  # the default settings, on one thread
    found, similarities = index.search(queries, 1)
    assert np.mean(found[:, 0] == exact[:, 0]) >= 0.99
    assert np.all(similarities[:, 0] > 0.8)  # a face of the same person, cosine about 0.9
    assert found[:5, 0].tolist() == [int(index.search(q[None], 1)[0][0, 0]) for q in queries[:5]]


def test_approximate_build_is_reproducible() -> None:
    ids, vectors, queries, _ = synthetic_faces(3000, 64, 100, seed=2)
    first = ApproximateIndex.build(ids, vectors, connectivity=8, expansion_add=16)
    second = ApproximateIndex.build(ids, vectors, connectivity=8, expansion_add=16)
    first.expansion_search = second.expansion_search = 8
    np.testing.assert_array_equal(first.search(queries, 5)[0], second.search(queries, 5)[0])


@pytest.mark.parametrize("kind", KINDS)
def test_add_and_remove(kind: Kind) -> None:
    index = kind.build(IDS[:2], VECTORS[:2])
    index.add(IDS[2:], VECTORS[2:])
    assert len(index) == 4
    index.remove(np.array([40, 30]))
    assert len(index) == 2 and index.ids().tolist() == [10, 20]
    ids, similarities = index.search(QUERY, 3)
    assert ids.tolist() == [[10, 20, -1]]
    np.testing.assert_allclose(similarities[0, :2], [0.8, -0.6], atol=1e-3)
    assert similarities[0, 2] == -np.inf
    index.add(np.array([40]), VECTORS[:1])  # a removed id can come back
    assert index.search(QUERY, 1)[0].tolist() == [[40]]
    with pytest.raises(KaoError, match=r"already in the index \(remove them first\): 40"):
        index.add(np.array([40]), VECTORS[:1])
    with pytest.raises(KaoError, match="duplicates"):
        index.add(np.array([7, 7]), VECTORS[:2])
    with pytest.raises(KaoError, match="not in the index: 30"):
        index.remove(np.array([10, 30]))
    assert index.ids().tolist() == [10, 20, 40]  # a refused update changes nothing
    index.remove(np.array([40, 10, 20]))
    assert len(index) == 0 and index.search(QUERY, 1)[0].tolist() == [[-1]]


@pytest.mark.parametrize("kind", KINDS)
def test_padding_when_k_exceeds_the_collection(kind: Kind) -> None:
    empty = kind(3)
    ids, similarities = empty.search(np.vstack([QUERY, QUERY]), 2)
    assert ids.tolist() == [[-1, -1], [-1, -1]] and np.all(similarities == -np.inf)
    ids, similarities = kind.build(IDS[:2], VECTORS[:2]).search(np.vstack([QUERY, QUERY]), 5)
    assert ids.tolist() == [[40, 10, -1, -1, -1]] * 2
    assert np.all(np.isfinite(similarities[:, :2])) and np.all(similarities[:, 2:] == -np.inf)


@pytest.mark.parametrize("kind", KINDS)
def test_bad_input_raises_kao_error(kind: Kind) -> None:
    index = kind.build(IDS, VECTORS)
    with pytest.raises(KaoError, match="dimension 4, the index holds dimension 3"):
        index.search(unit([1, 0, 0, 0]), 1)
    with pytest.raises(KaoError, match="dimension 2, the index holds dimension 3"):
        index.add(np.array([1]), unit([1, 0]))
    with pytest.raises(KaoError, match="L2-normalised"):
        index.search(QUERY * 2, 1)
    with pytest.raises(KaoError, match="L2-normalised"):
        index.add(np.array([1]), np.array([[np.nan, 0, 0]], np.float32))
    with pytest.raises(KaoError, match=">= 0"):
        index.add(np.array([-1]), QUERY)
    with pytest.raises(KaoError, match="2 ids for 1 vectors"):
        index.add(np.array([1, 2]), QUERY)
    with pytest.raises(KaoError, match="k must be"):
        index.search(QUERY, 0)
    assert len(index) == 4


@pytest.mark.parametrize("kind", KINDS)
def test_save_and_load_keep_results_and_revision(
    kind: Kind, clustered: tuple[np.ndarray, np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    ids, vectors, queries = clustered
    index = kind.build(ids[:2000], vectors[:2000])
    index.remove(ids[:10])
    path = tmp_path / "faces.index"
    index.save(path, revision=42)
    loaded, revision = kind.load(path)
    assert revision == 42 and len(loaded) == 1990 and loaded.dim == 128
    for got, want in zip(loaded.search(queries, 3), index.search(queries, 3), strict=True):
        np.testing.assert_array_equal(got, want)
    again, revision = load_index(path)
    assert type(again) is kind and revision == 42
    assert [p.name for p in tmp_path.iterdir()] == ["faces.index"]  # no temporary file left


DAMAGE = {
    "truncated": lambda data: data[:-7],
    "header only": lambda data: data[:40],
    "empty": lambda data: b"",
    "flipped byte": lambda data: data[:-20] + bytes([data[-20] ^ 0xFF]) + data[-19:],
    "longer": lambda data: data + b"\0",
    "not an index": lambda data: b"SQLite format 3\0" + bytes(100),
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("damage", DAMAGE)
def test_damaged_files_raise_kao_error(kind: Kind, damage: str, tmp_path: Path) -> None:
    path = tmp_path / "faces.index"
    kind.build(IDS, VECTORS).save(path, revision=1)
    path.write_bytes(DAMAGE[damage](path.read_bytes()))
    with pytest.raises(KaoError, match=r"faces\.index"):
        kind.load(path)
    with pytest.raises(IndexFileError):
        load_index(path)


@pytest.mark.parametrize("kind", KINDS)
def test_files_record_and_check_their_contents(kind: Kind, tmp_path: Path) -> None:
    path = tmp_path / "faces.index"
    contents = {"database": "d1", "collection": "c", "model": "m"}
    kind.build(IDS, VECTORS).save(path, revision=5, contents=contents)
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_index(path, contents)[1] == 5
    assert kind.load(path, contents)[1] == 5
    for other in ({**contents, "database": "d2"}, {**contents, "collection": "x"}, {}):
        with pytest.raises(IndexFileError, match=r"faces\.index: holds .*'d1'"):
            load_index(path, other)
    with pytest.raises(KaoError, match="strings"):
        kind.build(IDS, VECTORS).save(path, revision=5, contents={"revision": 5})  # type: ignore[dict-item]


def test_stale_part_files_of_dead_writers_are_removed(tmp_path: Path) -> None:
    path = tmp_path / "faces.index"
    stale = tmp_path / f".faces.index.{dead_pid()}.0a1b2c.part"
    live = tmp_path / f".faces.index.{os.getppid()}.0a1b2c.part"
    other = tmp_path / f".other.index.{dead_pid()}.0a1b2c.part"
    for part in (stale, live, other):
        part.write_bytes(b"half an index")
    ExactIndex.build(IDS, VECTORS).save(path, revision=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["faces.index", live.name, other.name]
    )


def dead_pid() -> int:
    """The pid of a process that has exited."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_missing_file_raises_kao_error(tmp_path: Path) -> None:
    with pytest.raises(IndexFileError, match="cannot read"):
        ExactIndex.load(tmp_path / "missing.index")


def test_loading_the_other_kind_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "faces.index"
    ExactIndex.build(IDS, VECTORS).save(path, revision=3)
    with pytest.raises(IndexFileError, match="holds an exact index, not an approximate one"):
        ApproximateIndex.load(path)


def test_choose_index() -> None:
    assert choose_index(0) is ExactIndex
    assert choose_index(EXACT_LIMIT - 1) is ExactIndex
    assert choose_index(EXACT_LIMIT) is ApproximateIndex
    assert choose_index(10_000_000) is ApproximateIndex
    assert choose_index(EXACT_LIMIT // 2 - 1, dim=512) is ExactIndex
    assert choose_index(EXACT_LIMIT // 2, dim=512) is ApproximateIndex


def test_bench_search_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "search", "--size", "2000", "--queries", "50", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {
        "size",
        "dim",
        "queries",
        "k",
        "data",
        "index",
        "build_s",
        "memory_mib",
        "latency_ms",
        "batch_queries_per_s",
        "recall_at_1",
        "speedup_p50",
    } <= set(report)
    assert (report["size"], report["dim"], report["queries"], report["k"]) == (2000, 128, 50, 1)
    assert set(report["latency_ms"]) == {"approximate", "exact"}
    assert set(report["latency_ms"]["approximate"]) == {"p50", "p99"}
    assert report["index"]["library"] == "usearch"
    assert report["build_s"]["approximate"] > 0 and report["memory_mib"]["approximate_index"] > 0
    assert 0.85 < report["data"]["same_identity_cosine"] < 0.95
    assert abs(report["data"]["other_identity_cosine"]) < 0.1
    assert report["recall_at_1"] >= 0.9


def test_bench_search_library_report_is_what_the_cli_prints(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from kao.evaluation.bench_search import bench_search

    report = bench_search(1000, 32, 20, 3, seed=1)
    options = ["--size", "1000", "--dim", "32", "--queries", "20", "--k", "3", "--seed", "1"]
    assert main(["bench", "search", *options, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert set(printed) == set(report) and "recall_at_3" in report
    assert printed["data"] == report["data"] and printed["index"] == report["index"]


@pytest.mark.parametrize(
    ("command", "option"),
    [
        (["detect"], "--data"),
        (["embed"], "--data"),
        (["analyze"], "--data"),
        (["serve", "--seconds", "1"], "--data"),
        (["video"], "--lfw"),
    ],
)
def test_bench_without_its_data_says_which_option_names_it(
    command: list[str], option: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "elsewhere"
    assert main(["bench", *command, option, str(missing)]) == 1
    error = capsys.readouterr().err
    assert error.startswith(f"kao: error: {missing}: no such folder; pass {option} DIR"), error
