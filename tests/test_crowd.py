"""Crowd counting: the MCNN port against a numpy reference, counts on real scenes, the rule,
`kao count` and the `kao eval count` datasets."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image

from kao.cli import main
from kao.crowd import CrowdCounter, Estimates, mcnn
from kao.crowd.counting import CHOICES, METHOD_CHOICES, RULE, TRAINED, interval
from kao.crowd.heatmap import FLOOR, density_levels, heat_map
from kao.errors import ImageError, KaoError, ModelError
from kao.evaluation import crowd
from kao.face import Face
from kao.image import load_image
from kao.models import store
from tests.conftest import shared_file

MODELS = "models/mcnn_crowd"
DENSE = "data/crowd/shanghaitech_A_train/images/IMG_1.jpg"  # 1,546 annotated heads
MALL = "data/crowd/mall_train/images/seq_000401.jpg"  # 48 people, 640 x 480
CLOSE_UP = "data/widerface_val_subset/images/1_Handshaking_Handshaking_1_827.jpg"  # 3 faces


@pytest.fixture(scope="module")
def counter() -> CrowdCounter:
    return CrowdCounter()


def _conv_relu(x: np.ndarray, layer: mcnn.Conv) -> np.ndarray:
    """Direct 'same' cross-correlation of (C, H, W) `x` with the layer's filters, bias, ReLU."""
    k = layer.weight.shape[2]
    pad = (k - 1) // 2
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    windows = sliding_window_view(padded, (k, k), axis=(1, 2))  # (C, H, W, k, k)
    out = np.einsum("chwij,ocij->ohw", windows, layer.weight, optimize=True)
    return np.maximum(out + layer.bias[:, None, None], 0)


def _pool(x: np.ndarray) -> np.ndarray:
    c, h, w = x.shape
    return x[:, : h // 2 * 2, : w // 2 * 2].reshape(c, h // 2, 2, w // 2, 2).max(axis=(2, 4))


def _reference(network: mcnn.Mcnn, grey: np.ndarray) -> np.ndarray:
    columns = []
    for column in network.columns:
        x = grey[None].astype(np.float64)
        for layer, pool in zip(column, mcnn.POOL_AFTER, strict=True):
            x = _conv_relu(x, layer)
            x = _pool(x) if pool else x
        columns.append(x)
    return _conv_relu(np.concatenate(columns), network.fuse)[0]


@pytest.mark.parametrize("part", ["A", "B"])
def test_onnx_port_matches_a_direct_numpy_convolution(part: str) -> None:
    source = shared_file(f"{MODELS}/{mcnn.SOURCE_FILES[part]}")
    network = mcnn.read_mcnn(source)
    rgb = np.asarray(Image.open(shared_file(DENSE)).convert("RGB"))[432:530, 160:290]
    grey = mcnn.grey_plane(rgb)[0, 0]  # 98 x 130 px of the densest part of the crowd
    expected = _reference(network, grey)
    session = mcnn.onnx_session(mcnn.onnx_path(part, source))  # type: ignore[arg-type]
    got = session.run(None, {mcnn.INPUT_NAME: grey[None, None]})[0][0, 0]
    assert got.shape == (24, 32) == expected.shape
    assert expected.sum() > 5 and (expected > 0).mean() > 0.1  # heads found, not all clipped
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-3 * expected.max())


def test_grey_plane_is_the_bt601_luma_in_0_255() -> None:
    rgb = np.random.default_rng(3).integers(0, 256, (5, 7, 3)).astype(np.uint8)
    plane = mcnn.grey_plane(rgb)
    luma = rgb @ np.array([0.299, 0.587, 0.114])
    assert plane.shape == (1, 1, 5, 7) and plane.dtype == np.float32
    assert np.abs(plane[0, 0] - luma).max() <= 0.51


