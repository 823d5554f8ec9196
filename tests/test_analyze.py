"""`kao.analyze` and `kao analyze` end to end on real photos: every attribute, the text and
JSON forms, crops, annotated copies and bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import kao
from kao.cli import main
from kao.face import ANALYSIS_KEYS, DETECTION_KEYS, EMOTIONS
from kao.quality import MIN_SIZE
from tests.conftest import shared_file

PORTRAIT = "data/lfw/lfw-deepfunneled/Aaron_Peirsol/Aaron_Peirsol_0001.jpg"
GROUP = "data/widerface_val_subset/images/0_Parade_Parade_0_194.jpg"  # 5 faces
CROP = "data/utkface/100_1_0_20170112213001988.jpg.chip.jpg"  # a 100-year-old woman


def test_analyze_sets_every_attribute() -> None:
    (face,) = kao.analyze(shared_file(PORTRAIT))
    assert face.mesh is not None and face.mesh.shape == (468, 3)
    assert face.iris is not None and face.iris.shape == (10, 3)
    assert face.landmarks_68 is not None and face.landmarks_68.shape == (68, 2)
    assert face.pose is not None and face.gaze is not None
    assert face.age is not None and 10 < face.age < 60
    assert face.gender is not None and face.gender.label == "male"
    assert face.emotion is not None and set(face.emotion) == set(EMOTIONS)
    assert sum(face.emotion.values()) == pytest.approx(1, abs=1e-4)
    assert face.mask is not None and face.mask.label == "no_mask"
    x1, y1, x2, y2 = face.box
    inside = (face.landmarks_68 >= [x1 - 10, y1 - 10]) & (face.landmarks_68 <= [x2 + 10, y2 + 10])
    assert inside.all()


def test_an_array_is_read_in_place_and_left_unchanged() -> None:
    rgb = kao.load_image(shared_file(GROUP))
    before = rgb.copy()
    rgb.flags.writeable = False  # writing into the caller's array would raise
    assert len(kao.analyze(rgb)) == 5 and len(kao.detect(rgb)) == 5 and kao.embed(rgb)
    assert np.array_equal(rgb, before)


def test_accurate_reads_more_views_and_agrees_with_the_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    (plain,) = kao.analyze(shared_file(PORTRAIT))
    (accurate,) = kao.FaceAnalyzer(accurate=True).analyze(shared_file(PORTRAIT))
    np.testing.assert_array_equal(accurate.box, plain.box)
    assert accurate.age is not None and plain.age is not None
    assert accurate.age != plain.age and abs(accurate.age - plain.age) < 5
    assert accurate.gender is not None and plain.gender is not None
    assert accurate.gender.label == plain.gender.label
    assert accurate.emotion is not None and plain.emotion is not None
    assert accurate.emotion != plain.emotion
    assert sum(accurate.emotion.values()) == pytest.approx(1, abs=1e-4)
    assert max(accurate.emotion, key=accurate.emotion.get) == max(
        plain.emotion, key=plain.emotion.get
    )
    assert main(["analyze", str(shared_file(PORTRAIT)), "--accurate", "--json"]) == 0
    (record,) = json.loads(capsys.readouterr().out)
    assert record["faces"][0]["age"] == pytest.approx(accurate.age, abs=0.05)


def test_every_face_of_a_group_photo_is_analysed() -> None:
    """Each attribute of each of the 5 faces (26 to 45 px) is read, or left null because the
    face is under the attribute's minimum size (`kao.quality.MIN_SIZE`)."""
    faces = kao.analyze(shared_file(GROUP))
    assert len(faces) == 5
    for face in faces:
        assert face.quality is not None and face.missing is not None
        for key, least in MIN_SIZE.items():
            assert (getattr(face, key) is None) == (face.quality.size < least)
            assert (key in face.missing) == (face.quality.size < least)
    assert sum(face.emotion is not None for face in faces) >= 4


def test_small_faces_finds_more_of_a_small_crowd(capsys: pytest.CaptureFixture[str]) -> None:
    """The 416 px WIDER subset photo of a parade: `--small-faces` adds the up-scaled pass that
    the analysis detector leaves out, and its smallest faces."""
    crowd = str(shared_file("data/widerface_val_subset/images/0_Parade_Parade_0_102.jpg"))
    counts = []
    for extra in ([], ["--small-faces"]):
        assert main(["analyze", crowd, "--json", *extra]) == 0
        (record,) = json.loads(capsys.readouterr().out)
        counts.append(len(record["faces"]))
    assert counts[1] >= counts[0] + 5


def test_cropped_reads_the_image_as_one_face() -> None:
    path = shared_file(CROP)
    (face,) = kao.analyze(path, cropped=True)
    width, height = Image.open(path).size
    assert face.box.tolist() == [0, 0, width, height]
    assert face.age is not None and face.age > 50
    assert face.gender is not None and face.gender.label == "female"


