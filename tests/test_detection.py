"""Face detection on real photos: counts and boxes against WIDER FACE ground truth, small and
large faces, input types, determinism and keypoint order."""

from __future__ import annotations

import io
import itertools
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

import kao
from kao.detection.boxes import iou_matrix, nms
from kao.detection.detector import _tiles
from kao.evaluation.widerface import load_dataset
from tests.conftest import WIDER, shared_file

# WIDER FACE val images whose every annotated face is at least 20 px, with their face counts.
KNOWN = {
    "0_Parade_Parade_0_194.jpg": 5,
    "1_Handshaking_Handshaking_1_766.jpg": 1,
    "2_Demonstration_Political_Rally_2_224.jpg": 5,
    "3_Riot_Riot_3_689.jpg": 3,
    "4_Dancing_Dancing_4_240.jpg": 6,
    "6_Funeral_Funeral_6_627.jpg": 3,
    "7_Cheering_Cheering_7_373.jpg": 3,
    "9_Press_Conference_Press_Conference_9_129.jpg": 2,
}
LFW_FACE = "data/lfw/lfw-deepfunneled/Aaron_Peirsol/Aaron_Peirsol_0001.jpg"


@pytest.fixture(scope="module")
def ground_truth() -> dict[str, np.ndarray]:
    shared_file("data/widerface_val_subset/wider_face_val.mat")
    return {im.path.name: im.boxes for im in load_dataset(WIDER) if im.path.name in KNOWN}


@pytest.fixture(scope="module")
def detector() -> kao.FaceDetector:
    return kao.FaceDetector()


@pytest.mark.parametrize("name", sorted(KNOWN))
def test_counts_and_boxes_match_ground_truth(
    name: str, ground_truth: dict[str, np.ndarray], detector: kao.FaceDetector
) -> None:
    faces = detector.detect(WIDER / "images" / name)
    assert len(faces) == KNOWN[name]
    boxes = np.array([f.box for f in faces])
    best = iou_matrix(ground_truth[name], boxes).max(axis=1)
    assert (best >= 0.5).all(), best


def test_face_record(detector: kao.FaceDetector) -> None:
    image = shared_file(LFW_FACE)
    (face,) = detector.detect(image)
    assert face.box.shape == (4,) and face.box.dtype == np.float32
    assert face.keypoints.shape == (5, 2)
    assert 0.6 <= face.score <= 1.0
    x1, y1, x2, y2 = face.box
    assert 60 < x1 < x2 < 190 and 50 < y1 < y2 < 200  # the face in the middle of a 250 px photo
    assert ((face.keypoints >= face.box[:2]) & (face.keypoints <= face.box[2:])).all()
    right_eye, left_eye, nose, right_mouth, left_mouth = face.keypoints
    assert right_eye[0] < nose[0] < left_eye[0]  # the subject's right eye is on the image's left
    assert right_mouth[0] < left_mouth[0]
    assert max(right_eye[1], left_eye[1]) < nose[1] < min(right_mouth[1], left_mouth[1])
    record = face.to_dict()
    assert set(record) == {"box", "score", "keypoints", "quality"} and len(record["keypoints"]) == 5
    assert record["quality"] is None  # the detector alone does not measure it; kao.detect does


def test_every_input_type_gives_the_same_faces(detector: kao.FaceDetector) -> None:
    path = WIDER / "images" / "3_Riot_Riot_3_689.jpg"
    shared_file(str(path.relative_to(WIDER.parents[1])))
    rgb = kao.load_image(path)
    inputs = [path, str(path), path.read_bytes(), rgb, Image.open(path)]
    results = [[(tuple(f.box), f.score) for f in detector.detect(i)] for i in inputs]
    assert len(results[0]) == 3
    for other in results[1:]:
        assert other == results[0]


def test_output_is_deterministic() -> None:
    path = shared_file("data/widerface_val_subset/images/0_Parade_Parade_0_102.jpg")
    first = [f.to_dict() for f in kao.FaceDetector(min_score=0.3).detect(path)]
    second = [f.to_dict() for f in kao.FaceDetector(min_score=0.3).detect(path)]
    assert first == second and len(first) > 10
    scores = [f["score"] for f in first]
    assert scores == sorted(scores, reverse=True)


def test_up_scaled_pass_finds_small_faces_in_small_images() -> None:
    path = shared_file("data/widerface_val_subset/images/0_Parade_Parade_0_102.jpg")
    with_pass = kao.FaceDetector(small_faces=True).detect(path)
    without = kao.FaceDetector(small_faces=False).detect(path)
    assert len(with_pass) >= len(without) + 5


def test_the_analysis_detector_up_scales_small_photos_less() -> None:
    from kao.detection import analysis_detector
    from kao.detection.detector import ANALYSIS_UPSCALE, Pass

    analysing, default = analysis_detector(), kao.FaceDetector(masked_faces=True)
    assert analysing.masked is not None
    # a 250 x 250 photo: one pass at 1.5x instead of 640 px; large photos as by default
    assert analysing.passes(250, 250) == [Pass(scale=ANALYSIS_UPSCALE)]
    assert default.passes(250, 250) == [Pass(scale=640 / 250)]
    assert analysing.passes(1500, 2000) == default.passes(1500, 2000)
    rgb = kao.load_image(shared_file(LFW_FACE))
    (found,), (reference,) = analysing.detect(rgb), default.detect(rgb)
    assert iou_matrix(found.box[None], reference.box[None])[0, 0] > 0.8


