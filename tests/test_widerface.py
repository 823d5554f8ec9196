"""The WIDER FACE AP protocol on synthetic cases with known answers, and the real subset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kao.evaluation.widerface import (
    SETTINGS,
    WiderImage,
    average_precision,
    load_dataset,
    shrunk,
)
from tests.conftest import WIDER, shared_file


def _image(boxes: list[list[float]], keep: list[bool]) -> WiderImage:
    mask = np.array(keep, bool)
    return WiderImage(Path("x.jpg"), np.array(boxes, float), dict.fromkeys(SETTINGS, mask))


def _dets(rows: list[list[float]]) -> np.ndarray:
    return np.array(rows, float).reshape(-1, 5)


FACES = [[10, 10, 50, 50], [100, 100, 140, 150], [200, 10, 230, 40]]


def test_perfect_detections_score_one() -> None:
    image = _image(FACES, [True, True, True])
    dets = _dets([[*box, score] for box, score in zip(FACES, (0.9, 0.8, 0.7), strict=True)])
    assert average_precision([image], [dets]) == pytest.approx(dict.fromkeys(SETTINGS, 1.0))


def test_no_detections_score_zero() -> None:
    image = _image(FACES, [True, True, True])
    assert average_precision([image], [_dets([])]) == dict.fromkeys(SETTINGS, 0.0)


def test_half_recall_and_a_false_positive() -> None:
    image = _image(FACES[:2], [True, True])
    dets = _dets([[*FACES[0], 0.9], [300, 300, 340, 340, 0.5]])
    ap = average_precision([image], [dets])["easy"]
    assert ap == pytest.approx(0.5, abs=0.01)  # recall 0.5 reached at precision 1


def test_faces_outside_the_setting_are_ignored() -> None:
    image = _image(FACES, [True, False, False])
    dets = _dets([[*FACES[1], 0.95], [*FACES[0], 0.9]])  # the ignored face scores higher
    assert average_precision([image], [dets])["hard"] == pytest.approx(1.0)


def test_low_iou_does_not_count() -> None:
    image = _image(FACES[:1], [True])
    shifted = [30, 30, 70, 70]  # IoU with the face is about 0.14
    assert average_precision([image], [_dets([[*shifted, 0.9]])])["medium"] == 0.0


def test_real_subset_loads_with_scaled_boxes() -> None:
    shared_file("data/widerface_val_subset/wider_face_val.mat")
    images = load_dataset(WIDER)
    assert len(images) == 200
    for im in images[:20]:
        assert im.boxes.shape[1] == 4
        assert (im.boxes[:, 2] <= 416 + 1).all() and (im.boxes[:, 3] <= 416 + 1).all()
        assert im.keep["easy"].sum() <= im.keep["medium"].sum() <= im.keep["hard"].sum()


def test_shrinking_scales_image_and_ground_truth_alike() -> None:
    image = _image(FACES, [True, True, True])
    rgb = np.zeros((200, 400, 3), np.uint8)
    small, scaled = shrunk(rgb, image, 100)
    assert small.shape == (50, 100, 3)
    np.testing.assert_allclose(scaled.boxes, np.array(FACES) / 4)
    # detections scaled alike keep a perfect score; nothing is ever enlarged
    assert average_precision([scaled], [_dets([[*b, 1.0] for b in scaled.boxes])])["easy"] == 1
    same, unchanged = shrunk(rgb, image, 800)
    assert same is rgb and unchanged is image


def test_missing_dataset_is_a_clear_error(tmp_path: Path) -> None:
    from kao.errors import KaoError

    with pytest.raises(KaoError, match="not a WIDER FACE folder"):
        load_dataset(tmp_path)
