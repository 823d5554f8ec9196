"""Verification: are two faces the same person? Distances, the calibrated threshold, the
false-accept rate of a distance and a similarity in [0, 1].

Each embedding model is calibrated on LFW by `kao eval lfw` (see docs/BENCHMARKS.md): same
person when the Euclidean distance between the unit embeddings is below its `threshold` (the
best on the 6,000 standard pairs); `FAR_TABLES` give the distance at which a share of strangers
(every pair of LFW photos of two people) match, and `similarity` spreads a distance over [0, 1]
through those points."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from kao.errors import KaoError
from kao.face import Face
from kao.image import ImageInput
from kao.recognition.dlib_resnet import MODEL_NAME


@dataclass(frozen=True)
class Calibration:
    """Decision threshold: the Euclidean distance of unit vectors below which two faces are
    the same person."""

    threshold: float


CALIBRATIONS = {
    MODEL_NAME: Calibration(threshold=0.4159),
    "edgeface_xxs": Calibration(threshold=1.2073),
    "edgeface_xs": Calibration(threshold=1.2261),
}
"""From `kao eval lfw --data ../shared/data/lfw --json --model M` (threshold)."""


FAR_TABLES = {
    MODEL_NAME: ((1e-1, 0.4826), (1e-2, 0.4198), (1e-3, 0.3743), (1e-4, 0.3350), (1e-5, 0.3013)),
    "edgeface_xxs": (
        (1e-1, 1.3295),
        (1e-2, 1.2603),
        (1e-3, 1.2017),
        (1e-4, 1.1454),
        (1e-5, 1.0900),
    ),
    "edgeface_xs": ((1e-1, 1.3377), (1e-2, 1.2731), (1e-3, 1.2173), (1e-4, 1.1620), (1e-5, 1.1066)),
}
"""(false-accept rate, distance threshold) per model, rates descending: the share of LFW's
29,640,749 impostor pairs (every pair of its 7,701 photos of two people) closer than the
distance. From `kao eval lfw --data ../shared/data/lfw --json --model M` (all_pairs.at_far)."""


def _far_rows(model: str) -> dict[float, float]:
    """`model`'s table as {false-accept rate: distance}; KaoError for a model without one."""
    try:
        return dict(FAR_TABLES[model])
    except KeyError:
        raise KaoError(f"no false-accept-rate table is known for model {model!r}") from None


def _far_table(model: str) -> tuple[np.ndarray, np.ndarray]:
    """(log10 false-accept rates, distances) of `model`'s table, both increasing."""
    rows = np.asarray(sorted(_far_rows(model).items()))
    return np.log10(rows[:, 0]), rows[:, 1]


def threshold_at_far(far: float, model: str = MODEL_NAME) -> float:
    """The distance threshold at which a share `far` of impostor pairs would match, from the
    model's `FAR_TABLES` (interpolated linearly in log10 far). Raises `KaoError` when `far` is
    outside the table's range."""
    logs, distances = _far_table(model)
    low, high = 10.0 ** logs[0], 10.0 ** logs[-1]
    if not (math.isfinite(far) and low <= far <= high):
        raise KaoError(
            f"far {far:g} is outside the calibrated range {low:g} to {high:g} of model {model!r}"
        )
    return float(np.interp(math.log10(far), logs, distances))


def false_accept_rate(distance: float, model: str = MODEL_NAME) -> float:
    """The share of impostor pairs (two people) at or below `distance`, from the model's
    `FAR_TABLES` (interpolated linearly in log10 far), clamped to the table's range: the
    smallest rate (1e-5) means that rate or less, the largest (0.1) that rate or more."""
    logs, distances = _far_table(model)
    return float(10.0 ** np.interp(distance, distances, logs))


def calibration(model: str) -> Calibration:
    """The calibration of embedding model `model`."""
    try:
        return CALIBRATIONS[model]
    except KeyError:
        raise KaoError(f"no verification threshold is known for model {model!r}") from None


SIMILARITY_VALUES = (1.0, 0.9, 0.5, 0.2, 0.0)
"""The similarity at distance 0, at the distance where 1 in 100,000 strangers match (false-accept
rate 1e-5 in `FAR_TABLES`), at the calibrated threshold, where 1 in 10 strangers match (1e-1),
and at distance 2 (opposite vectors); `similarity` is linear in between."""


