"""Head pose, gaze, FSA-Net's conventions and the rasteriser."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

import kao
from kao.errors import KaoError
from kao.evaluation.headpose import FsaNet
from kao.face import Face
from kao.geometry import canonical_model, gaze, head_pose
from kao.geometry.gaze import EYEBALL_CENTRE, EYEBALL_RADIUS
from kao.geometry.pose import _rotation_x, _rotation_y, image_frame
from kao.geometry.raster import rasterize
from kao.landmarks import FaceMesh
from tests.conftest import shared_file

TURNED = "data/lfw/lfw-deepfunneled/Akbar_Al_Baker/Akbar_Al_Baker_0001.jpg"


def _rotation_z(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _synthetic(yaw: float, pitch: float, roll: float, scale: float = 9.0) -> Face:
    """A face whose mesh is the canonical face turned by (yaw, pitch, roll) in kao's signs."""
    shared_file("models/mediapipe_face/canonical_face_model.obj")
    rotation = (
        _rotation_y(np.radians(yaw))
        @ _rotation_x(-np.radians(pitch))
        @ _rotation_z(-np.radians(roll))
    )
    camera = scale * canonical_model().vertices @ rotation.T + np.array([300.0, -200.0, 0.0])
    mesh = image_frame(camera).astype(np.float32)
    return Face(box=np.zeros(4, np.float32), score=1.0, keypoints=np.zeros((5, 2)), mesh=mesh)


@pytest.mark.parametrize("angles", [(0, 0, 0), (25, 0, 0), (0, -15, 0), (0, 0, 20), (30, 12, -8)])
def test_pose_recovers_a_known_rotation(angles: tuple[float, float, float]) -> None:
    pose = head_pose(_synthetic(*angles))
    assert (pose.yaw, pose.pitch, pose.roll) == pytest.approx(angles, abs=1e-6)


def test_pose_signs_on_the_image() -> None:
    face = _synthetic(25, 10, 15)
    nose, chin, forehead = face.mesh[1], face.mesh[152], face.mesh[10]
    centre = face.mesh[:, :2].mean(axis=0)
    assert nose[0] > centre[0]  # yaw > 0: the nose points to the image's right
    assert forehead[0] > chin[0]  # roll > 0 (clockwise): the top of the head leans right


@pytest.fixture(scope="module")
def mesher() -> FaceMesh:
    shared_file("models/mediapipe_face/face_landmark.tflite")
    return FaceMesh()


def _pose(mesher: FaceMesh, rgb: np.ndarray) -> kao.face.Pose:
    faces = mesher.run(rgb, kao.detect(rgb)[:1])
    return head_pose(faces[0])


def _rotate(rgb: np.ndarray, clockwise: float) -> np.ndarray:
    height, width = rgb.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), -clockwise, 1.0)
    return cv2.warpAffine(rgb, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE)


def test_mirror_flips_yaw_and_roll(mesher: FaceMesh) -> None:
    rgb = _rotate(kao.load_image(shared_file(TURNED)), 12)
    pose = _pose(mesher, rgb)
    mirrored = _pose(mesher, np.ascontiguousarray(rgb[:, ::-1]))
    assert pose.yaw > 5 and mirrored.yaw < -5
    assert pose.roll > 5 and mirrored.roll < -5
    assert mirrored.yaw == pytest.approx(-pose.yaw, abs=4)
    assert mirrored.roll == pytest.approx(-pose.roll, abs=3)
    assert mirrored.pitch == pytest.approx(pose.pitch, abs=4)


@pytest.mark.parametrize("clockwise", [15, -15])
def test_rotated_photo_changes_roll(mesher: FaceMesh, clockwise: float) -> None:
    rgb = kao.load_image(shared_file(TURNED))
    change = _pose(mesher, _rotate(rgb, clockwise)).roll - _pose(mesher, rgb).roll
    assert change == pytest.approx(clockwise, abs=4)


def test_fsanet_signs_agree_with_kao(mesher: FaceMesh) -> None:
    shared_file("models/fsanet_headpose/fsanet-1x1-iter-688590.onnx")
    fsanet = FsaNet()
    rgb = _rotate(kao.load_image(shared_file(TURNED)), 12)
    for image in (rgb, np.ascontiguousarray(rgb[:, ::-1])):
        faces = mesher.run(image, kao.detect(image)[:1])
        ours, theirs = head_pose(faces[0]), fsanet.predict(image, faces)[0]
        assert np.sign(ours.yaw) == np.sign(theirs.yaw)
        assert np.sign(ours.roll) == np.sign(theirs.roll)


def _with_iris(face: Face, shift: tuple[float, float]) -> Face:
    """`face` (from `_synthetic`, scale 9 px/cm, no rotation) with its irises over the eyeball
    centres' projections moved by `shift` (camera frame x right, y up, in eyeball radii)."""
    centres = np.stack([EYEBALL_CENTRE * [-1, 1, 1], EYEBALL_CENTRE]) * 9.0 + [300.0, -200.0, 0]
    centres[:, :2] += np.array(shift) * 9.0 * EYEBALL_RADIUS
    iris = np.repeat(image_frame(centres), 5, axis=0).astype(np.float32)
    return Face(face.box, 1.0, face.keypoints, mesh=face.mesh, iris=iris)


def test_gaze_follows_the_iris() -> None:
    face = _synthetic(0, 0, 0)
    ahead = gaze(_with_iris(face, (0.0, 0.0)))
    assert ahead["yaw"] == pytest.approx(0, abs=1e-6) and ahead["pitch"] == pytest.approx(
        0, abs=1e-6
    )
    right_up = gaze(_with_iris(face, (0.5, 0.25)))
    for eye in ("right_eye", "left_eye"):
        assert right_up[eye]["yaw"] == pytest.approx(
            np.degrees(np.arctan2(0.5, np.sqrt(1 - 0.3125))), abs=0.01
        )
        assert right_up[eye]["pitch"] > 10
    assert right_up["relative"] == {"yaw": right_up["yaw"], "pitch": right_up["pitch"]}


def test_gaze_needs_the_iris() -> None:
    with pytest.raises(KaoError, match="iris"):
        gaze(_synthetic(0, 0, 0))


def test_rasterizer_keeps_the_nearest_triangle() -> None:
    points = np.array([[1, 1, 5], [8, 1, 5], [1, 8, 5], [0, 0, 1], [9, 0, 1], [0, 3, 1]], float)
    triangles = np.array([[0, 1, 2], [3, 4, 5]])
    ids, weights = rasterize(points, triangles, 10, 10)
    assert ids[0, 0] == 1 and ids[5, 2] == 0 and ids[9, 9] == -1
    assert ids[1, 2] == 1  # both cover it, the second is nearer
    assert weights[5, 2].sum() == pytest.approx(1.0)
