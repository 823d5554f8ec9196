"""kao's trained crowd counter: the exported network against PyTorch's output, its input
preparation, the training-set loaders and folds, the Bayesian loss, and the cross-validated
`kao eval count --train-data`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from kao.cli import main
from kao.crowd import counting, datasets, trained
from kao.crowd.counting import CHOICES, CrowdCounter
from kao.crowd.trained import TrainedCounter
from kao.errors import KaoError
from kao.evaluation import crowd
from kao.image import load_image
from tests.conftest import shared_file

MALL_TRAIN = "data/crowd/mall_train"


@pytest.mark.parametrize("dataset", trained.shipped())
def test_onnx_matches_pytorch_reference(dataset: str) -> None:
    """ONNX Runtime's density for the seeded input equals PyTorch's at training time."""
    counter = TrainedCounter(dataset)
    reference = counter.reference
    x = np.random.default_rng(reference["seed"]).uniform(0, 255, reference["shape"])
    density = counter.run(x.astype(np.float32))[0]
    expected = np.asarray(reference["density"], np.float32)
    assert (
        density.shape == expected.shape == (reference["shape"][2] // 8, reference["shape"][3] // 8)
    )
    np.testing.assert_allclose(density, expected, rtol=1e-3, atol=1e-5)
    assert counter.info.dataset == dataset


def test_mall_is_shipped() -> None:
    assert "mall" in trained.shipped()
    with pytest.raises(KaoError, match="no trained counter"):
        trained.weights_path("nowhere")


def test_prepare_scales_and_pads_with_the_mean() -> None:
    rgb = np.full((50, 70, 3), 200, np.uint8)
    x = trained.prepare(rgb, 0.5, 8, (1.0, 2.0, 3.0))
    assert x.shape == (1, 3, 32, 40) and x.dtype == np.float32  # 25 x 35 padded to 32 x 40
    assert (x[0, :, :25, :35] == 200).all()
    assert (x[0, 2, 25:, :] == 3.0).all() and (x[0, 0, :, 35:] == 1.0).all()
    with pytest.raises(KaoError, match="uint8 RGB"):
        trained.prepare(rgb[..., 0], 1.0, 8, (0.0, 0.0, 0.0))


def test_folds_are_contiguous_and_cover_everything() -> None:
    held_all = []
    for index in range(3):
        train, held = datasets.fold(10, 3, index)
        assert sorted(train + held) == list(range(10))
        assert held == list(range(held[0], held[-1] + 1))
        held_all += held
    assert held_all == list(range(10))
    with pytest.raises(KaoError):
        datasets.fold(10, 3, 3)


def _write_mall(root: Path, frames: dict[int, np.ndarray], total: int = 1000) -> None:
    """A Mall folder: `frames` (number -> points) as small JPEGs, and a mall_gt.mat of `total`
    frames (the others empty)."""
    from PIL import Image

    (root / "frames").mkdir(parents=True)
    table = np.empty((1, total), dtype=object)  # a cell array of structs, as published
    for i in range(total):
        table[0, i] = {"loc": np.zeros((0, 2))}
    for number, points in frames.items():
        table[0, number - 1] = {"loc": points.astype(np.float64)}
        Image.new("RGB", (64, 48)).save(root / "frames" / f"seq_{number:06d}.jpg")
    scipy.io.savemat(root / "mall_gt.mat", {"frame": table})


def test_mall_loader_reads_points_and_keeps_to_the_training_frames(tmp_path: Path) -> None:
    points = {
        2: np.array([[1.5, 2.5], [3.0, 4.0]]),
        10: np.array([[5.0, 6.0]]),
        801: np.ones((3, 2)),
    }
    _write_mall(tmp_path / "mall", points)
    scenes = datasets.load_scenes("mall", tmp_path)
    assert [s.name for s in scenes] == ["seq_000002.jpg", "seq_000010.jpg"]  # 801 is a test frame
    np.testing.assert_allclose(scenes[0].points, points[2])
    assert [s.count for s in scenes] == [2, 1]


def test_shanghaitech_loader(tmp_path: Path) -> None:
    from PIL import Image

    split = tmp_path / "part_B" / "train_data"
    (split / "images").mkdir(parents=True)
    (split / "ground-truth").mkdir()
    for number, count in ((10, 3), (2, 5), (7, 0)):
        points = np.arange(count * 2, dtype=np.float64).reshape(count, 2)
        cell = np.empty((1, 1), dtype=object)
        cell[0, 0] = {"location": points, "number": np.array([[count]])}
        scipy.io.savemat(split / "ground-truth" / f"GT_IMG_{number}.mat", {"image_info": cell})
        Image.new("RGB", (32, 32)).save(split / "images" / f"IMG_{number}.jpg")
    Image.new("RGB", (32, 32)).save(split / "images" / "IMG_99.jpg")  # no ground truth
    scenes = datasets.load_scenes("shanghaitech_B", tmp_path)
    assert [(s.name, s.count) for s in scenes] == [
        ("IMG_2.jpg", 5),
        ("IMG_7.jpg", 0),
        ("IMG_10.jpg", 3),
    ]
    np.testing.assert_allclose(scenes[2].points, [[0, 1], [2, 3], [4, 5]])
    with pytest.raises(KaoError, match="no annotated"):
        datasets.load_scenes("shanghaitech_A", tmp_path)


def test_bayesian_loss_prefers_mass_at_the_heads() -> None:
    torch = pytest.importorskip("torch")
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from train_counter import bayesian_loss

    heads = torch.tensor([[12.0, 12.0], [44.0, 28.0]])  # cells (1, 1) and (3, 5) of 8 px
    on_heads = torch.zeros(1, 1, 8, 8)
    on_heads[0, 0, 1, 1] = on_heads[0, 0, 3, 5] = 1.0
    spread = torch.full((1, 1, 8, 8), 2.0 / 64)
    near = bayesian_loss(on_heads, [heads], 64, 8.0, 1.0)
    far = bayesian_loss(spread, [heads], 64, 8.0, 1.0)
    assert float(near) < 0.2 < float(far)
    empty = bayesian_loss(spread, [torch.zeros(0, 2)], 64, 8.0, 1.0)
    assert float(empty) == pytest.approx(2.0)


def _mall_root(tmp_path: Path) -> Path:
    """A Mall training folder made of the 20 shared Mall train frames, with their points."""
    folder = shared_file(MALL_TRAIN)
    points = json.loads((folder / "points.json").read_text())
    root = tmp_path / "train"
    table = {
        int(name[4:10]): np.asarray(p, np.float64).reshape(-1, 2) for name, p in points.items()
    }
    _write_mall(root / "mall", table, total=800)
    for number in table:
        name = f"seq_{number:06d}.jpg"
        (root / "mall" / "frames" / name).unlink()
        (root / "mall" / "frames" / name).symlink_to(folder / "images" / name)
    return root


def test_trained_counter_counts_mall_frames(tmp_path: Path) -> None:
    """The Mall network on the 20 shared Mall train frames (14-48 people), which it may have
    been trained on: a regression check, not the cross-validated figure."""
    counter = TrainedCounter("mall")
    scenes = datasets.load_scenes("mall", _mall_root(tmp_path))
    errors = [counter.count(load_image(s.path)) - s.count for s in scenes]
    assert np.abs(errors).mean() < 4.0


def test_eval_count_cross_validates_with_mcnn_beside(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _mall_root(tmp_path)
    cache = tmp_path / "cache.json"
    report = crowd.cross_validate(root, cache=cache)
    info = TrainedCounter("mall").info
    train, held = datasets.fold(20, info.folds, info.fold)
    entry = report["sets"]["mall"]
    assert entry["images"] == len(held) and entry["scene"] == "surveillance from above"
    assert set(entry["methods"]) == {crowd.TRAIN_MEAN, *crowd.METHODS}
    counts = json.loads(shared_file(f"{MALL_TRAIN}/gt.json").read_text())
    mean = np.mean([list(counts.values())[i] for i in train])  # gt.json is in frame order
    assert entry["methods"][crowd.TRAIN_MEAN]["bias"] == pytest.approx(
        mean - entry["people"] / entry["images"], abs=0.01
    )
    for row in entry["methods"].values():
        assert row["rmse"] >= row["mae"] >= 0
    assert sum(entry["auto_chose"].values()) == len(held)
    assert entry["report_half"]["images"] == len(held) - len(held) // 2
    assert 0 <= entry["report_half"]["coverage"] <= 1
    rows = report["per_image"]
    assert [r["tune"] for r in rows] == [i < len(held) // 2 for i in range(len(held))]
    mall = TrainedCounter("mall").count(load_image(root / "mall" / "frames" / rows[0]["image"]))
    assert rows[0]["trained-mall"] == pytest.approx(mall, abs=0.05)
    # the cached counts come back unchanged, and the command prints the same report
    kept = cache.read_text()
    assert crowd.cross_validate(root, cache=cache)["per_image"] == rows
    assert cache.read_text() == kept
    # a new counter's counts are added without running the others again
    entries = json.loads(kept)
    for values in entries.values():
        del values[next(k for k in values if k.startswith("trained-mall@"))]
    cache.write_text(json.dumps(entries))
    monkeypatch.setattr(CrowdCounter, "network", lambda *_: pytest.fail("MCNN ran again"))
    assert crowd.cross_validate(root, cache=cache)["per_image"] == rows
    assert json.loads(cache.read_text()) == json.loads(kept)
    monkeypatch.undo()
    monkeypatch.setenv("KAO_EVAL_CACHE", str(tmp_path / "eval"))
    assert main(["eval", "count", "--train-data", str(root), "--json", "--per-image"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["per_image"] == rows and printed["sets"] == report["sets"]
    with pytest.raises(KaoError, match="holds none"):
        crowd.cross_validate(tmp_path / "empty")


def _row(dataset: str, truth: int, counts: dict[str, float], faces: int = 0) -> crowd.Row:
    full = {method: 1.0 for method in CHOICES} | counts
    return crowd.Row(dataset, "x", truth, crowd.Measured(full, faces, 60.0 if faces else 0), True)


def test_fit_rule_picks_what_each_scene_type_counts_best() -> None:
    """Dense crowds that MCNN-A counts, street scenes that MCNN-B counts (A over-counts them
    at about 200), group photos whose faces are all found: the fitted rule sends each set to
    its own best method."""
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(10):
        n = int(rng.integers(600, 2000))
        rows.append(_row("A", n, {"density-A": n * 1.05, "density-B": n / 3}, faces=40))
        n = int(rng.integers(50, 150))
        rows.append(_row("B", n, {"density-A": 180.0, "density-B": n * 0.95}))
        n = int(rng.integers(3, 12))
        rows.append(_row("G", n, {"density-A": 60.0, "density-B": 30.0, "detection": n}, n))
    rule = crowd.fit_rule(rows)
    assert rule.sparse == "density-B" and 180 < rule.dense_count < 600
    assert rule.max_faces >= 12 and rule.min_face <= 60
    assert [r.estimate(rule)[0] for r in rows[:3]] == ["density-A", "density-B", "detection"]


def test_fit_ranges_are_the_residual_deciles_and_cover_four_in_five() -> None:
    rng = np.random.default_rng(1)
    rows = [
        _row("B", int(t), {"density-B": float(t) * rng.uniform(0.7, 1.3)})
        for t in rng.integers(20, 200, 400)
    ]
    rule = counting.Rule(max_faces=0, dense_count=1e9, sparse="density-B")
    ranges = crowd.fit_ranges(rows, rule)
    low, high = ranges["density-B"]
    assert -0.3 < low < -0.1 < 0.1 < high < 0.4
    share = np.mean([crowd.covered(r, rule, ranges) for r in rows])
    assert 0.78 <= share <= 0.86  # 80% plus the outward rounding to whole people
    assert ranges["detection"][0] > np.log(21 / 2)  # never chosen: all rows, where it says 1
    # fewer than MIN_RESIDUALS chosen rows: every row's residual is used
    few = crowd.fit_ranges(rows[: crowd.MIN_RESIDUALS - 1], rule)
    assert set(few) == set(CHOICES)


def test_group_photos_are_every_nth_wider_image_of_the_group_events(tmp_path: Path) -> None:
    from PIL import Image

    events = ["0--Parade", "12--Group", "20--Family_Group"]
    table = {
        "event_list": np.empty((3, 1), dtype=object),
        "file_list": np.empty((3, 1), dtype=object),
        "face_bbx_list": np.empty((3, 1), dtype=object),
    }
    for e, event in enumerate(events):
        table["event_list"][e, 0] = np.array([event])
        names, boxes = np.empty((5, 1), dtype=object), np.empty((5, 1), dtype=object)
        for i in range(5):
            names[i, 0] = np.array([f"{e}_{i}"])
            boxes[i, 0] = np.ones((i + 1, 4))
            (tmp_path / "images" / event).mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (16, 16)).save(tmp_path / "images" / event / f"{e}_{i}.jpg")
        table["file_list"][e, 0], table["face_bbx_list"][e, 0] = names, boxes
    scipy.io.savemat(tmp_path / "wider_face_val.mat", table)
    images = crowd.load_groups(tmp_path)
    every = [(f"{e}_{i}.jpg", i + 1) for e in (1, 2) for i in range(5)][:: crowd.GROUP_STEP]
    assert [(im.path.name, im.count) for im in images] == every
    assert all(im.name.split("/")[0] in crowd.GROUP_EVENTS for im in images)
    with pytest.raises(KaoError, match="not a WIDER FACE"):
        crowd.load_groups(tmp_path / "images")
