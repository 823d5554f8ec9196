"""Face aging with age-group prototypes: a face's shape and texture moved by the difference
between its own age band's mean face and a target band's.

Example (a face with its mesh, from ``kao.landmarks.FaceMesh().run(rgb, kao.detect(rgb))``):
``older = age_transform(rgb, face, source_age=25, target_age=70)``; ``age_grid(rgb, face,
[10, 40, 80], source_age=25)`` -> one labelled tile per age. From a photo alone:
``kao.age_face("portrait.jpg", 70)`` finds, meshes and ages its largest face."""

from __future__ import annotations

from kao.aging.grid import age_grid
from kao.aging.photo import age_face, estimated_age, meshed_face
from kao.aging.prototypes import BANDS, Prototypes, load_prototypes, read_prototypes
from kao.aging.transform import age_transform

__all__ = [
    "BANDS",
    "Prototypes",
    "age_face",
    "age_grid",
    "age_transform",
    "estimated_age",
    "load_prototypes",
    "meshed_face",
    "read_prototypes",
]
