"""EdgeFace (Idiap, BSD-3-Clause; compact-track winner of EFaR 2023): 512-d face embeddings of
112 x 112 crops aligned to the ArcFace five-point template.

The networks are timm's EdgeNeXt XX-small and X-small with a 512-d head, published as PyTorch
checkpoints whose Linear layers are quantized to int8; `scripts/convert_edgeface.py` turns them
into the float ONNX files under `kao/recognition/weights/` (equal to the dequantized PyTorch
network to 2e-6), and `tests/test_edgeface.py` checks them against its reference outputs.
Each face is aligned by the similarity transform (rotation, uniform scale, translation; least
squares) that maps its five keypoints onto `TEMPLATE`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from kao.errors import KaoError
from kao.face import Face
from kao.models.runtime import onnx_session

SIZES = ("xxs", "xs")
"""The EdgeFace networks kao ships: XX-small (1.24 M parameters) and X-small (2.24 M)."""
DIMENSION = 512
CROP_SIZE = 112
TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    np.float64,
)
"""The ArcFace five-point template in a 112 x 112 crop (x, y pixels), in `KEYPOINT_NAMES`
order: the subject's right eye (image left), left eye, nose tip, right and left mouth corner."""
WEIGHTS = Path(__file__).resolve().parent / "weights"


def model_name(size: str) -> str:
    """The name stored with the embeddings of EdgeFace `size` ("xxs" or "xs")."""
    return f"edgeface_{size}"


def similarity_transform(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The 2 x 3 matrix (float64) of the similarity transform (rotation, uniform scale,
    translation) that maps the (N, 2) points `source` onto `target` best in the least-squares
    sense (Umeyama 1991), N >= 2."""
    source, target = np.asarray(source, np.float64), np.asarray(target, np.float64)
    source_mean, target_mean = source.mean(axis=0), target.mean(axis=0)
    a, b = source - source_mean, target - target_mean
    u, singular, vt = np.linalg.svd(b.T @ a)
    fix = np.diag([1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])
    rotation = u @ fix @ vt
    scale = float((singular * np.diag(fix)).sum() / max((a**2).sum(), 1e-12))
    return np.hstack([scale * rotation, (target_mean - scale * rotation @ source_mean)[:, None]])


def align(rgb: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
    """The 112 x 112 x 3 uint8 crop of `rgb` (H x W x 3 uint8) in which the face's five
    `keypoints` ((5, 2) pixels, `KEYPOINT_NAMES` order) lie as close as a similarity transform
    brings them to `TEMPLATE`; outside the image is its repeated border."""
    matrix = similarity_transform(keypoints, TEMPLATE)
    return cv2.warpAffine(
        rgb, matrix, (CROP_SIZE, CROP_SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


class EdgeFaceEmbedder:
    """EdgeFace `size` ("xxs" or "xs"): aligns faces by their keypoints and turns them into
    L2-normalised 512-d float32 vectors (ONNX Runtime, `threads` intra-op threads)."""

    dimension = DIMENSION

    def __init__(self, size: str = "xxs", threads: int | None = None) -> None:
        if size not in SIZES:
            raise KaoError(f"unknown EdgeFace size {size!r}; choose one of {', '.join(SIZES)}")
        self.size = size
        self.name = model_name(size)
        self._session = onnx_session(WEIGHTS / f"edgeface_{size}.onnx", threads)

    def chips(self, rgb: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
        """Aligned crops of `faces` found in `rgb`, (N, 112, 112, 3) uint8 RGB. Raises KaoError
        for a face without keypoints (all zero), which cannot be aligned."""
        crops = []
        for i, face in enumerate(faces):
            if face.keypoints is None or not np.any(face.keypoints):
                raise KaoError(
                    f"face {i + 1} (box {np.round(face.box).astype(int).tolist()}) has no "
                    f"keypoints: {self.name} aligns faces by their five keypoints"
                )
            crops.append(align(rgb, face.keypoints))
        if not crops:
            return np.zeros((0, CROP_SIZE, CROP_SIZE, 3), np.uint8)
        return np.stack(crops)

    def embed_chips(self, chips: np.ndarray) -> np.ndarray:
        """(N, 112, 112, 3) uint8 aligned crops -> (N, 512) float32 unit vectors."""
        chips = np.asarray(chips, np.uint8)
        if not len(chips):
            return np.zeros((0, DIMENSION), np.float32)
        (vectors,) = self._session.run(None, {"input": normalise(chips)})
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)

    def embed(self, rgb: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
        """Embeddings of `faces` found in `rgb` (H x W x 3 uint8) -> (N, 512) float32."""
        return self.embed_chips(self.chips(rgb, faces))


def normalise(chips: np.ndarray) -> np.ndarray:
    """(N, 112, 112, 3) uint8 RGB -> the network's input (N, 3, 112, 112) float32 in [-1, 1]:
    (x / 255 - 0.5) / 0.5."""
    return np.ascontiguousarray(
        ((chips.astype(np.float32) / 255.0 - 0.5) / 0.5).transpose(0, 3, 1, 2)
    )
