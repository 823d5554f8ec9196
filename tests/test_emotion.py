"""Emotion: kao's network (ONNX against the training run's reference, probabilities, crops of
any size, framing from a detected face, calibration), the mini-Xception baseline's conversion,
the held-out split, and `kao eval emotion`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import pytest

from kao.attributes import mini_xception
from kao.attributes.emotion import (
    TEMPERATURE,
    WEIGHTS,
    EmotionClassifier,
    resize_grey,
    softmax,
)
from kao.cli import main
from kao.errors import KaoError
from kao.evaluation import fer2013
from kao.evaluation.calibration import tempered
from kao.face import EMOTIONS, Face
from kao.image import load_image
from tests.conftest import shared_file

TRAIN = "data/fer2013/train.npz"
TEST = "data/fer2013/public_test.npz"
SMILE = "data/lfw/lfw-deepfunneled/Cameron_Diaz/Cameron_Diaz_0001.jpg"


@pytest.fixture(scope="module")
def classifier() -> EmotionClassifier:
    return EmotionClassifier()


@pytest.fixture(scope="module")
def public_test() -> fer2013.Dataset:
    return fer2013.load_dataset(shared_file(TEST))


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private KAO_CACHE for the module (one mini-Xception conversion shared by its tests)."""
    folder = tmp_path_factory.mktemp("kao-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KAO_CACHE", str(folder))
        yield folder


def first_of(data: fer2013.Dataset, emotion: str, count: int) -> np.ndarray:
    """The first `count` images labelled `emotion`, (count, 48, 48) uint8."""
    return data.images[np.flatnonzero(data.labels == EMOTIONS.index(emotion))[:count]]


def test_onnx_matches_the_training_runs_reference(classifier: EmotionClassifier) -> None:
    """ONNX Runtime on the committed 8-bit model gives nearly the probabilities, and the same
    classes, as PyTorch's float networks gave at export time for the train.npz images named in
    the model's metadata."""
    meta = {p.key: p.value for p in onnx.load(str(WEIGHTS)).metadata_props}
    indices = json.loads(meta["reference_indices"])
    reference = np.array(json.loads(meta["reference_logits"]), np.float32)
    with np.load(shared_file(TRAIN)) as data:
        images = data["images"][indices]
    grey = images[:, None].astype(np.float32)
    logits = classifier._session.run(["logits"], {"grey": grey})[0]
    assert logits.shape == (len(indices), len(EMOTIONS))
    np.testing.assert_allclose(softmax(logits), softmax(reference), atol=0.1)
    np.testing.assert_array_equal(logits.argmax(axis=1), reference.argmax(axis=1))


def test_probabilities_for_crops_of_any_size_and_colour(
    classifier: EmotionClassifier, public_test: fer2013.Dataset
) -> None:
    grey = public_test.images[0]
    big_rgb = np.repeat(np.kron(grey, np.ones((4, 4), np.uint8))[:, :, None], 3, axis=2)
    rgba = np.dstack([big_rgb[:100, :100], np.full((100, 100), 255, np.uint8)])
    results = classifier.classify([grey, big_rgb, rgba])
    assert len(results) == 3
    for result in results:
        assert list(result) == list(EMOTIONS)
        assert all(0.0 <= p <= 1.0 for p in result.values())
        assert sum(result.values()) == pytest.approx(1.0, abs=1e-5)
    # The same face as grey 48 x 48 or enlarged RGB: nearly the same answer.
    assert max(abs(results[0][k] - results[1][k]) for k in EMOTIONS) < 0.05
    assert classifier.classify([]) == []


def test_bad_crop_is_refused(classifier: EmotionClassifier) -> None:
    with pytest.raises(KaoError, match="uint8"):
        classifier.classify([np.zeros((48, 48), np.float32)])
    with pytest.raises(KaoError, match="channels"):
        resize_grey([np.zeros((48, 48, 2), np.uint8)], 48)


@pytest.mark.parametrize(("emotion", "at_least"), [("happy", 0.7), ("surprised", 0.7)])
def test_clear_fer2013_faces_get_their_label(
    classifier: EmotionClassifier, public_test: fer2013.Dataset, emotion: str, at_least: float
) -> None:
    """The two classes kao reads best (recall 0.87 and 0.82 on all of public_test; 23 of the
    first 30 of each): most of their first 30 test images are labelled right."""
    results = classifier.classify(list(first_of(public_test, emotion, 30)))
    right = sum(max(r, key=r.__getitem__) == emotion for r in results)
    assert right / len(results) >= at_least


def test_a_smile_in_a_photo_is_happy(classifier: EmotionClassifier) -> None:
    """The crop of a detected face is framed like FER2013 (96 x 96 RGB, halved by `classify`)
    and a broad smile reads as happy."""
    import kao

    rgb = load_image(shared_file(SMILE))
    faces = kao.detect(rgb)
    assert faces
    crop = classifier.crop(rgb, faces[0])
    assert crop.shape == (96, 96, 3)
    assert crop.dtype == np.uint8
    (result,) = classifier.predict(rgb, faces[:1])
    assert max(result, key=result.__getitem__) == "happy"