def test_json_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code = main(["analyze", str(shared_file(PORTRAIT)), "--json", "--mesh", "--out", str(out)])
    assert code == 0
    (record,) = json.loads(capsys.readouterr().out)
    (face,) = record["faces"]
    expected = {"age", "gender", "emotion", "mask", "pose", "gaze", "landmarks_68", "mesh"}
    assert expected <= set(face)
    assert list(face["emotion"]) == list(EMOTIONS)
    assert set(face["gender"]) == {"label", "score"} and set(face["mask"]) == {"label", "score"}
    assert set(face["pose"]) == {"yaw", "pitch", "roll"}
    assert len(face["landmarks_68"]) == 68 and len(face["mesh"]) == 468
    quality = face["quality"]
    assert quality["pose_from"] == "mesh" and quality["landmarks"] is True
    assert quality["yaw"] == pytest.approx(face["pose"]["yaw"], abs=0.1)
    assert 0 < quality["score"] <= 1 and quality["size"] > 64
    annotated = np.asarray(Image.open(record["annotated"]))
    assert annotated.shape == (250, 250, 3)
    assert not np.array_equal(annotated, np.asarray(Image.open(shared_file(PORTRAIT))))


def test_text_output_prints_the_seven_emotions_in_order(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", str(shared_file(PORTRAIT))]) == 0
    text = capsys.readouterr().out
    line = next(line for line in text.splitlines() if "Angry:" in line)
    names = [part.split(":")[0] for part in line.split()[::2]]
    assert names == [name.capitalize() for name in EMOTIONS]
    assert "emotion: " in text and "pose: yaw" in text and "gender male" in text


def test_bad_input_is_reported_and_the_rest_done(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 truncated")
    blank = tmp_path / "blank.png"
    Image.new("RGB", (320, 240), (128, 128, 128)).save(blank)
    code = main(["analyze", str(broken), str(blank), str(shared_file(PORTRAIT)), "--json"])
    assert code == 1
    records = json.loads(capsys.readouterr().out)
    assert "error" in records[0] and records[1]["faces"] == [] and len(records[2]["faces"]) == 1


REJECTED = "data/widerface_val_subset/images/1_Handshaking_Handshaking_1_313.jpg"
"""Two faces: FaceMesh reads the first (best score) and does not see the second, a man seen
from above, as a face."""


def test_every_analysis_record_has_every_key_with_a_reason_for_each_null() -> None:
    read, rejected = kao.analyze(shared_file(REJECTED))
    assert read.mesh is not None and read.missing == {}
    assert rejected.mesh is None and rejected.pose is None and rejected.age is not None
    records = [face.to_dict(mesh=True) for face in (read, rejected)]
    expected = {*DETECTION_KEYS, *ANALYSIS_KEYS, "mesh", "iris", "missing"}
    assert set(records[0]) == set(records[1]) == expected
    assert records[0]["missing"] == {}
    nulls = {key for key, value in records[1].items() if value is None}
    assert nulls == {"pose", "gaze", "landmarks_68", "mesh", "iris"} == set(records[1]["missing"])
    assert records[1]["missing"]["landmarks_68"].startswith(
        "FaceMesh does not see a face in this box (presence 0."
    )
    assert records[1]["missing"]["pose"].startswith("needs the landmarks; FaceMesh")
    assert set(rejected.to_dict()) == expected - {"mesh", "iris"}  # without the mesh asked for
    assert set(kao.detect(shared_file(REJECTED))[1].to_dict()) == set(DETECTION_KEYS)


def test_a_crop_facemesh_rejects_keeps_every_key(tmp_path: Path) -> None:
    grey = tmp_path / "grey.png"
    Image.new("RGB", (120, 120), (128, 128, 128)).save(grey)
    (face,) = kao.analyze(grey, cropped=True)
    record = face.to_dict()
    assert set(record) == {*DETECTION_KEYS, *ANALYSIS_KEYS, "missing"}
    assert record["gender"] is not None and record["landmarks_68"] is None
    assert record["missing"]["age"].startswith("face too blurred to read (sharpness 0.00")
    assert "no face in this crop" in record["missing"]["landmarks_68"]


def test_text_gives_the_reason_for_what_is_missing(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", str(shared_file(REJECTED))]) == 0
    text = capsys.readouterr().out
    second = text[text.index("  face 2:") :]
    assert "pose: yaw" not in second and "age " in second
    assert "    no pose, gaze: needs the landmarks; FaceMesh does not see a face" in second
    assert "    no landmarks_68: FaceMesh does not see a face" in second
    assert "no pose" not in text[: text.index("  face 2:")]


def test_a_young_childs_withheld_gender_says_why() -> None:
    """A UTKFace 2-year-old: the model is not sure of the gender, which is None with the reason
    (not the generic "not computed")."""
    (face,) = kao.analyze(shared_file("data/utkface/2_0_0_20161219162303390.jpg.chip.jpg"))
    assert face.age is not None and face.age < 12
    assert face.gender is None and face.missing["gender"].startswith("child (estimated")
