"""`kao.quality`: the parts of a face's quality on a real face and on the same face blurred,
darkened, shrunk and turned, and the attributes left unread on faces too small to read them
(Python, JSON, text and drawings)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

import kao
from kao.cli import main
from kao.detection import analysis_detector
from kao.evaluation.fer2013 import shrunk_faces, size_curve
from kao.evaluation.utkface import shrink
from kao.evaluation.utkface import size_curve as utkface_curve
from kao.face import Face
from kao.quality import (
    MIN_PARTS,
    MIN_SIZE,
    face_quality,
    keypoint_pose,
    rated,
    too_small,
    unreadable,
)
from kao.render import caption
from tests.conftest import shared_file

PORTRAIT = "data/lfw/lfw-deepfunneled/Aaron_Peirsol/Aaron_Peirsol_0001.jpg"
TINY_FACES = "data/widerface_val_subset/images/2_Demonstration_Demonstration_Or_Protest_2_771.jpg"
"""A street photo (416 px): one face about 40 px, three under 14 px."""
ATTRIBUTES = ("age", "gender", "emotion", "mask")


@pytest.fixture(scope="module")
def portrait() -> tuple[np.ndarray, Face]:
    rgb = kao.load_image(shared_file(PORTRAIT))
    (face,) = analysis_detector().detect(rgb)
    return rgb, face


def test_a_sharp_face_reads_well_and_its_parts_are_in_range(
    portrait: tuple[np.ndarray, Face],
) -> None:
    rgb, face = portrait
    quality = face_quality(rgb, face)
    assert quality.size == pytest.approx(min(face.width, face.height))
    assert quality.size > 64 and quality.sharpness > 0.5 and quality.exposure > 0.9
    assert quality.pose_from == "keypoints" and not quality.landmarks  # no mesh on a bare Face
    assert abs(quality.yaw) < 20 and 0 < quality.score <= 1
    record = quality.to_dict()
    assert set(record) == {f.name for f in dataclasses.fields(quality)}
    json.dumps(record)


def test_a_detection_record_carries_the_quality_analysis_gives(
    portrait: tuple[np.ndarray, Face], capsys: pytest.CaptureFixture[str]
) -> None:
    rgb, face = portrait
    (detected,) = kao.detect(shared_file(PORTRAIT))
    (rated_face,) = rated(rgb, [face])  # kao.analyze's detector, so kao.analyze's box
    (analysed,) = kao.analyze(shared_file(PORTRAIT))
    assert detected.quality is not None and rated_face.quality is not None
    assert analysed.quality is not None and analysed.quality.landmarks is True
    assert detected.quality.landmarks is None and rated_face.quality.landmarks is None
    for part in ("size", "sharpness", "exposure"):
        assert getattr(rated_face.quality, part) == pytest.approx(getattr(analysed.quality, part))
    assert main(["detect", str(shared_file(PORTRAIT))]) == 0
    text = capsys.readouterr().out
    assert f"quality {detected.quality.score:.2f} (size" in text and "no landmarks" not in text


def test_blur_lowers_sharpness(portrait: tuple[np.ndarray, Face]) -> None:
    rgb, face = portrait
    sharp = face_quality(rgb, face)
    blurred = face_quality(cv2.GaussianBlur(rgb, (0, 0), 2.5), face)
    assert blurred.sharpness < sharp.sharpness - 0.25
    assert blurred.exposure == pytest.approx(sharp.exposure, abs=0.05)
    assert blurred.score < sharp.score


def test_darkness_lowers_exposure(portrait: tuple[np.ndarray, Face]) -> None:
    rgb, face = portrait
    sharp = face_quality(rgb, face)
    dark = face_quality((rgb * 0.2).astype(np.uint8), face)
    assert sharp.exposure > 0.9 and dark.exposure < 0.5
    assert dark.score <= dark.exposure and dark.weakest in ("exposure", "sharpness")


def test_shrinking_lowers_size_and_score(portrait: tuple[np.ndarray, Face]) -> None:
    rgb, face = portrait
    sharp = face_quality(rgb, face)
    small_rgb, small_face = shrink(rgb, face, 16)
    small = face_quality(small_rgb, small_face)
    assert small.size == pytest.approx(16, abs=0.5)
    assert small.sharpness < sharp.sharpness - 0.3
    assert small.score < 0.1 and small.weakest == "size"


def test_keypoint_yaw_follows_the_mesh_and_flips_with_a_mirror() -> None:
    rgb = kao.load_image(shared_file(PORTRAIT))
    (face,) = kao.analyze(rgb)
    assert face.quality is not None and face.quality.pose_from == "mesh"
    assert face.quality.landmarks and face.pose is not None
    yaw, _ = keypoint_pose(face.keypoints)
    assert abs(yaw - face.pose.yaw) < 8
    mirrored = face.keypoints[[1, 0, 2, 4, 3]] * [-1, 1] + [rgb.shape[1], 0]
    assert keypoint_pose(mirrored)[0] == pytest.approx(-yaw, abs=1e-3)


def test_a_face_too_small_is_not_guessed_at(portrait: tuple[np.ndarray, Face]) -> None:
    """The same face shrunk to sizes between the attributes' minimum sizes: each attribute is
    read on the faces at least its minimum, and null with the reason on the others."""
    rgb, face = portrait
    analyzer = kao.FaceAnalyzer()
    limits = sorted(set(MIN_SIZE.values()))
    for side in [limits[0] - 4, *(limit + 4 for limit in limits)]:
        (shrunk,) = analyzer.analyze_faces(*_shrunk(rgb, face, side))
        assert shrunk.quality is not None and shrunk.quality.size == pytest.approx(side, abs=0.5)
        for key in ATTRIBUTES:
            unread = side < MIN_SIZE[key]
            assert (getattr(shrunk, key) is None) == unread, (side, key)
            reason = (shrunk.missing or {}).get(key)
            assert reason == too_small(shrunk, key)
            assert (reason == f"face under {MIN_SIZE[key]} px: too small to read") == unread
        assert caption(shrunk).endswith("too small") == (side < limits[0])


def _shrunk(rgb: np.ndarray, face: Face, side: int) -> tuple[np.ndarray, list[Face]]:
    small, scaled = shrink(rgb, face, side)
    return small, [scaled]


def test_kao_analyze_leaves_tiny_faces_unread(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(shared_file(TINY_FACES))
    assert main(["analyze", path, "--json"]) == 0
    (record,) = json.loads(capsys.readouterr().out)
    faces = record["faces"]
    tiny = [f for f in faces if f["quality"]["size"] < min(MIN_SIZE.values())]
    read = [f for f in faces if f["quality"]["size"] >= max(MIN_SIZE.values())]
    assert len(tiny) >= 2 and len(read) >= 1
    for face in tiny:
        assert all(face[key] is None for key in ATTRIBUTES)
        assert all(face["missing"][key].startswith("face under ") for key in ATTRIBUTES)
    for face in read:
        assert all(face[key] is not None for key in ATTRIBUTES)
    assert main(["analyze", path]) == 0
    text = capsys.readouterr().out
    limits = set(MIN_SIZE.values())  # one line per distinct minimum a face is under
    expected = sum(sum(f["quality"]["size"] < limit for limit in limits) for f in faces)
    assert expected >= 2 * len(tiny) and text.count(": too small to read") == expected
    assert text.count("    quality ") == len(faces)


def test_the_emotion_curve_falls_as_fer2013_faces_shrink(tmp_path: Path) -> None:
    """`kao.evaluation.fer2013.size_curve` on 300 public-test faces: the crops keep the
    emotion model's input size, and accuracy at 16 px falls well below full size."""
    with np.load(shared_file("data/fer2013/public_test.npz")) as data:
        subset = tmp_path / "subset.npz"
        np.savez(
            subset,
            images=data["images"][:300],
            labels=data["labels"][:300],
            classes=data["classes"],
        )
    assert shrunk_faces(np.zeros((2, 48, 48), np.uint8), 24).shape == (2, 96, 96)
    with pytest.raises(ValueError):
        shrunk_faces(np.zeros((1, 48, 48), np.uint8), 64)
    curve = size_curve(subset, sizes=(32, 16))
    assert curve["images"] == 300 and [row["size"] for row in curve["rows"]] == ["full", 32, 16]
    full, _, tiny = (row["accuracy"] for row in curve["rows"])
    assert full > 0.6 and tiny < full - 0.15


