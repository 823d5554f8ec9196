"""Enrolment and grouping from the results of `kao embed --results`: `kao enroll --from-results`
(persons from the photos' folders, batches of transactions, reruns, the model checked) and
`kao group --from-results` (a nearest-neighbour graph giving the groups of the all-pairs
average linkage, without an N x N matrix)."""

from __future__ import annotations

import csv
import json
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kao.cli import main
from kao.errors import ConflictError, KaoError
from kao.gallery.bulk import ENROLLED, FAILED, NO_FACE, SEVERAL_FACES, enroll_results
from kao.gallery.connect import open_gallery
from kao.gallery.records import NewFace
from kao.jobs import Task, run_to_results
from kao.jobs.results import open_results
from kao.recognition.cluster import GROUP_THRESHOLDS, FoundFace, cluster, group_faces
from kao.recognition.embedded import load_embedded, read_embedded
from kao.recognition.graph_cluster import cluster_graph, group_results, neighbour_graph
from tests.conftest import LFW

PEOPLE = [
    "Andre_Agassi",
    "Arnold_Schwarzenegger",
    "Bill_Clinton",
    "Carlos_Menem",
    "David_Beckham",
    "Fidel_Castro",
    "George_HW_Bush",
    "Gerhard_Schroeder",
    "Hans_Blix",
    "Hugo_Chavez",
    "Jean_Chretien",
    "Jennifer_Garner",
    "Jeremy_Greenstock",
    "Jiang_Zemin",
    "Luiz_Inacio_Lula_da_Silva",
    "Megawati_Sukarnoputri",
    "Pervez_Musharraf",
    "Pete_Sampras",
    "Rubens_Barrichello",
    "Silvio_Berlusconi",
    "Tiger_Woods",
    "Tony_Blair",
]
"""22 LFW people with 10 to 14 photos each (247 photos, some with faces of other people)."""


