"""`CropModel`: the shape every attribute model shares (crop each face the way the model was
trained, then classify the crops in one batch)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Generic, TypeVar

import numpy as np

from kao.face import Face

Result = TypeVar("Result")


class CropModel(ABC, Generic[Result]):
    """An attribute model that reads one face crop per face.

    Subclasses say how to cut a face out of a photo (`crop`, framed like their training data)
    and how to read a batch of crops (`classify`); an image that is already one face crop
    (`cropped=True` in `kao.analyze`) goes to `classify` as it is."""

    @abstractmethod
    def crop(self, rgb: np.ndarray, face: Face) -> np.ndarray:
        """The crop of `face` in `rgb` (H x W x 3 uint8 RGB) that `classify` expects."""

    @abstractmethod
    def classify(self, crops: Sequence[np.ndarray]) -> list[Result]:
        """One result per crop (each H x W x 3 uint8 RGB, any size: resized as needed)."""

    def predict(self, rgb: np.ndarray, faces: Sequence[Face]) -> list[Result]:
        """One result per face of `faces`, found in `rgb`."""
        if not faces:
            return []
        return self.classify([self.crop(rgb, face) for face in faces])
