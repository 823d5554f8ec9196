"""Face crops for the models after detection: a square crop around the box, upright by the eyes.

Every crop comes with the 2 x 3 affine matrix that maps original-image pixels to crop pixels,
so points a model finds in the crop can be mapped back (`invert`, `apply`). `aligned_faces` is
the front door: ``kao.aligned_faces("group.jpg")`` -> one upright crop per detected face."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from kao.detection import detect
from kao.face import Face
from kao.image import ImageInput, load_image

ALIGNED_SIZE = 112
"""Default side of an `aligned_faces` crop, pixels."""
ALIGNED_SCALE = 1.25
"""Default side of an `aligned_faces` crop over the face box's longer side."""


def crop_matrix(
    face: Face, size: int, *, scale: float = 1.0, upright: bool = True, shift: float = 0.0
) -> np.ndarray:
    """The 2 x 3 affine matrix (float64) that maps image pixels to a `size` x `size` crop.

    The crop is a square centred on the face's box, `scale` times the box's longer side, moved
    down by `shift` box heights (negative: up); with `upright`, it is rotated so that the line
    between the eyes (keypoints 0 and 1) is horizontal."""
    x1, y1, x2, y2 = (float(v) for v in face.box)
    side = max(x2 - x1, y2 - y1) * scale
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2 + shift * (y2 - y1)
    angle = 0.0
    if upright and face.keypoints is not None and np.any(face.keypoints):
        right_eye, left_eye = face.keypoints[0], face.keypoints[1]
        dx, dy = float(left_eye[0] - right_eye[0]), float(left_eye[1] - right_eye[1])
        angle = float(np.degrees(np.arctan2(dy, dx)))
    matrix = cv2.getRotationMatrix2D((cx, cy), angle, size / max(side, 1.0))
    matrix[:, 2] += (size / 2 - cx, size / 2 - cy)
    return matrix


def warp(rgb: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """The `size` x `size` crop of `rgb` (H x W x C uint8) under `matrix`; outside the image is
    filled by repeating its border pixels (as a face cut at the edge of a photo looks)."""
    return cv2.warpAffine(
        rgb, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def face_crop(rgb: np.ndarray, face: Face, size: int, **options: float | bool) -> np.ndarray:
    """`warp(rgb, crop_matrix(face, size, **options), size)`: the face's crop, size x size x 3."""
    return warp(rgb, crop_matrix(face, size, **options), size)  # type: ignore[arg-type]


def aligned_faces(
    image: ImageInput,
    faces: Sequence[Face] | None = None,
    *,
    size: int = ALIGNED_SIZE,
    scale: float = ALIGNED_SCALE,
) -> list[np.ndarray]:
    """One aligned crop per face of `image` (path, bytes, RGB array or PIL image, as
    `kao.detect`): `size` x `size` x 3 uint8 RGB, a square `scale` times the box's longer side
    centred on the box and turned so the eyes are level. `faces` are the faces to crop (default:
    ``kao.detect(image)``, best score first); the crops are in their order."""
    if size < 1 or scale <= 0:
        raise ValueError(f"aligned_faces: size must be >= 1 and scale > 0, got {size} and {scale}")
    rgb = load_image(image)
    chosen = detect(rgb) if faces is None else faces
    return [face_crop(rgb, face, size, scale=scale) for face in chosen]


def invert(matrix: np.ndarray) -> np.ndarray:
    """The inverse of a 2 x 3 affine matrix (crop pixels back to image pixels)."""
    return cv2.invertAffineTransform(matrix)


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """`points` (N, 2), or (N, 3) whose z is scaled by the matrix's scale, mapped by the 2 x 3
    `matrix`; float32."""
    points = np.asarray(points, np.float64)
    moved = points[:, :2] @ matrix[:, :2].T + matrix[:, 2]
    if points.shape[1] == 2:
        return moved.astype(np.float32)
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    return np.column_stack([moved, points[:, 2] * scale]).astype(np.float32)


def whole_image_face(rgb: np.ndarray) -> Face:
    """A `Face` covering all of `rgb`: the face of an image that is already one face crop
    (`cropped=True`), with no keypoints (all zero) and score 1."""
    height, width = rgb.shape[:2]
    box = np.array([0, 0, width, height], np.float32)
    return Face(box=box, score=1.0, keypoints=np.zeros((5, 2), np.float32))
