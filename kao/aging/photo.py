"""Aging a face of a photo from start to end: find the face, mesh it, estimate its age, move it.

``older = kao.age_face("portrait.jpg", 70)`` is the photo (H x W x 3 uint8 RGB) with its
largest face aged to 70 years; `meshed_face` and `estimated_age` are the steps before
`kao.aging.age_transform` and `kao.aging.age_grid`."""

from __future__ import annotations

import numpy as np

from kao.aging.prototypes import Prototypes
from kao.aging.transform import age_transform
from kao.detection import analysis_detector
from kao.errors import KaoError
from kao.face import Face
from kao.image import ImageInput, describe, load_image
from kao.landmarks import FaceMesh


def meshed_face(
    rgb: np.ndarray, face: Face | None = None, *, cropped: bool = False, source: str = "image"
) -> Face:
    """The face to transform, with its mesh: the image itself with `cropped`, else `face` (one
    of ``kao.detect(rgb)``'s faces, or any face with a box), by default the largest face the
    analysis detector finds. KaoError naming `source` when there is no face or FaceMesh does
    not see one in the box."""
    mesher = FaceMesh(iris=False)
    if cropped:
        return mesher.run_cropped(rgb)
    if face is None:
        faces = analysis_detector().detect(rgb)
        if not faces:
            raise KaoError(f"{source}: no face found")
        face = max(faces, key=lambda found: found.area)
    (meshed,) = mesher.run(rgb, [face])
    if meshed.mesh is None:
        box = ", ".join(f"{v:.0f}" for v in face.box)
        raise KaoError(f"{source}: FaceMesh does not see the face at [{box}] as a face")
    return meshed


def estimated_age(rgb: np.ndarray, face: Face, *, cropped: bool) -> float:
    """kao's age estimate of `face` in `rgb` (years)."""
    from kao.attributes.age_gender import AgeGender

    model = AgeGender()
    (result,) = model.classify([rgb]) if cropped else model.predict(rgb, [face])
    return result.age


def age_face(
    image: ImageInput,
    target_age: float,
    *,
    face: Face | None = None,
    source_age: float | None = None,
    cropped: bool = False,
    strength: float = 1.0,
    prototypes: Prototypes | None = None,
) -> np.ndarray:
    """A copy of `image` (path, bytes, RGB array or PIL image, as `kao.detect`; H x W x 3 uint8
    RGB) with one face moved from its age band to that of `target_age` (years).

    `face` is the face to age (one of ``kao.detect(image)``'s; default: the largest face), or
    with `cropped` the image is that face already. `source_age` is the face's own age in years
    (default: kao's estimate). `strength` scales the change (0: none, 1: the full difference
    of the two bands' prototypes). Raises KaoError when there is no such face."""
    rgb = load_image(image)
    meshed = meshed_face(rgb, face, cropped=cropped, source=describe(image))
    if source_age is None:
        source_age = estimated_age(rgb, meshed, cropped=cropped)
    return age_transform(
        rgb,
        meshed,
        source_age=source_age,
        target_age=target_age,
        prototypes=prototypes,
        strength=strength,
    )
