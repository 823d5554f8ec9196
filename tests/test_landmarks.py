"""FaceMesh, iris and the 68-point layout on real photos."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

import kao
from kao import align
from kao.errors import KaoError
from kao.landmarks import MESH_TO_68, FaceMesh, five_points
from kao.landmarks import ibug68 as layout
from tests.conftest import shared_file

PHOTOS = (
    "data/lfw/lfw-deepfunneled/Aaron_Eckhart/Aaron_Eckhart_0001.jpg",
    "data/lfw/lfw-deepfunneled/Akbar_Al_Baker/Akbar_Al_Baker_0001.jpg",
)


@pytest.fixture(scope="module")
def mesher() -> FaceMesh:
    shared_file("models/mediapipe_face/face_landmark.tflite")
    return FaceMesh()


@pytest.fixture(scope="module")
def photos(mesher: FaceMesh) -> list[tuple[np.ndarray, kao.Face]]:
    found = []
    for relative in PHOTOS:
        rgb = kao.load_image(shared_file(relative))
        found.append((rgb, mesher.run(rgb, kao.detect(rgb)[:1])[0]))
    return found


def _eye_distance(face: kao.Face) -> float:
    return float(np.linalg.norm(face.keypoints[0] - face.keypoints[1]))


def test_mesh_agrees_with_the_detector(photos: list[tuple[np.ndarray, kao.Face]]) -> None:
    for _, face in photos:
        assert face.mesh is not None and face.mesh.shape == (468, 3)
        assert face.mesh.dtype == np.float32
        error = np.linalg.norm(five_points(face.mesh) - face.keypoints, axis=1)
        assert error.max() < 0.2 * _eye_distance(face)
        x1, _, x2, _ = face.box
        inside = (face.mesh[:, 0] > x1 - 0.2 * face.width) & (
            face.mesh[:, 0] < x2 + 0.2 * face.width
        )
        assert inside.all()


def test_mapping_table_is_sane() -> None:
    assert MESH_TO_68.shape == (68,)
    assert len(set(MESH_TO_68.tolist())) == 68
    assert MESH_TO_68.min() >= 0 and MESH_TO_68.max() < 468


def test_68_points_are_where_they_belong(photos: list[tuple[np.ndarray, kao.Face]]) -> None:
    for _, face in photos:
        points = face.landmarks_68
        assert points is not None and points.shape == (68, 2)
        jaw = points[layout.JAW]
        assert jaw[0, 0] < jaw[8, 0] < jaw[16, 0]  # image-left ear, chin, image-right ear
        assert np.all(np.diff(jaw[:9, 1]) > -1) and np.all(np.diff(jaw[8:, 1]) < 1)
        assert jaw[8, 1] == pytest.approx(points[:, 1].max())  # the chin is the lowest point
        right_eye, left_eye = points[layout.RIGHT_EYE], points[layout.LEFT_EYE]
        assert right_eye[:, 0].max() < left_eye[:, 0].min()  # right eye on the image's left
        assert points[layout.RIGHT_BROW, 1].mean() < right_eye[:, 1].mean()
        assert points[layout.LEFT_BROW, 1].mean() < left_eye[:, 1].mean()
        nose_tip, mouth = points[30], points[layout.MOUTH]
        assert right_eye[:, 0].mean() < nose_tip[0] < left_eye[:, 0].mean()
        assert left_eye[:, 1].mean() < nose_tip[1] < mouth[:, 1].min()
        assert points[48, 0] < points[51, 0] < points[54, 0]  # mouth corners around the lip
        assert np.all(np.diff(points[27:31, 1]) > 0)  # nose bridge runs down


def test_iris_inside_the_eye(photos: list[tuple[np.ndarray, kao.Face]]) -> None:
    for _, face in photos:
        assert face.iris is not None and face.iris.shape == (10, 3)
        for iris, corners in ((face.iris[:5], (33, 133)), (face.iris[5:], (362, 263))):
            a, b = face.mesh[list(corners), :2]
            centre = iris[0, :2]
            along = float(np.dot(centre - a, b - a) / np.dot(b - a, b - a))
            assert 0.2 < along < 0.8
            width = float(np.linalg.norm(b - a))
            assert abs(centre[1] - (a[1] + b[1]) / 2) < 0.3 * width
            radius = np.linalg.norm(iris[1:, :2] - centre, axis=1)
            assert np.all((radius > 0.1 * width) & (radius < 0.5 * width))


def test_cropped_face_matches_the_photo(
    mesher: FaceMesh, photos: list[tuple[np.ndarray, kao.Face]]
) -> None:
    rgb, face = photos[0]
    matrix = align.crop_matrix(face, 160, scale=1.3, upright=False)
    crop = align.warp(rgb, matrix, 160)
    cropped = mesher.run_cropped(crop)
    assert cropped.box.tolist() == [0, 0, 160, 160]
    expected = align.apply(matrix, face.landmarks_68)
    error = np.linalg.norm(cropped.landmarks_68 - expected, axis=1).mean()
    assert error < 0.08 * float(np.linalg.norm(expected[36:42].mean(0) - expected[42:48].mean(0)))
    assert np.all(cropped.keypoints > 0)


def test_no_face_in_a_blank_crop(mesher: FaceMesh) -> None:
    blank = np.full((160, 160, 3), 128, np.uint8)
    with pytest.raises(KaoError, match="no face"):
        mesher.run_cropped(blank)
    fake = align.whole_image_face(blank)
    assert mesher.run(blank, [fake])[0].mesh is None


def test_mirrored_photo_mirrors_the_mesh(mesher: FaceMesh, photos) -> None:
    rgb, face = photos[1]
    mirror = np.ascontiguousarray(rgb[:, ::-1])
    flipped = mesher.run(mirror, kao.detect(mirror)[:1])[0]
    width = rgb.shape[1] - 1
    # the mirror's right eye is the photo's left eye, seen from the other side
    expected = np.column_stack([width - face.landmarks_68[45, 0], face.landmarks_68[45, 1]])
    assert np.linalg.norm(flipped.landmarks_68[36] - expected[0]) < 0.15 * _eye_distance(face)
    assert cv2.norm(flipped.iris[0, :2] - np.array([width - face.iris[5, 0], face.iris[5, 1]])) < 3
