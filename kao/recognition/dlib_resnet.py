"""The dlib ResNet face descriptor (public domain, 99.38% on LFW as published) with the
alignment it was trained for: dlib's 5-point shape predictor run inside the detector's box,
then dlib's 150 x 150 face chip (padding 0.25) around those points. The network itself runs
on ONNX Runtime, converted from dlib's file by `kao.recognition.dlib_onnx` (same output to
1e-6, about 14 times faster than the prebuilt dlib)."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import cv2
import numpy as np

from kao.errors import ModelError
from kao.face import Face
from kao.models import model_path
from kao.recognition.dlib_onnx import DlibOnnxNetwork

MODEL_NAME = "dlib_resnet_v1"
"""Stored with every embedding: embeddings of different models are never compared."""
DIMENSION = 128
CHIP_SIZE = 150
CHIP_PADDING = 0.25
AUGMENTATIONS = (
    (0.0, 1.0, 0.0, False),
    (0.0, 1.0, 0.0, True),
    (-3.0, 1.02, 0.02, False),
    (3.0, 1.02, -0.02, True),
)
"""Test-time views of each chip: (rotation in degrees, scale, horizontal shift as a fraction of
the chip, mirrored). The embedding is the mean descriptor of the views: on LFW this lifts
10-fold accuracy from 0.9887 (one view) to 0.991, in the spirit of dlib's own jittering."""
DLIB_BOX = (0.096, 0.145, 0.012, 0.052)
"""Median offsets from a YuNet box to dlib's HOG box for the same face (left, top, right,
bottom; fractions of the YuNet box's width or height), measured on 307 LFW photos."""


class DlibEmbedder:
    """Aligns faces and turns them into L2-normalised 128-d float32 vectors.

    dlib's shape predictor is not safe to call from several threads at once, so alignment is
    serialised by a lock; the ONNX network is shared freely."""

    name = MODEL_NAME
    dimension = DIMENSION

    def __init__(self, threads: int | None = None) -> None:
        try:
            import dlib
        except ImportError as error:
            raise ModelError(
                f"the dlib face descriptor needs the dlib module (pip install dlib-bin): {error}"
            ) from error
        self._dlib = dlib
        spec = "dlib_face_recognition"
        self._predictor = dlib.shape_predictor(
            str(model_path(spec, "shape_predictor_5_face_landmarks.dat"))
        )
        # One thread: on small chips ONNX Runtime runs this network slower on two (measured on
        # the 2-core machine: 14 ms against 34 ms a chip).
        self._network = DlibOnnxNetwork(threads or 1)
        self._lock = threading.Lock()

    def landmarks(self, rgb: np.ndarray, box: Sequence[float]) -> np.ndarray:
        """dlib's 5 alignment points (outer and inner corner of each eye, base of the nose),
        found inside `box` [x1, y1, x2, y2] of `rgb` (H x W x 3 uint8) -> (5, 2) float32 px."""
        with self._lock:
            shape = self._predictor(rgb, self._rectangle(box))
        return np.array([[p.x, p.y] for p in shape.parts()], np.float32)

    def chips(self, rgb: np.ndarray, boxes: Sequence[Sequence[float]]) -> np.ndarray:
        """Aligned face chips, (N, 150, 150, 3) uint8 RGB, one per box."""
        with self._lock:
            shapes = self._dlib.full_object_detections()
            for box in boxes:
                shapes.append(self._predictor(rgb, self._rectangle(box)))
            if not len(shapes):
                return np.zeros((0, CHIP_SIZE, CHIP_SIZE, 3), np.uint8)
            return np.stack(
                self._dlib.get_face_chips(rgb, shapes, size=CHIP_SIZE, padding=CHIP_PADDING)
            )

    def embed_chips(self, chips: np.ndarray) -> np.ndarray:
        """(N, 150, 150, 3) uint8 aligned chips -> (N, 128) float32 unit vectors."""
        chips = np.asarray(chips, np.uint8)
        views = np.concatenate([_view(chips, *v) for v in AUGMENTATIONS])
        matrix = self._network.descriptors(views).reshape(len(AUGMENTATIONS), len(chips), DIMENSION)
        matrix = matrix.mean(axis=0)
        return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)

    def embed(self, rgb: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
        """Embeddings of `faces` found in `rgb` (H x W x 3 uint8) -> (N, 128) float32."""
        return self.embed_chips(self.chips(rgb, [face.box for face in faces]))

    def _rectangle(self, box: Sequence[float]) -> object:
        """The dlib rectangle its shape predictor expects for a kao (YuNet) face box: dlib's
        detector boxes, on which the predictor was trained, start lower (below the brows)
        and end higher (above the chin bottom) than YuNet's and are a little wider."""
        x1, y1, x2, y2 = (float(v) for v in box)
        width, height = x2 - x1, y2 - y1
        for_dlib = (
            x1 - DLIB_BOX[0] * width,
            y1 + DLIB_BOX[1] * height,
            x2 + DLIB_BOX[2] * width,
            y2 - DLIB_BOX[3] * height,
        )
        return self._dlib.rectangle(*(round(v) for v in for_dlib))


def _view(
    chips: np.ndarray, degrees: float, scale: float, shift: float, mirror: bool
) -> np.ndarray:
    """Chips (N, 150, 150, 3) rotated about their centre, scaled, shifted and mirrored (N may
    be 0)."""
    if (degrees, scale, shift) != (0.0, 1.0, 0.0):
        centre = (CHIP_SIZE - 1) / 2
        matrix = cv2.getRotationMatrix2D((centre, centre), degrees, scale)
        matrix[0, 2] += shift * CHIP_SIZE
        warped = np.empty_like(chips)
        for chip, out in zip(chips, warped, strict=True):
            cv2.warpAffine(
                chip, matrix, (CHIP_SIZE, CHIP_SIZE), dst=out, borderMode=cv2.BORDER_REFLECT
            )
        chips = warped
    return np.ascontiguousarray(chips[:, :, ::-1]) if mirror else chips