def test_the_age_gender_curve_reads_shrunk_utkface_faces() -> None:
    """`kao.evaluation.utkface.size_curve` on 20 UTKFace faces (every 200th): one row per size,
    the faces found at full size, ages read better at full size than at 16 px."""
    curve = utkface_curve(shared_file("data/utkface"), sizes=(48, 16), every=200)
    assert curve["faces"] + curve["left_out"] == 20 and curve["faces"] >= 18
    full, middle, tiny = curve["rows"]
    assert [full["size"], middle["size"], tiny["size"]] == ["full", 48, 16]
    assert full["age_mae"] < 9 and tiny["age_mae"] > full["age_mae"]
    assert full["gender_accuracy"] >= 0.8 and full["mask_call_rate"] <= 0.05


def test_a_small_ready_crop_is_read_by_the_same_minimums() -> None:
    """With `cropped=True` the face's size is the crop's: a UTKFace crop shrunk to 20 px gets
    gender and mask (minimum 16) but no age (24) or emotion (32); at 40 px, everything."""
    rgb = kao.load_image(shared_file("data/utkface/100_1_0_20170112213001988.jpg.chip.jpg"))
    for side in (20, 40):
        small = cv2.resize(rgb, (side, side), interpolation=cv2.INTER_AREA)
        (face,) = kao.analyze(small, cropped=True)
        assert face.quality is not None and face.quality.size == side
        for key in ATTRIBUTES:
            assert (getattr(face, key) is None) == (side < MIN_SIZE[key]), (side, key)