@pytest.fixture(scope="module")
def lfw_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`kao embed --results` (Parquet) of the photos of `PEOPLE`, made once for the module."""
    if not LFW.is_dir():
        pytest.skip(f"{LFW} is not available")
    path = tmp_path_factory.mktemp("results") / "lfw.parquet"
    counts = run_to_results([str(LFW / person) for person in PEOPLE], Task("embed"), path)
    assert counts.failed == 0 and counts.written == 247
    return path


def _unit(rng: np.random.Generator, rows: int, dim: int = 512) -> np.ndarray:
    vectors = rng.normal(size=(rows, dim))
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def test_group_from_results_equals_the_all_pairs_clustering(lfw_results: Path) -> None:
    faces = load_embedded(lfw_results)
    assert faces.model == "edgeface_xs" and len(faces.images) == 247
    assert len(faces.embeddings) > 247  # background faces too
    expected = cluster(faces.embeddings, GROUP_THRESHOLDS["edgeface_xs"])
    result = group_results(lfw_results)
    np.testing.assert_array_equal(result.labels, expected)
    # four neighbours a face at first: the queries of faces with more close ones are repeated
    np.testing.assert_array_equal(group_results(lfw_results, neighbours=4).labels, expected)
    # kao group's report is the in-memory path's on the same faces
    found = [FoundFace.embedded(faces.images[i], b, e) for i, b, e in _faces(faces)]
    in_memory = group_faces(found, 247, threshold=GROUP_THRESHOLDS["edgeface_xs"])
    assert result.grouping().to_dict() == in_memory.to_dict()
    # the groups are the people: the largest 22 groups hold the photos' main faces
    main_faces = faces.face == 1
    people = np.array([Path(faces.images[i]).parent.name for i in faces.image[main_faces]])
    groups = result.labels[main_faces]
    pure = sum(len(set(people[groups == g])) == 1 for g in np.unique(groups))
    assert result.people < 80 and pure / len(np.unique(groups)) > 0.9


def _faces(faces: Any) -> list[tuple[int, np.ndarray, np.ndarray]]:
    return [
        (int(i), faces.boxes[k], faces.embeddings[k]) for k, i in enumerate(faces.image.tolist())
    ]


@pytest.mark.parametrize("seed", range(12))
def test_graph_clustering_equals_scipy_on_overlapping_groups(seed: int) -> None:
    """Groups larger than the first neighbours asked for, close to each other: merges need the
    repeated queries and the sums of pairs outside the graph."""
    rng = np.random.default_rng(seed)
    centres = _unit(rng, int(rng.integers(3, 12)), 32)
    sizes = rng.integers(1, 30, size=len(centres))
    noisy = np.concatenate(
        [c + rng.normal(scale=0.25, size=(n, 32)) for c, n in zip(centres, sizes, strict=True)]
    )
    vectors = (noisy / np.linalg.norm(noisy, axis=1, keepdims=True)).astype(np.float32)
    threshold = float(rng.uniform(0.6, 1.2))
    graph = neighbour_graph(vectors, threshold, neighbours=2)
    assert np.all(graph.distances <= threshold) and np.all(graph.first < graph.second)
    labels = cluster_graph(vectors, threshold, graph)
    np.testing.assert_array_equal(labels, cluster(vectors, threshold))


def test_grouping_memory_grows_with_the_faces_not_their_square() -> None:
    """4,000 faces: an N x N float64 matrix would be 128 MB (its condensed half 64 MB)."""
    rng = np.random.default_rng(7)
    centres = _unit(rng, 800, 64)
    vectors = centres.repeat(5, axis=0) + rng.normal(scale=0.05, size=(4000, 64))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    tracemalloc.start()
    try:
        labels = cluster_graph(vectors, 0.9, neighbour_graph(vectors, 0.9))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert labels.max() + 1 == 800
    assert peak < 16 * 2**20


def test_kao_group_from_results_writes_one_row_per_face(
    lfw_results: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = group_results(lfw_results)
    faces = result.faces
    command = ["group", "--from-results", str(lfw_results), "--out"]
    assert main([*command, str(tmp_path / "g.csv")]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{result.people} persons in {len(faces.image)} faces of 247 images")
    with (tmp_path / "g.csv").open(newline="", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    assert [int(r["person"]) for r in rows] == (result.labels + 1).tolist()
    assert [r["image"] for r in rows] == [faces.images[i] for i in faces.image]
    assert [int(r["face"]) for r in rows] == faces.face.tolist()
    assert main([*command, str(tmp_path / "g.jsonl")]) == 0
    lines = (tmp_path / "g.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == list(result.rows())
    assert main([*command, str(tmp_path / "crops")]) == 1
    assert "with --from-results, a .csv or .jsonl file" in capsys.readouterr().err
    assert main(["group", str(LFW / PEOPLE[0]), "--from-results", str(lfw_results)]) == 1
    assert "give no photos or folders with it" in capsys.readouterr().err


def _record(image: str, vectors: np.ndarray, model: str = "edgeface_xs") -> dict[str, Any]:
    faces = [
        {"box": [10.0 * k, 0.0, 10.0 * k + 50 + k, 60.0], "score": 0.9, "embedding": v.tolist()}
        for k, v in enumerate(vectors)
    ]
    return {"image": image, "width": 250, "height": 250, "model": model, "faces": faces}


def _write(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_enroll_from_results(url: str, tmp_path: Path) -> None:
    """Photos with one face are enrolled as their folder's person, in transactions of `batch`
    faces; the others are counted by reason; a rerun adds nothing."""
    rng = np.random.default_rng(3)
    one = [_record(f"people/p{k % 7}/{k}.jpg", _unit(rng, 1)) for k in range(23)]
    two = _record("people/p1/two.jpg", _unit(rng, 2))
    results = _write(
        tmp_path / "r.jsonl",
        [
            *one[:10],
            {"image": "people/p2/bad.jpg", "error": "cannot read"},
            _record("people/p3/none.jpg", _unit(rng, 0)),
            two,
            *one[10:],
        ],
    )
    gallery = open_gallery(url)
    batches: list[int] = []
    done = enroll_results(
        gallery, "c", results, batch=5, on_batch=lambda d: batches.append(d.added)
    )
    assert done.added == 23 and len(done.persons) == 7 and done.batches == 5
    assert batches == [5, 10, 15, 20, 23]
    assert done.skipped == {SEVERAL_FACES: 1, FAILED: 1, NO_FACE: 1}
    stored = {face.source: face for face in gallery.faces("c")}
    assert set(stored) == {r["image"] for r in one}
    for record in one:
        face = stored[record["image"]]
        assert face.person == Path(record["image"]).parent.name and face.model == "edgeface_xs"
        assert face.embedding.tolist() == pytest.approx(record["faces"][0]["embedding"], abs=1e-7)
    again = enroll_results(gallery, "c", results, largest=True)
    assert again.added == 1 and again.skipped[ENROLLED] == 23  # the largest face of two.jpg
    (added,) = [f for f in gallery.faces("c") if f.source == "people/p1/two.jpg"]
    assert added.box == (10.0, 0.0, 61.0, 60.0)
    gallery.close()


def test_enroll_from_results_refuses_another_model(url: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    gallery = open_gallery(url)
    gallery.add_faces("c", "someone", [NewFace(_unit(rng, 1, 128)[0], "dlib_resnet_v1", "x.jpg")])
    results = _write(tmp_path / "r.jsonl", [_record("people/a/1.jpg", _unit(rng, 1))])
    with pytest.raises(
        ConflictError, match="holds edgeface_xs embeddings, but collection 'c' holds dlib_resnet_v1"
    ):
        enroll_results(gallery, "c", results)
    assert len(gallery.faces("c")) == 1
    gallery.close()


def test_kao_enroll_from_results(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(5)
    results = _write(
        tmp_path / "r.jsonl",
        [_record(f"people/p{k % 3}/{k}.jpg", _unit(rng, 1)) for k in range(6)]
        + [_record("people/p0/two.jpg", _unit(rng, 2))],
    )
    db = str(tmp_path / "faces.db")
    args = ["enroll", "--db", db, "--collection", "c", "--from-results", str(results)]
    assert main([*args, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["added"] == 6 and report["persons"] == 3 and report["batches"] == 1
    assert report["skipped"][SEVERAL_FACES] == 1
    assert main(args) == 0
    assert capsys.readouterr().out.startswith(
        "enrolled 0 faces of 0 persons in c (0 transactions); skipped 7 photos: 6 already enrolled"
    )
    assert main([*args, "--person", "x"]) == 1
    assert "give no --person, --model or photos with it" in capsys.readouterr().err
    assert main(["enroll", "--db", db, "--collection", "c", "x.jpg"]) == 1
    assert "kao enroll needs --person ID and photos" in capsys.readouterr().err


def test_results_without_embeddings_or_with_two_models(tmp_path: Path) -> None:
    detect = _write(tmp_path / "d.jsonl", [{"image": "a.jpg", "faces": [{"box": [0, 0, 1, 1]}]}])
    with pytest.raises(KaoError, match=r"a\.jpg has no embeddings"):
        load_embedded(detect)
    rng = np.random.default_rng(6)
    mixed = _write(
        tmp_path / "m.jsonl",
        [_record("a.jpg", _unit(rng, 1)), _record("b.jpg", _unit(rng, 1, 128), "dlib_resnet_v1")],
    )
    with pytest.raises(KaoError, match=r"b\.jpg was embedded with dlib_resnet_v1, earlier"):
        load_embedded(mixed)
    with pytest.raises(KaoError, match="no such results file"):
        load_embedded(tmp_path / "missing.parquet")


def _parquet(path: Path, records: list[dict[str, Any]], dimension: int | None) -> Path:
    results = open_results(path, dimension=dimension)
    for record in records:
        results.write(record)
    results.close()
    return path


def test_parquet_results_read_as_their_json_lines(tmp_path: Path) -> None:
    """Parquet results (read column by column) give the photos, boxes and embeddings of the same
    records in JSON Lines, failed photos and photos without a face included."""
    rng = np.random.default_rng(7)
    records = [
        _record("p/a.jpg", _unit(rng, 2)),
        {"image": "p/bad.jpg", "error": "cannot read"},
        _record("p/none.jpg", _unit(rng, 0)),
        _record("q/b.jpg", _unit(rng, 1)),
    ]
    from_jsonl = list(read_embedded(_write(tmp_path / "r.jsonl", records)))
    from_parquet = list(read_embedded(_parquet(tmp_path / "r.parquet", records, 512)))
    assert [(r.image, r.model, r.error) for r in from_parquet] == [
        (r.image, r.model, r.error) for r in from_jsonl
    ]
    for parquet, jsonl in zip(from_parquet, from_jsonl, strict=True):
        assert parquet.boxes.shape == jsonl.boxes.shape and parquet.boxes.dtype == np.float32
        np.testing.assert_array_equal(parquet.boxes, jsonl.boxes)
        assert parquet.embeddings.shape == jsonl.embeddings.shape
        np.testing.assert_allclose(parquet.embeddings, jsonl.embeddings, atol=1e-7)
    assert [len(r.boxes) for r in from_parquet] == [2, 0, 0, 1]
    detected = [
        {"image": "a.jpg", "width": 9, "height": 9, "faces": [{"box": [0, 0, 1, 1], "score": 1}]}
    ]
    with pytest.raises(KaoError, match=r"a\.jpg has no embeddings"):
        load_embedded(_parquet(tmp_path / "d.parquet", detected, None))
