"""The classic 68-point iBUG 300-W layout (dlib's `shape_predictor_68_face_landmarks` order)
read off the 468-point FaceMesh, so users of dlib-style landmarks need no iBUG model (whose
licence forbids commercial use).

`MESH_TO_68[i]` is the FaceMesh vertex that stands for 68-point number `i` (0-based; iBUG's
1-based number minus one). Groups, with right/left the subject's (right = image left):

- 0-16 jaw line, from the right ear (image left) over the chin (8) to the left ear;
- 17-21 right eyebrow, 22-26 left eyebrow, each from image left to right;
- 27-30 nose bridge, top to tip; 31-35 nostrils' lower edge, image left to right;
- 36-41 right eye, 42-47 left eye: each from its image-left corner, clockwise in the image;
- 48-59 outer lip contour from the right mouth corner, clockwise; 60-67 inner lip contour.

How the table was made (once, by kao's authors, with `scripts/fit_landmark_tables.py mesh68`;
not at run time): on 400 seeded-random LFW photos, kao's detector box was given both to FaceMesh
(`kao.landmarks.FaceMesh`) and to dlib's 68-point predictor; for each of the 68 points the vertex
with the smallest mean distance to dlib's point (divided by the distance between dlib's eye
centres) was kept. A fixed vertex cannot follow the jaw's silhouette as the head turns (300-W
annotators place the jaw points on the visible outline), so on strongly turned faces the jaw
points lie on the cheek. Measured against dlib's predictor on 149 other LFW photos by the same
script: mean distance 0.090 of the eye distance (jaw 0.122, the other 51 points 0.079)."""

from __future__ import annotations

import numpy as np

# fmt: off
MESH_TO_68 = np.array(
    [
        127, 234, 177, 215, 172, 136, 149, 148, 152, 377, 378, 365, 397, 435, 401, 454, 356,  # jaw
        70, 63, 105, 66, 55,  # right eyebrow
        285, 296, 334, 293, 300,  # left eyebrow
        168, 197, 5, 4,  # nose bridge
        75, 97, 164, 326, 460,  # nostrils
        7, 159, 158, 155, 153, 144,  # right eye
        382, 385, 386, 249, 373, 380,  # left eye
        61, 39, 37, 11, 302, 304, 291, 405, 314, 17, 84, 181,  # outer lips
        62, 82, 13, 312, 292, 317, 14, 87,  # inner lips
    ],
    np.int64,
)
# fmt: on
"""FaceMesh vertex index of each of the 68 iBUG points (shape (68,))."""

JAW = slice(0, 17)
RIGHT_BROW = slice(17, 22)
LEFT_BROW = slice(22, 27)
NOSE = slice(27, 36)
RIGHT_EYE = slice(36, 42)
LEFT_EYE = slice(42, 48)
MOUTH = slice(48, 68)


def landmarks_68(mesh: np.ndarray) -> np.ndarray:
    """The (68, 2) float32 iBUG points (x, y) of a (468, 2 or 3) FaceMesh, same pixels."""
    return np.asarray(mesh)[MESH_TO_68, :2].astype(np.float32)
