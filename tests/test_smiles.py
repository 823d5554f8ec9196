"""Smiles in photos (`kao.evaluation.smiles`, `kao eval emotion --smiles`): the labelled
faces' file, the figures, and a photo of a smiling and a straight face read end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kao.attributes.emotion import EmotionClassifier
from kao.cli import main
from kao.detection import analysis_detector
from kao.evaluation import smiles
from kao.face import EMOTIONS
from tests.conftest import shared_file

SMILING = "data/lfw/lfw-deepfunneled/Cameron_Diaz/Cameron_Diaz_0001.jpg"
STRAIGHT = "data/lfw/lfw-deepfunneled/Vladimir_Putin/Vladimir_Putin_0031.jpg"


def test_the_labelled_faces() -> None:
    """Every labelled face is a face `candidates` can draw: in a smile event, at least
    `MIN_SIDE` px, labelled "smile" or "other", each once; both halves hold both labels."""
    faces = json.loads(smiles.LABELS.read_text())["faces"]
    keys = {(f["image"], tuple(f["box"])) for f in faces}
    assert len(keys) == len(faces) >= 200
    for face in faces:
        event = face["image"].split("/")[0]
        assert event in smiles.SMILE_EVENTS
        x1, y1, x2, y2 = face["box"]
        assert min(x2 - x1, y2 - y1) >= smiles.MIN_SIDE
        assert face["label"] in ("smile", "other")
    for half in (smiles.CHOOSING_EVENTS, smiles.MEASURED_EVENTS):
        labels = {f["label"] for f in faces if f["image"].split("/")[0] in half}
        assert labels == {"smile", "other"}
    assert len(smiles.load_labels()) == len(faces)


def test_readings() -> None:
    happy, neutral = EMOTIONS.index("happy"), EMOTIONS.index("neutral")
    probabilities = np.full((4, 7), 0.05, np.float32)
    probabilities[[0, 2], happy] = 0.7  # a smile and an other called happy
    probabilities[[1, 3], neutral] = 0.7  # a smile and an other called neutral
    report = smiles.readings(probabilities, np.array([True, True, False, False]))
    assert report["smiles"] == report["others"] == 2
    assert report["smiles_called_happy"] == report["others_called_happy"] == 0.5
    assert report["smiles_mean_p_happy"] == pytest.approx((0.7 + 0.05) / 2)
    assert report["smiles_called_instead"] == {"neutral": 1}


@pytest.fixture(scope="module")
def photo_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A WIDER-like folder with one photo of two faces side by side, in a measured event."""
    root = tmp_path_factory.mktemp("wider")
    canvas = Image.new("RGB", (560, 300), (128, 128, 128))
    canvas.paste(Image.open(shared_file(SMILING)), (20, 25))
    canvas.paste(Image.open(shared_file(STRAIGHT)), (290, 25))
    folder = root / "images" / smiles.MEASURED_EVENTS[0]
    folder.mkdir(parents=True)
    canvas.save(folder / "pair.jpg", quality=95)
    return root


def test_a_smile_and_a_straight_face_end_to_end(photo_root: Path) -> None:
    detector = analysis_detector()
    name = f"{smiles.MEASURED_EVENTS[0]}/pair.jpg"
    found = detector.detect(np.asarray(Image.open(photo_root / "images" / name)))
    largest = sorted(found, key=lambda f: f.width * f.height)[-2:]  # LFW photos hold others
    faces = sorted(largest, key=lambda f: f.box[0])
    assert faces[0].box[2] < 280 < faces[1].box[0]
    labels = [
        (smiles.Candidate(name, tuple(float(v) for v in faces[0].box)), True),
        (smiles.Candidate(name, tuple(float(v) for v in faces[1].box)), False),
        (smiles.Candidate(name, (2.0, 2.0, 18.0, 22.0)), False),  # nobody there
    ]
    report = smiles.evaluate(photo_root, {"kao": EmotionClassifier()}, detector, labels)
    assert (report["faces"], report["not_found_again"]) == (2, 1)
    measured = report["kao"]["measured"]
    assert (measured["smiles"], measured["others"]) == (1, 1)
    assert measured["smiles_called_happy"] == 1.0
    assert measured["others_called_happy"] == 0.0
    assert report["kao"]["choosing"]["smiles"] == 0
    assert [row["size"] for row in report["kao"]["by_size"]] == list(smiles.SIZES)


def test_cli_needs_data_or_smiles(capsys) -> None:
    assert main(["eval", "emotion"]) == 1
    assert "needs --data" in capsys.readouterr().err
    assert main(["eval", "emotion", "--smiles", "/nonexistent", "--model", "mini_xception"]) == 1
    assert "measures kao's network" in capsys.readouterr().err