def similarity(distance: float, model: str = MODEL_NAME) -> float:
    """Similarity in [0, 1] for a Euclidean `distance` between two unit embeddings of `model`,
    decreasing with the distance through `SIMILARITY_VALUES`. It reads the same for every
    model: above 0.9 closer than all but 1 in 100,000 strangers, 0.5 at the model's calibrated
    threshold, 0.2 where 1 in 10 strangers match."""
    far = _far_rows(model)
    distances = (0.0, far[1e-5], calibration(model).threshold, far[1e-1], 2.0)
    return float(np.interp(distance, distances, SIMILARITY_VALUES))


def distance(a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean distance between two embeddings (D,) -> in [0, 2] for unit vectors."""
    return float(np.linalg.norm(np.asarray(a, np.float32) - np.asarray(b, np.float32)))


@dataclass(frozen=True)
class Side:
    """One image of a verification: `faces` found, the `index` (0-based position in
    `kao.detect`'s list) of the face used, and that face."""

    faces: int
    index: int
    face: Face

    @property
    def number(self) -> int:
        """The face used as people see it numbered: from 1, in `kao detect` order."""
        return self.index + 1


@dataclass(frozen=True)
class Verification:
    """The answer of `verify`: same person or not, with the evidence."""

    same: bool
    distance: float
    threshold: float
    similarity: float
    far: float
    model: str
    a: Side
    b: Side

    def to_dict(self) -> dict[str, Any]:
        """JSON form: same, distance, threshold, similarity, far (the calibrated false-accept
        rate of this distance, see `false_accept_rate`), model, and per image the number of faces
        found, the face used (numbered from 1, in `kao detect` order) and its box."""

        def side(s: Side) -> dict[str, Any]:
            return {"faces": s.faces, "face": s.number, "box": s.face.to_dict()["box"]}

        return {
            "same": self.same,
            "distance": round(self.distance, 4),
            "threshold": self.threshold,
            "similarity": round(self.similarity, 4),
            "far": float(f"{self.far:.3g}"),
            "model": self.model,
            "a": side(self.a),
            "b": side(self.b),
        }


def decision_threshold(
    model: str = MODEL_NAME, *, threshold: float | None = None, far: float | None = None
) -> float:
    """The distance below which two faces of `model` are the same person: `threshold` as given,
    or the one at false-accept rate `far` (`threshold_at_far`), or the model's calibrated one.
    Raises `KaoError` when both are given or `threshold` is not in (0, 2]."""
    if threshold is not None and far is not None:
        raise KaoError("give a threshold or a far, not both")
    if far is not None:
        return threshold_at_far(far, model)
    if threshold is None:
        return calibration(model).threshold
    if not (math.isfinite(threshold) and 0.0 < threshold <= 2.0):
        raise KaoError(f"threshold {threshold:g} is not a distance in (0, 2]")
    return threshold


def compare(
    a: Face, b: Face, model: str = MODEL_NAME, threshold: float | None = None
) -> tuple[bool, float, float]:
    """(same, distance, similarity) of two embedded faces; same when the distance is below
    `threshold` (default: the model's calibrated threshold)."""
    if a.embedding is None or b.embedding is None:
        raise KaoError("both faces need an embedding (see kao.embed)")
    d = distance(a.embedding, b.embedding)
    limit = calibration(model).threshold if threshold is None else threshold
    return d < limit, d, similarity(d, model)


def verify(
    a: ImageInput,
    b: ImageInput,
    *,
    index_a: int | None = None,
    index_b: int | None = None,
    embedder: Any = None,
    threshold: float | None = None,
    far: float | None = None,
) -> Verification:
    """Whether images `a` and `b` show the same person.

    Each image's largest face is used unless `index_a` / `index_b` picks one: its 0-based
    position in the list `kao.detect` returns for the image, so face number N (as the CLI,
    JSON and HTTP API number faces, from 1) is index N - 1. Raises `NoFaceError` naming the
    image when it has no face, `KaoError` when it has no face at that index.

    Same person when the distance is below `threshold`, or below the distance at false-accept
    rate `far` (e.g. 1e-4: 1 in 10,000 strangers would match; see `threshold_at_far`), or by
    default below the model's calibrated threshold; give at most one of the two."""
    from kao.recognition.embedder import default_embedder

    embedder = embedder or default_embedder()
    model = embedder.model_name
    limit = decision_threshold(model, threshold=threshold, far=far)
    first, index_a, count_a = embedder.embed_one(a, index_a)
    second, index_b, count_b = embedder.embed_one(b, index_b)
    same, d, sim = compare(first, second, model, limit)
    return Verification(
        same=same,
        distance=d,
        threshold=round(limit, 4),
        similarity=sim,
        far=false_accept_rate(d, model),
        model=model,
        a=Side(count_a, index_a, first),
        b=Side(count_b, index_b, second),
    )
