"""Verification: are two faces the same person? Distances, the calibrated threshold and a
similarity in [0, 1].

The threshold and the similarity curve of each embedding model are calibrated on LFW's 6,000
pairs by `kao eval lfw` (see docs/BENCHMARKS.md): same person when the Euclidean distance
between the unit embeddings is below `threshold`; similarity = 1 / (1 + exp(slope x (distance -
threshold))), the logistic fit of P(same | distance) on those pairs, so 0.5 at the threshold."""

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
    """Decision threshold (Euclidean distance of unit vectors) and logistic slope (1/distance)."""

    threshold: float
    slope: float


CALIBRATIONS = {
    MODEL_NAME: Calibration(threshold=0.4159, slope=70.82),
    "edgeface_xxs": Calibration(threshold=1.2073, slope=35.24),
    "edgeface_xs": Calibration(threshold=1.2261, slope=39.15),
}
"""From `kao eval lfw --data ../shared/data/lfw --json --model M` (threshold, similarity_slope)."""


def calibration(model: str) -> Calibration:
    """The calibration of embedding model `model`."""
    try:
        return CALIBRATIONS[model]
    except KeyError:
        raise KaoError(f"no verification threshold is known for model {model!r}") from None


def similarity(distance: float, model: str = MODEL_NAME) -> float:
    """Similarity in [0, 1] for a Euclidean `distance` between two unit embeddings."""
    c = calibration(model)
    return 1.0 / (1.0 + math.exp(min(60.0, c.slope * (distance - c.threshold))))


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
    model: str
    a: Side
    b: Side

    def to_dict(self) -> dict[str, Any]:
        """JSON form: same, distance, threshold, similarity, model, and per image the number of
        faces found, the face used (numbered from 1, in `kao detect` order) and its box."""

        def side(s: Side) -> dict[str, Any]:
            return {"faces": s.faces, "face": s.number, "box": s.face.to_dict()["box"]}

        return {
            "same": self.same,
            "distance": round(self.distance, 4),
            "threshold": self.threshold,
            "similarity": round(self.similarity, 4),
            "model": self.model,
            "a": side(self.a),
            "b": side(self.b),
        }


def compare(a: Face, b: Face, model: str = MODEL_NAME) -> tuple[bool, float, float]:
    """(same, distance, similarity) of two embedded faces."""
    if a.embedding is None or b.embedding is None:
        raise KaoError("both faces need an embedding (see kao.embed)")
    d = distance(a.embedding, b.embedding)
    return d < calibration(model).threshold, d, similarity(d, model)


def verify(
    a: ImageInput,
    b: ImageInput,
    *,
    index_a: int | None = None,
    index_b: int | None = None,
    embedder: Any = None,
) -> Verification:
    """Whether images `a` and `b` show the same person.

    Each image's largest face is used unless `index_a` / `index_b` picks one: its 0-based
    position in the list `kao.detect` returns for the image, so face number N (as the CLI,
    JSON and HTTP API number faces, from 1) is index N - 1. Raises `NoFaceError` naming the
    image when it has no face, `KaoError` when it has no face at that index."""
    from kao.recognition.embedder import default_embedder

    embedder = embedder or default_embedder()
    first, index_a, count_a = embedder.embed_one(a, index_a)
    second, index_b, count_b = embedder.embed_one(b, index_b)
    same, d, sim = compare(first, second, embedder.model_name)
    return Verification(
        same=same,
        distance=d,
        threshold=calibration(embedder.model_name).threshold,
        similarity=sim,
        model=embedder.model_name,
        a=Side(count_a, index_a, first),
        b=Side(count_b, index_b, second),
    )
