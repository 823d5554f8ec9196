"""Face aging: the committed prototypes, the transform on real faces (face changed, background
kept, estimated age moved the right way), the grid and `kao age-transform`'s errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kao.aging import BANDS, age_grid, age_transform, load_prototypes
from kao.aging.warp import FRAME_SIZE
from kao.cli import main
from kao.cli.aging import parse_ages
from kao.detection import FaceDetector
from kao.errors import KaoError
from kao.image import load_image
from kao.landmarks import FaceMesh
from tests.conftest import shared_file

LFW_PHOTO = "data/lfw/lfw-deepfunneled/George_W_Bush/George_W_Bush_0007.jpg"
UTK_MAN = "data/utkface/30_0_0_20170104201459001.jpg.chip.jpg"


def _meshed(relative: str):
    rgb = load_image(shared_file(relative))
    faces = FaceDetector().detect(rgb)
    face = max(faces, key=lambda f: f.area)
    (face,) = FaceMesh(iris=False).run(rgb, [face])
    assert face.mesh is not None
    return rgb, face


@pytest.fixture(scope="module")
def photo():
    return _meshed(LFW_PHOTO)


def test_prototypes_have_the_documented_bands_and_shapes() -> None:
    prototypes = load_prototypes()
    assert [tuple(b) for b in prototypes.bands] == list(BANDS)
    bands = len(BANDS)
    assert prototypes.shapes.shape == (bands, 468, 2)
    assert prototypes.mean_shape.shape == (468, 2)
    assert prototypes.textures.shape == (bands, FRAME_SIZE, FRAME_SIZE, 3)
    assert (prototypes.counts >= 200).all()
    assert prototypes.labels[0] == "0-5" and prototypes.labels[-1] == "70+"
    # Every mean shape lies in the frame; children's faces are shorter below the eyes than
    # adults' (the chin is nearer the eyes in the eye-normalised frame).
    assert (prototypes.shapes > 0).all() and (prototypes.shapes < FRAME_SIZE).all()
    chin = 152
    assert prototypes.shapes[0, chin, 1] < prototypes.shapes[4, chin, 1]
    assert 0 < prototypes.textures.mean() < 255


def test_band_of_an_age() -> None:
    prototypes = load_prototypes()
    assert prototypes.labels[prototypes.band_index(8)] == "6-12"
    assert prototypes.labels[prototypes.band_index(85)] == "70+"
    with pytest.raises(KaoError, match="outside"):
        prototypes.band_index(-3)


def test_transform_changes_the_face_and_keeps_the_background(photo) -> None:
    rgb, face = photo
    old = age_transform(rgb, face, source_age=55, target_age=80)
    young = age_transform(rgb, face, source_age=55, target_age=10)
    assert old.shape == rgb.shape and old.dtype == np.uint8
    x1, y1, x2, y2 = (int(v) for v in face.box)
    inner = (slice(y1 + (y2 - y1) // 4, y2 - (y2 - y1) // 4), slice(x1 + 10, x2 - 10))
    for aged in (old, young):
        change = np.abs(aged[inner].astype(int) - rgb[inner].astype(int)).mean()
        assert change > 2.0
        # The far background (a 30-pixel border all round the 250 x 250 photo) is untouched.
        mask = np.ones(rgb.shape[:2], bool)
        mask[30:-30, 30:-30] = False
        assert np.array_equal(aged[mask], rgb[mask])
    same = age_transform(rgb, face, source_age=55, target_age=58)
    assert np.array_equal(same, rgb)


def test_estimated_age_moved_to_80_is_higher_than_moved_to_10(photo) -> None:
    pytest.importorskip("dlib")
    from kao.attributes.age_gender import AgeGender

    model = AgeGender()
    for rgb, face in (photo, _meshed(UTK_MAN)):
        (before,) = model.predict(rgb, [face])
        ages = {}
        for target in (10, 80):
            aged = age_transform(rgb, face, source_age=before.age, target_age=target)
            (result,) = model.predict(aged, [face])
            ages[target] = result.age
        assert ages[80] > ages[10] + 5


def test_grid_has_one_tile_per_age_after_the_original(photo) -> None:
    rgb, face = photo
    grid = age_grid(rgb, face, [10, 40, 80], source_age=55, tile=64)
    assert grid.shape == (64, 4 * 64, 3)
    wrapped = age_grid(rgb, face, [10, 40, 80], source_age=55, tile=64, columns=3)
    assert wrapped.shape == (2 * 64, 3 * 64, 3)
    assert (wrapped[64:, 64:] == 255).all()  # the two unused cells are white


def test_cli_writes_the_grid(tmp_path: Path, capsys) -> None:
    out = tmp_path / "grid.png"
    image = str(shared_file(LFW_PHOTO))
    args = ["age-transform", image, "--ages", "10,80", "--out", str(out), "--tile", "96"]
    assert main([*args, "--from-age", "50", "--json"]) == 0
    assert Image.open(out).size == (3 * 96, 96)
    assert '"source_band": "50-59"' in capsys.readouterr().out


def test_parse_ages() -> None:
    assert parse_ages("10, 20,40") == [10.0, 20.0, 40.0]
    with pytest.raises(KaoError, match="not a number"):
        parse_ages("10,old")
    with pytest.raises(KaoError, match="outside"):
        parse_ages("10,200")


@pytest.mark.parametrize("kind", ["no_face", "bad_ages", "bad_from_age"])
def test_errors_exit_1(tmp_path: Path, capsys, kind: str) -> None:
    image = tmp_path / "input.png"
    out = tmp_path / "grid.png"
    args = ["age-transform", str(image), "--out", str(out), "--from-age", "30"]
    if kind == "no_face":
        Image.fromarray(np.full((200, 200, 3), 128, np.uint8)).save(image)
        expected = "no face"
    elif kind == "bad_ages":
        image = shared_file(LFW_PHOTO)
        args = ["age-transform", str(image), "--out", str(out), "--ages", "10,,80"]
        expected = "--ages"
    else:
        image = shared_file(LFW_PHOTO)
        args = ["age-transform", str(image), "--out", str(out), "--from-age", "-4"]
        expected = "--from-age"
    assert main(args) == 1
    assert expected in capsys.readouterr().err
    assert not out.exists()


def test_builder_averages_one_face_per_band() -> None:
    from kao.aging.prototypes import PrototypeBuilder, band_of, frame_shape
    from kao.evaluation.utkface import load_faces

    faces, _ = load_faces(shared_file("data/utkface_train"))
    bands = np.array(BANDS)
    firsts = {}
    for item in faces:
        firsts.setdefault(band_of(bands, item.age), item)
    mesher = FaceMesh(iris=False)
    builder = PrototypeBuilder()
    meshes = []
    for band in range(len(BANDS)):
        rgb = load_image(firsts[band].path)
        mesh = mesher.run_cropped(rgb).mesh
        assert builder.add_shape(mesh, firsts[band].age)
        builder.add_texture(band, rgb, mesh)
        meshes.append(mesh)
    assert not builder.add_shape(meshes[0], 150)  # in no band: not counted
    built = builder.finish()
    assert list(built.counts) == [1] * len(BANDS)
    np.testing.assert_allclose(built.shapes[3], frame_shape(meshes[3]), atol=1e-4)
    np.testing.assert_allclose(built.mean_shape, np.mean(built.shapes, axis=0), atol=1e-3)
    assert (
        built.textures.max() <= 255 and (built.textures.reshape(len(BANDS), -1).std(1) > 10).all()
    )


def test_summary_of_moves() -> None:
    from kao.evaluation.aging import summarise

    prototypes = load_prototypes()
    rows = [
        {
            "target": 10.0,
            "before": 30.0,
            "same_band": False,
            "found": True,
            "after": 20.0,
            "same": True,
            "distance": 0.2,
        },
        {
            "target": 80.0,
            "before": 30.0,
            "same_band": False,
            "found": True,
            "after": 50.0,
            "same": False,
            "distance": 0.5,
        },
        {"target": 80.0, "before": 70.0, "same_band": True, "found": False},
    ]
    report = summarise(
        rows, [(28, 30.0), (75, 70.0)], (10.0, 80.0), prototypes.labels, prototypes.band_index
    )
    assert report["moved_toward_target"] == 1.0
    assert report["verified_same_person"] == pytest.approx(1 / 3, abs=1e-4)
    assert report["correlation_target_vs_estimated"] == 1.0
    old = report["targets"][1]
    assert old["band"] == "70+" and old["mean_estimated_age"] == 50.0
    assert old["face_found_after"] == 0.5 and old["faces_moved"] == 1