def test_crop_of_a_fer2013_face_keeps_its_framing(
    classifier: EmotionClassifier, public_test: fer2013.Dataset
) -> None:
    """A face box as the detector draws it on a FER2013 image (the image is ~0.9 of the box's
    height) gives back about the whole image."""
    grey = public_test.images[0]
    rgb = np.repeat(np.kron(grey, np.ones((4, 4), np.uint8))[:, :, None], 3, axis=2)
    side = 192 / 0.9
    box = np.array([96 - 0.38 * side, 96 - side / 2, 96 + 0.38 * side, 96 + side / 2], np.float32)
    face = Face(box=box, score=1.0, keypoints=np.zeros((5, 2), np.float32))
    crop = resize_grey([classifier.crop(rgb, face)], 48)[0].astype(np.float32)
    assert np.abs(crop - grey).mean() < 6.0


def test_mini_xception_conversion(cache: Path, public_test: fer2013.Dataset) -> None:
    """The converted baseline is cached, gives probabilities in kao's order, and is as accurate
    as published (66%; 65% on all of public_test) on 300 test images."""
    path = mini_xception.onnx_path()
    assert path.is_relative_to(cache)
    assert mini_xception.onnx_path() == path
    model = mini_xception.MiniXception()
    probs = model.probabilities(public_test.images[:300])
    assert probs.shape == (300, len(EMOTIONS))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert (probs.argmax(axis=1) == public_test.labels[:300]).mean() >= 0.58
    happy = model.probabilities(first_of(public_test, "happy", 30)).argmax(axis=1)
    assert (happy == EMOTIONS.index("happy")).mean() >= 0.7


def test_eval_json(tmp_path: Path, public_test: fer2013.Dataset, capsys) -> None:
    data = tmp_path / "small.npz"
    labels = public_test.labels[:40].astype(np.int8)
    classes = np.array(["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"])
    np.savez(data, images=public_test.images[:40], labels=labels, classes=classes)
    assert main(["eval", "emotion", "--data", str(data), "--json", "--model", "all"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"] == "kao"
    assert report["images"] == 40
    assert list(report["per_class"]) == list(EMOTIONS)
    confusion = np.array(report["confusion"])
    assert confusion.shape == (7, 7)
    assert confusion.sum() == 40
    assert confusion.sum(axis=1).tolist() == np.bincount(labels, minlength=7).tolist()
    assert report["accuracy"] == pytest.approx(np.trace(confusion) / 40, abs=1e-4)
    baseline = report["baselines"]["mini_xception"]
    assert np.array(baseline["confusion"]).sum() == 40
    calibration = report["calibration"]
    assert calibration["temperature"] == TEMPERATURE
    for side in ("before", "after"):
        assert calibration[side]["accuracy"] == report["accuracy"]  # the same answers
        assert 0 <= calibration[side]["ece"] <= 1
    assert set(baseline["calibration"]) == {
        "ece",
        "confident_share",
        "confident_accuracy",
        "accuracy",
    }


def test_calibrated_probabilities_on_real_faces(
    classifier: EmotionClassifier, public_test: fer2013.Dataset
) -> None:
    """kao's probabilities are the network's, tempered by `TEMPERATURE`: the same answers,
    another confidence."""
    images = public_test.images[:20]
    raw = EmotionClassifier(temperature=1.0).probabilities(images)
    calibrated = classifier.probabilities(images)
    assert TEMPERATURE != 1.0  # fitted, not the identity
    np.testing.assert_allclose(calibrated, tempered(raw, TEMPERATURE), atol=1e-6)
    np.testing.assert_array_equal(calibrated.argmax(axis=1), raw.argmax(axis=1))
    np.testing.assert_allclose(calibrated.sum(axis=1), 1.0, atol=1e-5)
    assert not np.allclose(calibrated.max(axis=1), raw.max(axis=1), atol=1e-3)


def test_the_held_out_split_is_the_training_runs() -> None:
    """`validation_split` draws the 2,872 images the training log says were held out, a
    tenth of each class, apart from the training images."""
    with np.load(shared_file(TRAIN)) as data:
        labels = data["labels"].astype(np.int64)
    train, held = fer2013.validation_split(labels)
    log = json.loads((Path(__file__).parents[1] / "docs/training/emotion.json").read_text())
    assert (len(train), len(held)) == (log["train_images"], log["val_images"])
    assert not np.intersect1d(train, held).size
    counts = np.bincount(labels[held], minlength=7) / np.bincount(labels, minlength=7)
    np.testing.assert_allclose(counts, 0.1, atol=0.002)


def test_eval_of_a_bad_file(tmp_path: Path, capsys) -> None:
    text = tmp_path / "notes.npz"
    text.write_text("not numpy")
    assert main(["eval", "emotion", "--data", str(text)]) == 1
    assert "notes.npz: cannot read a FER2013 .npz" in capsys.readouterr().err
    partial = tmp_path / "partial.npz"
    np.savez(partial, images=np.zeros((2, 48, 48), np.uint8), labels=np.zeros(2, np.int8))
    with pytest.raises(KaoError, match="no classes array"):
        fer2013.load_dataset(partial)
    wrong = tmp_path / "wrong.npz"
    np.savez(
        wrong,
        images=np.zeros((2, 48, 48), np.uint8),
        labels=np.array([0, 9], np.int8),
        classes=np.array(["angry", "disgust", "fear", "happy", "neutral", "sad", "surprise"]),
    )
    with pytest.raises(KaoError, match="labels outside"):
        fer2013.load_dataset(wrong)
