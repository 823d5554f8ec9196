"""Embeddings, verification and grouping on real LFW photos."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import kao
from kao.cli import main
from kao.recognition import NoFaceError, default_embedder, embed, verify
from kao.recognition.cluster import GROUP_THRESHOLDS, cluster, pairwise_scores
from kao.recognition.embedder import DEFAULT_MODEL
from kao.recognition.verify import similarity
from tests.conftest import LFW, shared_file
from tests.conftest import lfw_photo as photo

PEOPLE = ("Aaron_Peirsol", "Abdoulaye_Wade", "Adam_Sandler", "Alan_Greenspan")


def test_embedding_shape_and_norm() -> None:
    faces = embed(photo("Aaron_Peirsol", 1))
    assert len(faces) == 1
    vector = faces[0].embedding
    assert vector.shape == (512,) and vector.dtype == np.float32
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)


def test_same_person_and_different_people() -> None:
    same = verify(photo("Abdoulaye_Wade", 1), photo("Abdoulaye_Wade", 4))
    different = verify(photo("Abdoulaye_Wade", 1), photo("Alan_Greenspan", 2))
    assert same.same and not different.same
    assert same.distance < same.threshold < different.distance
    assert same.similarity > 0.5 > different.similarity
    assert different.similarity >= 0.0 and same.similarity <= 1.0
    record = same.to_dict()
    assert {"same", "distance", "threshold", "similarity"} <= set(record)
    assert record["a"]["faces"] == 1 and record["a"]["face"] == 1  # numbered from 1


def test_similarity_is_monotonic_and_half_at_the_threshold() -> None:
    from kao.recognition.dlib_resnet import MODEL_NAME
    from kao.recognition.verify import calibration

    threshold = calibration(MODEL_NAME).threshold
    assert similarity(threshold) == pytest.approx(0.5)
    values = [similarity(d) for d in np.linspace(0, 2, 21)]
    assert values == sorted(values, reverse=True) and values[0] > 0.99 and values[-1] < 0.01


def test_no_face_is_reported() -> None:
    blank = np.full((200, 200, 3), 128, np.uint8)
    with pytest.raises(NoFaceError, match="no face found"):
        verify(blank, photo("Alan_Greenspan", 2))


def test_picking_a_face_in_a_group_photo() -> None:
    left = kao.load_image(photo("Abdoulaye_Wade", 1))
    right = kao.load_image(photo("Alan_Greenspan", 2))
    pair = np.concatenate([left, right], axis=1)  # two people side by side
    faces = kao.detect(pair)
    count = len(faces)
    assert count >= 2

    def largest(side: int) -> int:
        on_side = [i for i, f in enumerate(faces) if (f.box[0] > 250) == bool(side)]
        return max(on_side, key=lambda i: faces[i].area)

    chosen = verify(pair, photo("Alan_Greenspan", 4), index_a=largest(1))
    assert chosen.same and chosen.a.faces == count and chosen.a.index == largest(1)
    assert chosen.a.number == largest(1) + 1 == chosen.to_dict()["a"]["face"]
    other = verify(pair, photo("Alan_Greenspan", 4), index_a=largest(0))
    assert not other.same
    beyond = f"face {count + 1} asked for, but {count} found \\(numbered 1 to {count}\\)"
    with pytest.raises(kao.KaoError, match=beyond):
        verify(pair, photo("Alan_Greenspan", 4), index_a=count)


def test_cluster_scores() -> None:
    truth = np.array([0, 0, 0, 1, 1, 2])
    assert pairwise_scores(truth, truth)["f1"] == 1.0
    merged = pairwise_scores(truth, np.zeros(6, int))
    assert merged["recall"] == 1.0 and merged["precision"] == pytest.approx(4 / 15)
    split = pairwise_scores(truth, np.arange(6))
    assert split["precision"] == 0.0 and split["recall"] == 0.0


def test_cluster_real_faces() -> None:
    vectors, truth = [], []
    for k, person in enumerate(PEOPLE[1:]):
        for number in (1, 2, 3):
            vectors.append(embed(photo(person, number))[0].embedding)
            truth.append(k)
    matrix, labels = np.array(vectors), np.array(truth)
    scores = pairwise_scores(labels, cluster(matrix, GROUP_THRESHOLDS[DEFAULT_MODEL]))
    assert scores["f1"] == 1.0  # three photos each of three people: three groups
    assert pairwise_scores(labels, cluster(matrix, 2.0))["precision"] < 1.0  # all merged
    assert cluster(np.zeros((0, 512)), 0.5).size == 0


def test_a_photo_without_a_face_embeds_to_no_faces(tmp_path: Path) -> None:
    blank = tmp_path / "grey.png"
    Image.fromarray(np.full((200, 300, 3), 128, np.uint8)).save(blank)
    assert embed(blank) == [] and kao.embed(np.zeros((64, 64, 3), np.uint8)) == []
    embedder = default_embedder()
    assert embedder.embed_faces(np.zeros((64, 64, 3), np.uint8), []) == []
    vectors = embedder.model.embed_chips(np.zeros((0, 112, 112, 3), np.uint8))
    assert vectors.shape == (0, 512) and vectors.dtype == np.float32


def test_cli_identify_reports_a_photo_without_a_face_and_keeps_the_others(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KAO_CACHE", str(tmp_path / "cache"))
    blank = tmp_path / "grey.png"
    Image.fromarray(np.full((200, 300, 3), 128, np.uint8)).save(blank)
    db = ["--db", url, "--collection", "team"]
    assert main(["enroll", *db, "--person", "Adam", str(photo("Adam_Sandler", 1))]) == 0
    capsys.readouterr()
    probes = [str(blank), str(photo("Adam_Sandler", 3)), str(photo("Alan_Greenspan", 2))]
    assert main(["identify", *db, "--json", *probes]) == 0
    captured = capsys.readouterr()
    records = json.loads(captured.out)
    assert [len(r["faces"]) for r in records] == [0, 1, 1]
    assert [r["faces"][0]["person"] for r in records[1:]] == ["Adam", None]
    assert "Traceback" not in captured.err
    assert main(["identify", *db, *probes]) == 0
    assert capsys.readouterr().out.startswith(f"{blank}: 0 faces\n")


def test_cli_verify_json(capsys: pytest.CaptureFixture[str]) -> None:
    a, b = photo("Adam_Sandler", 1), photo("Adam_Sandler", 3)
    assert main(["verify", str(a), str(b), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["same"] is True and 0.5 < result["similarity"] <= 1
    assert main(["verify", str(a), str(photo("Alan_Greenspan", 2))]) == 0
    assert capsys.readouterr().out.startswith("different people: similarity")


def test_cli_group(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "album"
    folder.mkdir()
    for person in PEOPLE[1:]:
        for number in (1, 2):
            shutil.copy(photo(person, number), folder / f"{person}_{number}.jpg")
    out = tmp_path / "people"
    assert main(["group", str(folder), "--out", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["people"] == 3 and report["faces"] == 6
    for group in report["groups"]:
        names = {Path(f["image"]).name.rsplit("_", 1)[0] for f in group["faces"]}
        assert len(names) == 1 and len(group["faces"]) == 2
    assert sorted(p.name for p in out.glob("*.jpg")) == [f"person_00{i}.jpg" for i in (1, 2, 3)]
    assert len(list((out / "person_001").glob("*.jpg"))) == 2


def test_cli_group_counts_a_photo_without_a_face(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "album"
    folder.mkdir()
    Image.fromarray(np.full((240, 320, 3), 90, np.uint8)).save(folder / "wall.jpg")
    for number in (1, 2):
        shutil.copy(photo("Alan_Greenspan", number), folder / f"alan_{number}.jpg")
    assert main(["group", str(folder), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["people"], report["faces"], report["images"]) == (1, 2, 3)
    assert report["errors"] == []
    Path(folder, "alan_1.jpg").unlink()
    Path(folder, "alan_2.jpg").unlink()
    assert main(["group", str(folder)]) == 0
    assert capsys.readouterr().out.startswith("0 persons in 0 faces of 1 image\n")


def test_lfw_pairs_file() -> None:
    from kao.evaluation.lfw import best_threshold, read_pairs

    shared_file("data/lfw/pairs.txt")
    pairs = read_pairs(LFW.parent)
    assert len(pairs) == 6000 and sum(p.same for p in pairs) == 3000
    assert {p.fold for p in pairs} == set(range(10))
    assert all(p.a.is_file() and p.b.is_file() for p in pairs[:50])
    distance = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.35])
    same = np.array([True, True, True, False, False, False])
    assert 0.3 < best_threshold(distance, same) < 0.35
