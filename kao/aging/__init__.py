"""Face aging with age-group prototypes: a face's shape and texture moved by the difference
between its own age band's mean face and a target band's.

Example (a face with its mesh, from ``kao.landmarks.FaceMesh().run(rgb, kao.detect(rgb))``):
``older = age_transform(rgb, face, source_age=25, target_age=70)``; ``age_grid(rgb, face,
[10, 40, 80], source_age=25)`` -> one labelled tile per age."""

from __future__ import annotations

from kao.aging.grid import age_grid
from kao.aging.prototypes import BANDS, Prototypes, load_prototypes, read_prototypes
from kao.aging.transform import age_transform

__all__ = ["BANDS", "Prototypes", "age_grid", "age_transform", "load_prototypes", "read_prototypes"]
