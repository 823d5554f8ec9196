"""One face, one box: the whole-image and detail passes do not leave boxes nested inside faces
when a photo is up-scaled, so its face count (and `kao count`'s) stays the same."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

import kao
from kao.cli import main
from kao.detection.boxes import coverage, drop_nested
from kao.detection.detector import DETAIL_MAX_FACE
from tests.conftest import shared_file

PHOTOS = "data/widerface_val_subset/images/"
SEVEN = PHOTOS + "2_Demonstration_Protesters_2_362.jpg"  # 7 faces; 8 at 3x before the merge
FIVE = PHOTOS + "0_Parade_Parade_0_194.jpg"  # 5 faces
CROWD = PHOTOS + "2_Demonstration_Protesters_2_178.jpg"  # 13 found; a face held 2 boxes at 3-4x


@pytest.fixture(scope="module")
def detector() -> kao.FaceDetector:
    return kao.FaceDetector()


def _up_scaled(relative: str, factor: int) -> np.ndarray:
    """The photo at `relative` under ../shared enlarged `factor` times (bicubic), RGB."""
    rgb = kao.load_image(shared_file(relative))
    return cv2.resize(rgb, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)


@pytest.mark.parametrize(("relative", "faces"), [(SEVEN, 7), (FIVE, 5)])
def test_up_scaled_photos_keep_their_face_count(
    relative: str, faces: int, detector: kao.FaceDetector
) -> None:
    counts = [len(detector.detect(_up_scaled(relative, factor))) for factor in (1, 2, 3, 4)]
    assert counts == [faces] * 4


@pytest.mark.parametrize("factor", [3, 4])
def test_no_box_lies_mostly_inside_another_face(factor: int, detector: kao.FaceDetector) -> None:
    boxes = np.array([f.box for f in detector.detect(_up_scaled(CROWD, factor))])
    inside = coverage(boxes, boxes)
    np.fill_diagonal(inside, 0.0)
    assert inside.max() <= 0.5, inside.max()


def test_kao_count_by_detection_keeps_the_count(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "seven_3x.png"
    cv2.imwrite(str(path), cv2.cvtColor(_up_scaled(SEVEN, 3), cv2.COLOR_RGB2BGR))
    assert main(["count", str(path), "--json", "--method", "detection"]) == 0
    (record,) = json.loads(capsys.readouterr().out)
    assert record["method"] == "detection" and record["count"] == 7


def test_drop_nested_keeps_faces_and_drops_parts_of_them() -> None:
    face = [100, 100, 200, 220]
    forehead = [120, 90, 180, 150]  # 2/3 of it inside the face
    neighbour = [190, 100, 290, 220]  # beside the face, a tenth inside it
    boxes = np.array([face, forehead, neighbour], np.float32)
    assert drop_nested(boxes, np.array([0.9, 0.7, 0.8]), 0.5, 48).tolist() == [0, 2]
    # a face scoring lower than the box inside it, or smaller than min_side, keeps it
    assert drop_nested(boxes, np.array([0.6, 0.7, 0.8]), 0.5, 48).tolist() == [0, 1, 2]
    assert drop_nested(boxes, np.array([0.9, 0.7, 0.8]), 0.5, 121).tolist() == [0, 1, 2]
    assert drop_nested(boxes, np.array([0.9, 0.7, 0.8]), 1.0, 48).tolist() == [0, 1, 2]
    assert drop_nested(np.zeros((0, 4)), np.zeros(0), 0.5, 48).tolist() == []


def test_the_detail_pass_leaves_large_faces_to_the_whole_image_pass() -> None:
    whole, detail = kao.FaceDetector().passes(1248, 1248)
    assert detail.scale == 1.0 and whole.scale == pytest.approx(640 / 1248)
    assert detail.max_face == pytest.approx(DETAIL_MAX_FACE * 1248 / 640)
    assert kao.FaceDetector().passes(4000, 3000)[1].max_face == 256  # a quarter of a tile
    with pytest.raises(ValueError, match="nested must be in"):
        kao.FaceDetector(nested=1.5)