def test_conversion_is_cached_and_redone_when_the_file_changes(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    source = shared_file(f"{MODELS}/{mcnn.SOURCE_FILES['B']}")
    monkeypatch.setenv("KAO_CACHE", str(tmp_path))
    path = mcnn.onnx_path("B", source)
    stamp = path.stat().st_mtime_ns
    assert mcnn.onnx_path("B", source) == path and path.stat().st_mtime_ns == stamp
    path.write_bytes(b"damaged")
    assert mcnn.onnx_path("B", source) == path and path.read_bytes() != b"damaged"
    record = json.loads(path.with_name(path.name + ".json").read_text())
    assert record["converter"] == mcnn.CONVERTER_VERSION


def test_a_file_that_is_not_mcnn_is_refused(tmp_path: Path) -> None:
    text = tmp_path / "notes.h5"
    text.write_text("not HDF5")
    with pytest.raises(ModelError, match="cannot read as HDF5"):
        mcnn.read_mcnn(text)
    wrong = tmp_path / "wrong.h5"
    with h5py.File(wrong, "w") as h5:
        h5["DME.branch1.0.conv.weight"] = np.zeros((16, 3, 9, 9), np.float32)
        h5["DME.branch1.0.conv.bias"] = np.zeros(16, np.float32)
    with pytest.raises(ModelError, match=r"DME.branch1.0.conv has weight \(16, 3, 9, 9\)"):
        mcnn.read_mcnn(wrong)


def test_a_dense_crowd_counts_hundreds(counter: CrowdCounter) -> None:
    result = counter.count(shared_file(DENSE))
    assert result.method == "density-A"
    assert 700 < result.count < 2500
    assert result.density is not None and result.density.shape == (192, 256)


@pytest.mark.parametrize(
    ("scene", "method"),
    [
        (DENSE, "density-A"),  # dense crowd: MCNN-A counts over RULE.dense_count
        (MALL, "trained-mall"),  # surveillance from above: MCNN-A counts few
        ("data/crowd/mall_train/images/seq_000001.jpg", "trained-mall"),  # 29 people
        ("data/crowd/shanghaitech_B_train/images/IMG_105.jpg", RULE.sparse),  # street, 129
        (CLOSE_UP, "detection"),  # group photo: three large faces
    ],
)
def test_the_rule_on_real_scenes(counter: CrowdCounter, scene: str, method: str) -> None:
    result = counter.count(shared_file(scene))
    assert result.method == method
    assert 0 <= result.low < result.count < result.high
    record = result.to_dict()
    assert record["range"][0] <= record["count"] <= record["range"][1]
    if method == "detection":
        assert result.count == len(result.faces) == 3 and result.density is None
    else:
        assert result.density is not None and result.density.sum() == pytest.approx(result.count)


def _estimates(faces: int, height: float, a: float, trained: float = 7.0) -> Estimates:
    """Estimates with `faces` detected faces `height` px tall, MCNN maps summing to `a` (A)
    and 1.0 (B) and trained maps summing to `trained`: the rule's inputs without running any
    network."""
    box = np.array([0, 0, height, height], np.float32)
    detected = [Face(box=box, score=0.9, keypoints=np.zeros((5, 2), np.float32))] * faces
    maps = {"density-A": np.full((2, 2), a / 4, np.float32)}
    maps["density-B"] = np.full((2, 2), 0.25, np.float32)
    maps |= {method: np.full((1, 1), trained, np.float32) for method in TRAINED}
    return Estimates(CrowdCounter(), np.zeros((8, 8, 3), np.uint8), detected, maps)


def test_the_rule() -> None:
    large = 2 * RULE.min_face
    sparse = _estimates(0, 0.0, 40.0).count(RULE.sparse)
    assert _estimates(5, large, 40.0).choice() == "detection"
    assert _estimates(5, large, 40.0).choice("density") == "density-B"
    assert _estimates(5, RULE.min_face / 2, 40.0).choice() == RULE.sparse
    assert _estimates(5, RULE.min_face / 2, 40.0).count("auto") == sparse
    assert _estimates(RULE.max_faces + 1, large, 40.0).choice() == RULE.sparse
    assert _estimates(500, large, RULE.dense_count + 10).choice() == "density-A"
    assert _estimates(5, large, RULE.crowd_count + 10).choice() == "density-A"
    assert _estimates(5, large, 40.0).choice("detection") == "detection"
    assert _estimates(5, large, 40.0).count("density-A") == pytest.approx(40.0)
    for method in TRAINED:
        assert _estimates(5, large, 40.0, 12.5).choice(method) == method
        assert _estimates(5, large, 40.0, 12.5).count(method) == pytest.approx(12.5)
    with pytest.raises(KaoError, match="unknown counting method"):
        _estimates(5, large, 40.0).choice("magic")
    with pytest.raises(KaoError, match="not a density method"):
        _estimates(5, large, 40.0).density("detection")


def test_method_choices_are_the_rule_the_mcnn_rule_and_every_source() -> None:
    assert ("auto", "density", *CHOICES) == METHOD_CHOICES
    assert {"density-A", "density-B", "detection", "trained-mall"} <= set(CHOICES)
    assert RULE.sparse in CHOICES and RULE.sparse != "detection"


@pytest.mark.parametrize("method", CHOICES)
def test_the_range_holds_the_estimate_and_grows_with_it(method: str) -> None:
    previous = (0.0, 0.0)
    for estimate in (0.0, 0.4, 3.0, 30.0, 300.0, 3000.0):
        low, high = interval(method, estimate)
        assert 0.0 <= low <= estimate <= high
        assert low >= previous[0] and high >= previous[1] and high > low
        previous = (low, high)
    assert interval(method, 10.0, {method: (-0.5, 0.5)}) == pytest.approx(
        (11 * np.exp(-0.5) - 1, 11 * np.exp(0.5) - 1)
    )
    with pytest.raises(KaoError, match="unknown counting method"):
        interval("magic", 10.0)


def test_too_small_an_image_is_an_image_error(counter: CrowdCounter) -> None:
    with pytest.raises(ImageError, match="too small to count"):
        counter.estimates(np.zeros((3, 40, 3), np.uint8))


def test_kao_count_json_heat_map_and_a_corrupt_image(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mall = shared_file(MALL)
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8 not really a jpeg")
    out = tmp_path / "out"
    code = main(
        ["count", str(corrupt), str(mall), "--json", "--out", str(out), "--method", "density"]
    )
    assert code == 1
    records = json.loads(capsys.readouterr().out)
    assert records[0]["image"] == str(corrupt) and "error" in records[0]
    record = records[1]
    assert set(record) == {
        "image",
        "width",
        "height",
        "count",
        "estimate",
        "range",
        "method",
        "annotated",
    }
    assert record["method"] == "density-B" and record["count"] == round(record["estimate"])
    low, high = record["range"]
    assert low <= record["estimate"] <= high and low < high
    with Image.open(record["annotated"]) as drawn:
        assert drawn.size == (640, 480)
        pixels = np.asarray(drawn.convert("RGB"), np.int16)
    original = np.asarray(Image.open(mall).convert("RGB"), np.int16)
    assert np.abs(pixels - original).mean() > 2  # the heat map and caption are drawn


def test_the_heat_map_stands_out_where_the_density_is_high(counter: CrowdCounter) -> None:
    """On the mall photo a few peak pixels are 6x its 99th percentile: scaled to its maximum,
    the crowd stayed faint (60% of its pixels changed visibly); scaled to its range, nearly
    all do, and the empty floor keeps the photo."""
    rgb = load_image(shared_file(MALL))
    result = counter.count(rgb, "density")
    assert result.density is not None
    level = density_levels(result.density, *rgb.shape[:2])
    change = np.abs(heat_map(rgb, result.density).astype(np.int16) - rgb).sum(axis=2)
    crowd_part = level >= 0.25
    assert crowd_part.mean() > 0.01
    assert (change[crowd_part] > 60).mean() > 0.9
    empty = level < FLOOR
    assert empty.mean() > 0.5 and (change[empty] > 60).mean() < 0.01


def test_kao_count_without_the_model_names_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = tmp_path / "blank.png"
    Image.new("RGB", (64, 48)).save(image)
    monkeypatch.delenv("KAO_MODELS", raising=False)
    monkeypatch.setenv("KAO_OFFLINE", "1")
    monkeypatch.setenv("KAO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(store, "_mirror_candidates", list)
    assert main(["count", str(image), "--method", "density"]) == 1
    assert "mcnn_shtechA_660.h5" in capsys.readouterr().err


def test_datasets_in_every_layout(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "images" / "a.jpg")
    (tmp_path / "gt.json").write_text(json.dumps({"a.jpg": 7}))
    assert crowd.load_dataset(tmp_path) == [crowd.CrowdImage(tmp_path / "images/a.jpg", "a.jpg", 7)]
    sample = crowd.load_dataset(shared_file("data/crowd_sample/ShanghaiTech/part_B/train_data"))
    assert len(sample) == 30 and min(im.count for im in sample) >= 3
    assert max(im.count for im in sample) <= 60
    with pytest.raises(KaoError, match="no annotated images"):
        crowd.load_dataset(tmp_path / "images")


def test_scores() -> None:
    result = crowd.scores([10, 20, 40], [12, 15, 40])
    assert result["mae"] == pytest.approx(7 / 3, abs=0.01)
    assert result["mean_relative_error"] == pytest.approx((0.2 + 0.25) / 3, abs=1e-4)
    assert result["bias"] == pytest.approx(-1.0)