def _group_photo(
    face: np.ndarray, size: tuple[int, int], spots: list[tuple[int, int]]
) -> np.ndarray:
    """A large grey photo (height, width) with copies of `face` pasted at `spots` (x, y)."""
    canvas = np.full((*size, 3), 128, np.uint8)
    h, w = face.shape[:2]
    for x, y in spots:
        canvas[y : y + h, x : x + w] = face
    return canvas


def test_tiling_finds_small_faces_in_large_images() -> None:
    crop = kao.load_image(shared_file(LFW_FACE))[40:210, 50:200]
    face = cv2.resize(crop, (45, 51), interpolation=cv2.INTER_AREA)  # a ~30 px face
    spots = [(300 + 700 * i, 400 + 900 * j) for i in range(5) for j in range(3)]
    photo = _group_photo(face, (3000, 4000), spots)
    tiled = kao.FaceDetector(small_faces=True).detect(photo)
    whole = kao.FaceDetector(small_faces=False).detect(photo)
    assert len(tiled) == len(spots)
    assert len(whole) < len(spots) / 2
    centres = np.array([[(f.box[0] + f.box[2]) / 2, (f.box[1] + f.box[3]) / 2] for f in tiled])
    expected = np.array([[x + 22, y + 25] for x, y in spots])
    distances = np.linalg.norm(centres[:, None] - expected[None], axis=2).min(axis=1)
    assert distances.max() < 15


def test_a_face_filling_the_frame_is_found() -> None:
    rgb = kao.load_image(shared_file(LFW_FACE))[55:200, 70:180]
    big = cv2.resize(rgb, (1100, 1450), interpolation=cv2.INTER_CUBIC)
    faces = kao.FaceDetector().detect(big)
    assert len(faces) == 1
    assert faces[0].width > 600 and faces[0].height > 700


def test_min_size_and_min_score_filter(detector: kao.FaceDetector) -> None:
    path = shared_file("data/widerface_val_subset/images/0_Parade_Parade_0_102.jpg")
    everything = kao.FaceDetector(min_score=0.3).detect(path)
    big = kao.FaceDetector(min_score=0.3, min_size=12).detect(path)
    sure = kao.FaceDetector(min_score=0.8).detect(path)
    assert 0 < len(big) < len(everything) and all(max(f.width, f.height) >= 12 for f in big)
    assert 0 < len(sure) < len(everything) and all(f.score >= 0.8 for f in sure)


def test_no_face_and_tiny_images(detector: kao.FaceDetector) -> None:
    assert detector.detect(np.full((480, 640, 3), 90, np.uint8)) == []
    assert detector.detect(np.zeros((1, 1, 3), np.uint8)) == []
    assert detector.detect(np.zeros((3, 1000), np.uint8)) == []


def test_the_masked_pass_input_is_the_padded_image_resized() -> None:
    from kao.detection.masked import INPUT_SIZE, padded_input

    rng = np.random.default_rng(0)
    for height, width, pad in ((50, 300, 90), (480, 640, 192), (2000, 1500, 600)):
        rgb = rng.integers(0, 256, (height, width, 3), np.uint8)
        padded = cv2.copyMakeBorder(rgb, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
        expected = cv2.resize(padded, INPUT_SIZE, interpolation=cv2.INTER_LINEAR)
        made = padded_input(rgb, pad)
        assert made.shape == expected.shape == (384, 512, 3)
        assert np.abs(made.astype(int) - expected).max() <= 1


def test_bad_image_raises_a_clear_error(detector: kao.FaceDetector, tmp_path: Path) -> None:
    broken = tmp_path / "broken.jpg"
    buffer = io.BytesIO()
    Image.new("RGB", (300, 200), "white").save(buffer, "JPEG")
    broken.write_bytes(buffer.getvalue()[:300])
    with pytest.raises(kao.ImageError, match=r"broken\.jpg: truncated or corrupt"):
        detector.detect(broken)


def test_invalid_options() -> None:
    with pytest.raises(ValueError, match="min_score"):
        kao.FaceDetector(min_score=1.5)
    with pytest.raises(ValueError, match="unknown detector"):
        kao.FaceDetector(model="nope")


def test_module_level_detect_reuses_one_detector() -> None:
    path = shared_file(LFW_FACE)
    assert len(kao.detect(path)) == 1
    from kao import detection

    before = len(detection._detectors)
    kao.detect(path)
    assert len(detection._detectors) == before


def test_nms_and_tiles() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]], np.float32)
    assert nms(boxes, np.array([0.5, 0.9, 0.7]), 0.3).tolist() == [1, 2]
    windows = _tiles(2500, 1000, 1024, 256)
    assert windows[0][:2] == (0, 0) and max(w[2] for w in windows) == 2500
    assert all(w[2] - w[0] <= 1024 and w[3] - w[1] <= 1024 for w in windows)
    xs = sorted({w[0] for w in windows})
    assert all(b - a <= 1024 - 256 for a, b in itertools.pairwise(xs))
