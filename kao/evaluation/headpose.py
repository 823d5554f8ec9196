"""Head pose from FaceMesh (`kao.geometry.head_pose`) beside FSA-Net on the same faces.

FSA-Net (`fsanet_headpose`, MIT; Yang et al., CVPR 2019, trained on 300W-LP) reads a 64 x 64
crop of the detector's box (not rotated: the roll must stay visible), BGR, (pixel - 127.5) / 128,
and kao averages its two published variants (1x1 and var), as their demo does. Its angles are
converted to `kao.face.Pose`'s signs with `FSANET_SIGNS`: FSA-Net's yaw is positive when the
face turns toward the image's left and its pitch and roll have kao's signs (found with the
mirror test: a mirrored photo flips yaw and roll, and the sign of the correlation with kao on
real photos; see `compare`'s "raw_correlation")."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kao import align
from kao.detection import FaceDetector
from kao.face import Face, Pose
from kao.geometry.pose import head_pose
from kao.image import find_images, load_image
from kao.landmarks import FaceMesh
from kao.models import model_path
from kao.models.runtime import onnx_session
from kao.progress import progress

SPEC_NAME = "fsanet_headpose"
FILES = ("fsanet-1x1-iter-688590.onnx", "fsanet-var-iter-688590.onnx")
SIZE = 64
FSANET_SIGNS = np.array([-1.0, 1.0, 1.0])
"""Multiply FSA-Net's (yaw, pitch, roll) by these to get kao's convention."""
MIN_FACE = 40.0
"""Faces whose box is narrower than this (pixels) are left out: both models need detail."""
ANGLES = ("yaw", "pitch", "roll")


class FsaNet:
    """FSA-Net head pose on ONNX Runtime: ``FsaNet().raw(rgb, faces)`` -> (N, 3) degrees in
    FSA-Net's own signs, ``predict`` -> `Pose` list in kao's."""

    def __init__(self) -> None:
        self.sessions = [onnx_session(model_path(SPEC_NAME, name)) for name in FILES]

    def raw(self, rgb: np.ndarray, faces: list[Face]) -> np.ndarray:
        """(N, 3) float64 yaw, pitch, roll in degrees, FSA-Net's signs."""
        if not faces:
            return np.zeros((0, 3))
        crops = np.stack(
            [align.face_crop(rgb, face, SIZE, upright=False) for face in faces]
        ).astype(np.float32)
        batch = np.ascontiguousarray(((crops[..., ::-1] - 127.5) / 128.0).transpose(0, 3, 1, 2))
        outputs = [
            np.concatenate([session.run(None, {"input": item[None]})[0] for item in batch])
            for session in self.sessions
        ]
        return np.mean(outputs, axis=0).astype(np.float64)

    def predict(self, rgb: np.ndarray, faces: list[Face]) -> list[Pose]:
        """One `Pose` per face, in kao's sign convention."""
        return [Pose(*(float(v) for v in row)) for row in self.raw(rgb, faces) * FSANET_SIGNS]


@dataclass(frozen=True)
class Pair:
    """One face's pose by kao (FaceMesh + canonical fit) and by FSA-Net (raw signs)."""

    kao: np.ndarray
    fsanet_raw: np.ndarray


def collect(paths: Iterable[Path], min_face: float = MIN_FACE) -> list[Pair]:
    """Every face at least `min_face` pixels wide, in every image, with both poses."""
    detector, mesh, fsanet = FaceDetector(), FaceMesh(iris=False), FsaNet()
    pairs: list[Pair] = []
    paths = list(paths)
    for path in progress(paths, total=len(paths)):
        rgb = load_image(path)
        faces = [face for face in detector.detect(rgb) if face.width >= min_face]
        faces = [face for face in mesh.run(rgb, faces) if face.mesh is not None]
        for face, raw in zip(faces, fsanet.raw(rgb, faces), strict=False):
            pose = head_pose(face)
            pairs.append(Pair(np.array([pose.yaw, pose.pitch, pose.roll]), raw))
    return pairs


def compare(pairs: list[Pair]) -> dict[str, Any]:
    """Agreement per angle: mean absolute difference (degrees) and Pearson correlation after
    converting FSA-Net to kao's signs, mean signed difference (kao - FSA-Net), and the raw
    correlation before conversion (its sign shows FSA-Net's convention)."""
    if len(pairs) < 2:
        return {"faces": len(pairs)}
    ours = np.stack([pair.kao for pair in pairs])
    raw = np.stack([pair.fsanet_raw for pair in pairs])
    theirs = raw * FSANET_SIGNS

    def per_angle(values: np.ndarray) -> dict[str, float]:
        return {name: round(float(value), 3) for name, value in zip(ANGLES, values, strict=False)}

    def correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.array([np.corrcoef(a[:, i], b[:, i])[0, 1] for i in range(3)])

    return {
        "faces": len(pairs),
        "mean_abs_difference": per_angle(np.abs(ours - theirs).mean(axis=0)),
        "median_abs_difference": per_angle(np.median(np.abs(ours - theirs), axis=0)),
        "correlation": per_angle(correlation(ours, theirs)),
        "mean_difference": per_angle((ours - theirs).mean(axis=0)),
        "raw_correlation": per_angle(correlation(ours, raw)),
        "kao_std": per_angle(ours.std(axis=0)),
        "fsanet_std": per_angle(theirs.std(axis=0)),
    }


def evaluate(data: Path, *, limit: int = 0, min_face: float = MIN_FACE) -> dict[str, Any]:
    """`compare` over the images under `data` (every one, or an even spread of `limit`)."""
    paths = find_images([data])
    if limit and len(paths) > limit:
        paths = [paths[i] for i in np.linspace(0, len(paths) - 1, limit).round().astype(int)]
    report = compare(collect(paths, min_face))
    return {"data": str(data), "images": len(paths), "min_face": min_face, **report}
