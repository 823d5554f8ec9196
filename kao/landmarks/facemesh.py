"""MediaPipe FaceMesh (468 3D points) and Iris (5 iris points per eye) on detected faces.

Pipeline per face, each crop an affine warp from `kao.align` so points map back exactly:

1. FaceMesh crop: 192 x 192, upright by the detector's eye keypoints, `MESH_SCALE` times the
   box's longer side, moved down `MESH_SHIFT` box heights. MediaPipe crops 1.5 x the bounding
   box of the previous frame's landmarks; on 70 faces (LFW and WIDER) the landmarks span 0.91 of
   the YuNet box's side and are centred 0.054 box heights below its centre, so 1.35 and 0.05
   frame the face as the network saw it in training. Pixels are scaled to [0, 1].
2. The network gives 468 (x, y, z) in crop pixels (z: depth at the same scale, smaller is nearer
   the camera) and a face-presence logit; points are mapped back to image pixels.
3. Iris crops: 64 x 64 around each eye's two corners (mesh 33/133 and 362/263), upright along
   the corner line, `IRIS_SCALE` x the corner distance (MediaPipe's framing). The network was
   trained on the eye on the image's left; the other eye's crop is mirrored and the points
   mirrored back. Of its outputs kao keeps the 5 iris points (centre first).

An image that is already one face crop (`FaceMesh.run_cropped`) is read whole, then read again
from the crop MediaPipe would make from those landmarks (1.5 x their bounding box).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from kao import align
from kao.errors import KaoError
from kao.face import Face
from kao.landmarks.ibug68 import landmarks_68
from kao.landmarks.litert import TfliteModel
from kao.models import model_path

SPEC_NAME = "mediapipe_face"
MESH_FILE = "face_landmark.tflite"
IRIS_FILE = "iris_landmark.tflite"
MESH_SIZE = 192
IRIS_SIZE = 64
MESH_SCALE = 1.35
MESH_SHIFT = 0.05
LANDMARK_SCALE = 1.5
"""Crop side over the landmarks' bounding box side (MediaPipe's tracking crop)."""
IRIS_SCALE = 2.3
MESH_POINTS = 468
EYE_CORNERS = ((33, 133), (362, 263))
"""Mesh indices of the corners of the right eye (image left: outer, inner) and of the left eye
(image right: inner, outer), each pair in image left-to-right order."""
FIVE_POINTS = ((33, 133), (362, 263), (1,), (61,), (291,))
"""Mesh indices averaged into `Face.keypoints` order: eye centres (corner midpoints), nose tip,
mouth corners."""
MIN_PRESENCE = 0.5
"""Faces whose presence probability (FaceMesh's own score) is below this get no mesh."""
LANDMARK_KEYS = ("mesh", "iris", "landmarks_68")
"""The `Face` attributes FaceMesh sets."""


def _points(model_output: np.ndarray, count: int) -> np.ndarray:
    """(count, 3) float64 crop-pixel points from a flat network output; the network's x, y are
    continuous (pixel i spans [i, i + 1]), kao's crops put pixel i at coordinate i."""
    points = model_output[: count * 3].reshape(count, 3).astype(np.float64)
    points[:, :2] -= 0.5
    return points


def without_landmarks(face: Face, reason: str) -> Face:
    """`face` with `reason` recorded in its `missing` for each of `LANDMARK_KEYS`."""
    return dataclasses.replace(
        face, missing={**(face.missing or {}), **dict.fromkeys(LANDMARK_KEYS, reason)}
    )


def five_points(mesh: np.ndarray) -> np.ndarray:
    """The 5 keypoints (5, 2) float32 (eye centres, nose tip, mouth corners) of a (468, >=2)
    mesh, in `kao.face.KEYPOINT_NAMES` order."""
    return np.array([mesh[list(group), :2].mean(axis=0) for group in FIVE_POINTS], np.float32)


class FaceMesh:
    """468 3D landmarks, iris points and the 68-point layout for faces found by `kao.detect`.

    Example: ``faces = FaceMesh().run(rgb, kao.detect(rgb))``. Thread-safe."""

    def __init__(self, *, iris: bool = True, min_presence: float = MIN_PRESENCE) -> None:
        self.mesh_model = TfliteModel(model_path(SPEC_NAME, MESH_FILE))
        self.iris_model = TfliteModel(model_path(SPEC_NAME, IRIS_FILE)) if iris else None
        self.min_presence = min_presence

    def mesh(
        self,
        rgb: np.ndarray,
        faces: Sequence[Face],
        *,
        scale: float = MESH_SCALE,
        shift: float = MESH_SHIFT,
    ) -> tuple[np.ndarray, np.ndarray]:
        """FaceMesh alone: ``(points, presence)``, points (N, 468, 3) float32 image pixels
        (z: depth, same scale, smaller is nearer), presence (N,) probability a face is there."""
        matrices = [align.crop_matrix(face, MESH_SIZE, scale=scale, shift=shift) for face in faces]
        if not matrices:
            return np.zeros((0, MESH_POINTS, 3), np.float32), np.zeros((0,), np.float32)
        crops = np.stack([align.warp(rgb, matrix, MESH_SIZE) for matrix in matrices])
        outputs = self.mesh_model.run(crops.astype(np.float32) / 255.0)
        flat = next(out for out in outputs if out.shape[1] == MESH_POINTS * 3)
        logit = next(out for out in outputs if out.shape[1] == 1)[:, 0]
        points = np.stack(
            [
                align.apply(align.invert(matrix), _points(row, MESH_POINTS))
                for matrix, row in zip(matrices, flat, strict=False)
            ]
        )
        presence = 1.0 / (1.0 + np.exp(-logit.astype(np.float64)))
        return points, presence.astype(np.float32)

    def iris(self, rgb: np.ndarray, mesh: np.ndarray) -> np.ndarray:
        """The (10, 3) float32 iris points of one face's (468, 3) mesh, image pixels: 5 of the
        right eye (the image's left; centre first), then 5 of the left eye."""
        if self.iris_model is None:
            raise KaoError("this FaceMesh was made with iris=False")
        matrices, crops = [], []
        for index, (first, second) in enumerate(EYE_CORNERS):
            corners = mesh[[first, second], :2]
            centre = corners.mean(axis=0)
            half = float(np.linalg.norm(corners[1] - corners[0])) * IRIS_SCALE / 2
            eye = Face(
                box=np.array([*(centre - half), *(centre + half)], np.float32),
                score=1.0,
                keypoints=np.array([corners[0], corners[1], centre, centre, centre], np.float32),
            )
            matrix = align.crop_matrix(eye, IRIS_SIZE)
            if index == 1:  # mirror: the network reads eyes on the image's left
                flip = np.array([[-1.0, 0.0, IRIS_SIZE - 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
                matrix = (flip @ np.vstack([matrix, [0.0, 0.0, 1.0]]))[:2]
            matrices.append(matrix)
            crops.append(align.warp(rgb, matrix, IRIS_SIZE))
        outputs = self.iris_model.run(np.stack(crops).astype(np.float32) / 255.0)
        flat = next(out for out in outputs if out.shape[1] == 15)
        return np.concatenate(
            [
                align.apply(align.invert(m), _points(row, 5))
                for m, row in zip(matrices, flat, strict=False)
            ]
        )

    def run(self, rgb: np.ndarray, faces: Sequence[Face]) -> list[Face]:
        """`faces` (found in `rgb`, H x W x 3 uint8 RGB) with `mesh` (468, 3), `iris` (10, 3) and
        `landmarks_68` (68, 2) set, in image pixels; a face FaceMesh does not see as a face
        (presence below `min_presence`) is returned without them, the reason (with its
        presence) in its `missing`."""
        points, presence = self.mesh(rgb, faces)
        return [
            self._complete(rgb, face, mesh)
            if score >= self.min_presence
            else without_landmarks(
                face,
                f"FaceMesh does not see a face in this box (presence {score:.2f} < "
                f"{self.min_presence})",
            )
            for face, mesh, score in zip(faces, points, presence, strict=False)
        ]

    def run_cropped(self, rgb: np.ndarray) -> Face:
        """The face of `rgb`, an image that is already one face crop: a `Face` whose box is the
        whole image and whose keypoints come from the mesh, with mesh, iris and 68 points.
        Raises `KaoError` when FaceMesh finds no face in it."""
        first, _ = self.mesh(rgb, [align.whole_image_face(rgb)], scale=1.0, shift=0.0)
        mesh = first[0]
        lower, upper = mesh[:, :2].min(axis=0), mesh[:, :2].max(axis=0)
        tracked = Face(
            box=np.concatenate([lower, upper]).astype(np.float32),
            score=1.0,
            keypoints=five_points(mesh),
        )
        second, presence = self.mesh(rgb, [tracked], scale=LANDMARK_SCALE, shift=0.0)
        if presence[0] < self.min_presence:
            raise KaoError(
                f"no face in this crop (FaceMesh presence {presence[0]:.2f} < "
                f"{self.min_presence}); pass a whole photo instead"
            )
        face = dataclasses.replace(
            align.whole_image_face(rgb), keypoints=five_points(second[0]), score=float(presence[0])
        )
        return self._complete(rgb, face, second[0])

    def _complete(self, rgb: np.ndarray, face: Face, mesh: np.ndarray) -> Face:
        iris = self.iris(rgb, mesh) if self.iris_model is not None else None
        return dataclasses.replace(
            face, mesh=mesh.astype(np.float32), iris=iris, landmarks_68=landmarks_68(mesh)
        )