def test_a_dark_or_blurred_face_is_not_guessed_at(
    portrait: tuple[np.ndarray, Face], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """The portrait darkened and blurred past `MIN_PARTS`: age and emotion are null with the
    reason (gender holds in blur, so it is still read), in Python, the JSON and over HTTP."""
    rgb, face = portrait
    analyzer = kao.FaceAnalyzer()
    dark = (rgb * 0.1).astype(np.uint8)
    blurred = cv2.GaussianBlur(rgb, (0, 0), 6)
    (sharp,) = analyzer.analyze_faces(rgb, [face])
    assert all(getattr(sharp, key) is not None for key in ATTRIBUTES)
    (read,) = analyzer.analyze_faces(dark, [face])
    assert read.quality is not None and read.quality.exposure < MIN_PARTS["gender"]["exposure"]
    for key in ("age", "gender", "emotion"):
        assert getattr(read, key) is None and read.missing is not None
        assert read.missing[key].startswith("face too dark or too bright to read (exposure ")
    assert read.missing[key] == unreadable(read, key)
    assert read.mask is not None  # no exposure minimum of its own
    (read,) = analyzer.analyze_faces(blurred, [face])
    assert read.quality is not None and read.quality.size >= 64
    assert read.quality.sharpness < MIN_PARTS["age"]["sharpness"]
    assert read.age is None and read.emotion is None and read.gender is not None
    assert read.missing is not None and read.missing["age"].startswith("face too blurred")
    assert caption(read, ("age", "emotion")) == "unreadable"
    path = tmp_path / "dark.png"
    cv2.imwrite(str(path), cv2.cvtColor(dark, cv2.COLOR_RGB2BGR))
    assert main(["analyze", str(path), "--json"]) == 0
    (record,) = json.loads(capsys.readouterr().out)
    (cli,) = record["faces"]
    assert cli["age"] is None and cli["missing"]["age"].startswith("face too dark")
    from kao.server.app import create_app
    from kao.server.settings import Settings
    from tests.serving import local_client

    with local_client(create_app(Settings(db=str(tmp_path / "faces.db")))) as client:
        response = client.post("/v1/analyze", files={"image": ("dark.png", path.read_bytes())})
    assert response.status_code == 200, response.text
    (http,) = response.json()["faces"]
    assert http["age"] is None and http["missing"] == cli["missing"]


def test_the_quality_curves_fall_with_blur_and_darkness(capsys: pytest.CaptureFixture[str]) -> None:
    """`kao eval emotion --quality` on 120 FER2013 public-test faces and `kao eval age-gender
    --quality` on 10 UTKFace faces: one row per view, readings binned by the measured part, and
    the heaviest blur and darkness read worse than the faces as they are."""
    from kao.evaluation.fer2013 import Dataset, load_dataset, quality_curve

    data = load_dataset(shared_file("data/fer2013/public_test.npz"))
    emotion = quality_curve(Dataset(data.images[:120], data.labels[:120]))
    views = {row["view"]: row for row in emotion["views"]}
    assert emotion["faces"] == 120 and len(views) == 11
    assert views["blur 3"]["sharpness"] < views["original"]["sharpness"] - 0.4
    assert views["blur 3"]["accuracy"] < views["original"]["accuracy"] - 0.2
    assert views["light 0.1"]["exposure"] < 0.2 < 0.8 < views["original"]["exposure"]
    assert sum(row["n"] for row in emotion["exposure"]) == 120 * 6  # as they are, and 5 lights
    assert main(["eval", "age-gender", "--data", str(shared_file("data/utkface")), "--quality",
                 "--every", "400", "--offset", "3", "--json"]) == 0  # fmt: skip
    report = json.loads(capsys.readouterr().out)
    views = {row["view"]: row for row in report["views"]}
    assert report["faces"] >= 9 and "yaw" in report
    assert views["blur 6"]["age_mae"] > views["original"]["age_mae"]
    assert sum(race["n"] for race in report["withheld_by_race"].values()) == report["faces"]
