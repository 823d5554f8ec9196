"""Recognition evaluation: hard LFW pairs by head pose and age, the face_recognition peer in
`kao eval lfw|identify|group`, and `kao bench embed` per model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import needs_face_recognition, shared_file

from kao.errors import KaoError
from kao.evaluation import lfw

PHOTOS = (
    ("George_W_Bush", 7, 16),
    ("Colin_Powell", 40, 49),
    ("Serena_Williams", 1),
    ("Laura_Bush", 1),
)
"""Six LFW photos: two each of two people, one each of two others."""


def _pairs(same: list[bool], names: list[tuple[str, str]]) -> list[lfw.Pair]:
    return [
        lfw.Pair(Path(f"{a}/{a}_0001.jpg"), Path(f"{b}/{b}_0002.jpg"), s, 0)
        for (a, b), s in zip(names, same, strict=True)
    ]


def test_pair_gaps_and_the_hardest_pairs() -> None:
    """The pose gap is the yaw-pitch distance (roll ignored), the age gap the age difference;
    the hardest pairs are the largest gaps of each kind of pair, an unknown pose last."""
    paths = [Path(f"{n}/{n}_000{k}.jpg") for n in "abcd" for k in (1, 2)]
    # yaw, pitch, roll, age per photo: a1 a2 b1 b2 c1 c2 d1 d2
    rows = [
        (0, 0, 0, 30),
        (30, 40, 80, 32),  # a: pose gap 50 (roll ignored), age gap 2
        (5, 0, 0, 20),
        (8, 4, 0, 60),  # b: pose gap 5, age gap 40
        (np.nan, np.nan, np.nan, 40),
        (0, 0, 0, 41),  # c: pose unknown, age gap 1
        (0, 0, 0, 50),
        (0, 10, 0, 50),  # d: pose gap 10, age gap 0
    ]
    traits = lfw.Embeddings(paths, np.array(rows, np.float32), ["detected"] * len(paths))
    names = [("a", "a"), ("b", "b"), ("c", "c"), ("d", "d"), ("a", "b"), ("c", "d")]
    pairs = _pairs([True, True, True, True, False, False], names)
    pose = lfw.pair_gaps(pairs, traits, "pose")
    np.testing.assert_allclose(pose[[0, 1, 3]], [50.0, 5.0, 10.0])
    assert np.isnan(pose[2])
    np.testing.assert_allclose(lfw.pair_gaps(pairs, traits, "age"), [2, 40, 1, 0, 30, 10])
    same = np.array([p.same for p in pairs])
    assert lfw.hard_pairs(pose, same, 2).tolist() == [True, False, False, True, True, True]
    age = lfw.pair_gaps(pairs, traits, "age")
    assert lfw.hard_pairs(age, same, 1).tolist() == [False, True, False, False, True, False]
    with pytest.raises(KaoError, match="unknown kind"):
        lfw.pair_gaps(pairs, traits, "lighting")


def test_pairs_scored_at_a_threshold() -> None:
    """Accuracy, FRR and FAR at the threshold; TAR at the stricter one."""
    distance = np.array([0.2, 0.5, 0.9, 0.3, 1.0, 1.2])
    same = np.array([True, True, True, False, False, False])
    scored = lfw.scored_at(distance, same, threshold=0.6, strict_threshold=0.4)
    assert scored == {
        "pairs": 6,
        "accuracy": round(4 / 6, 4),
        "false_reject_rate": round(1 / 3, 4),
        "false_accept_rate": round(1 / 3, 4),
        "tar_at_far_1e-3": round(1 / 3, 4),
    }


def _small_lfw(root: Path) -> Path:
    """An LFW folder of `PHOTOS` (links to the shared copies) with 2 folds of 1 + 1 pairs."""
    for name, *numbers in PHOTOS:
        (root / "lfw-deepfunneled" / name).mkdir(parents=True)
        for n in numbers:
            link = lfw.image_path(root, name, n)
            link.symlink_to(shared_file(f"data/lfw/lfw-deepfunneled/{name}/{link.name}"))
    (a, a1, a2), (b, b1, b2), (c, c1), (d, d1) = PHOTOS
    (root / "pairs.txt").write_text(
        f"2 1\n{a} {a1} {a2}\n{a} {a1} {c} {c1}\n{b} {b1} {b2}\n{b} {b2} {d} {d1}\n"
    )
    return root


def test_eval_reports_the_peer_and_the_hard_pairs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`kao eval lfw --baseline --hard pose`, `identify --baseline` and `group --baseline` report
    face_recognition beside the model, in the same shape; the hard part scores the pairs."""
    from kao.cli import main

    needs_face_recognition()
    monkeypatch.setenv("KAO_EVAL_CACHE", str(tmp_path / "cache"))
    data = str(_small_lfw(tmp_path / "lfw"))
    options = ["--data", data, "--model", "edgeface_xxs", "--json", "--workers", "1", "--baseline"]
    assert main(["eval", "lfw", *options, "--hard", "pose"]) == 0
    report = json.loads(capsys.readouterr().out)
    peer = report["baselines"]["face_recognition"]
    for entry in (report, peer):
        assert entry["accuracy"] == 1.0 and entry["images"] == 6
        hard = entry["hard"]
        assert hard["kind"] == "pose" and hard["all"]["pairs"] == hard["hard"]["pairs"] == 4
        assert hard["all"]["accuracy"] == 1.0 and hard["unknown_gaps"] == 0
    assert report["hard"]["threshold"] != peer["hard"]["threshold"]
    traits = np.load(tmp_path / "cache" / "lfw-traits.npz")["matrix"]
    assert traits.shape == (6, 4) and np.all(traits[:, 3] > 15)  # adults
    for command, key in (("identify", "rank1"), ("group", "f1")):
        assert main(["eval", command, *options]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["model"] == "edgeface_xxs" and report[key] == 1.0
        assert report["baselines"]["face_recognition"][key] == 1.0
    assert report["baselines"]["face_recognition"]["threshold"] != report["threshold"]


def test_bench_embed_times_each_model_and_the_peer(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`kao bench embed --model M --json` times that model and face_recognition on one core."""
    from kao.cli import main

    needs_face_recognition()
    monkeypatch.setenv("KAO_THREADS", "1")  # restored after the test; bench embed sets it
    folder = str(shared_file("data/lfw/lfw-deepfunneled/Colin_Powell"))
    command = ["bench", "embed", "--data", folder, "--images", "3", "--json"]
    assert main([*command, "--model", "edgeface_xxs"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["images"] == 3 and report["threads"] == 1
    assert list(report["models"]) == ["edgeface_xxs"]
    for entry in (report["models"]["edgeface_xxs"], report["face_recognition"]):
        assert entry["faces"] >= 3 and entry["faces_per_s"] > 0
        assert entry["embed_ms_per_face"] < entry["ms_per_face"]
    assert report["speedup"]["edgeface_xxs"] > 0


def test_importing_the_peer_leaves_truncated_images_refused() -> None:
    """face_recognition sets Pillow's LOAD_TRUNCATED_IMAGES when imported; kao's import of it
    puts the setting back, so a truncated photo is still refused in the same process."""
    needs_face_recognition()
    from kao.image import load_image

    data = shared_file("data/lfw/lfw-deepfunneled/Colin_Powell/Colin_Powell_0040.jpg").read_bytes()
    with pytest.raises(KaoError, match=r"truncated|corrupt"):
        load_image(data[: len(data) // 2])
