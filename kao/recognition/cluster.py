"""Grouping faces by person without names: agglomerative clustering of embeddings.

``kao.group(["a.jpg", "b.jpg", ...])`` finds and embeds every face of the photos and sorts them
into persons (a `Grouping`); `group_faces` does the sorting for faces already embedded."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from kao.align import face_crop
from kao.errors import ImageError
from kao.face import Face
from kao.image import ImageInput, describe, load_image
from kao.recognition.dlib_resnet import MODEL_NAME as DLIB_MODEL
from kao.recognition.embedder import FaceEmbedder, default_embedder
from kao.recognition.verify import decision_threshold

GROUP_THRESHOLDS = {DLIB_MODEL: 0.35, "edgeface_xxs": 1.15, "edgeface_xs": 1.15}
"""The average-linkage cut of each recognition model (Euclidean distance between unit
embeddings): the best for `kao eval group --model M` on LFW (tuned on the data it is scored on;
see docs/BENCHMARKS.md) of 0.30-0.55 for dlib and of 0.9-1.25 for EdgeFace, in steps of 0.05."""
THUMBNAIL_SCALE = 1.3
"""Side of a `group` thumbnail over the face box's longer side."""
MAX_FACES = 30_000
"""Average linkage keeps all N^2/2 distances in memory (3.6 GB at this size)."""


def cluster(embeddings: np.ndarray, threshold: float) -> np.ndarray:
    """Cluster label (N,) int64 for each row of `embeddings` (N, D unit vectors): average-linkage
    agglomerative clustering that stops merging when the mean Euclidean distance between two
    groups reaches `threshold`. Labels are numbered by group size, largest first, then by first
    member, so the result is deterministic."""
    from scipy.cluster.hierarchy import fcluster, linkage

    count = len(embeddings)
    if count == 0:
        return np.zeros(0, np.int64)
    if count == 1:
        return np.zeros(1, np.int64)
    if count > MAX_FACES:
        raise ValueError(f"{count} faces to group; at most {MAX_FACES} at once")
    tree = linkage(np.asarray(embeddings, np.float64), method="average", metric="euclidean")
    raw = fcluster(tree, t=threshold, criterion="distance")
    groups: dict[int, list[int]] = {}
    for i, label in enumerate(raw):
        groups.setdefault(int(label), []).append(i)
    ordered = sorted(groups.values(), key=lambda members: (-len(members), members[0]))
    labels = np.empty(count, np.int64)
    for number, members in enumerate(ordered):
        labels[members] = number
    return labels


@dataclass(frozen=True)
class FoundFace:
    """An embedded face and the image it came from (a path, or an upload's name); `thumbnail`
    is its S x S x 3 uint8 RGB crop when one was asked for."""

    image: str
    face: Face
    thumbnail: np.ndarray | None = None

    @classmethod
    def embedded(cls, image: str, box: Sequence[float], embedding: Sequence[float]) -> FoundFace:
        """A face embedded elsewhere (e.g. a record of `kao embed --json` or `/v1/embed`):
        `box` [x1, y1, x2, y2] pixels and its `embedding` (D,) unit vector; its score and
        keypoints are not known (NaN)."""
        face = Face(
            box=np.asarray(box, np.float32),
            score=float("nan"),
            keypoints=np.full((5, 2), np.nan, np.float32),
            embedding=np.asarray(embedding, np.float32),
        )
        return cls(image, face)


@dataclass(frozen=True)
class Grouping:
    """The faces of a photo collection sorted by person.

    Attributes:
        found: every face, in the order given.
        groups: per person, the indices into `found` of their faces; the largest group first.
        images: how many images were read (or tried).
        errors: the images that could not be read.
    """

    found: list[FoundFace]
    groups: list[list[int]]
    images: int
    errors: list[ImageError] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON form: people, faces, images, groups [{person (from 1), faces [{image, box}]}],
        errors [{image, error}]."""
        return {
            "people": len(self.groups),
            "faces": len(self.found),
            "images": self.images,
            "groups": [
                {
                    "person": number,
                    "faces": [
                        {"image": self.found[i].image, "box": self.found[i].face.to_dict()["box"]}
                        for i in members
                    ],
                }
                for number, members in enumerate(self.groups, 1)
            ],
            "errors": [{"image": e.source, "error": e.reason} for e in self.errors],
        }


def group_threshold(
    model: str, *, threshold: float | None = None, far: float | None = None
) -> float:
    """The cut `group` and `group_faces` are given for `model`: `GROUP_THRESHOLDS` when neither
    `threshold` nor `far` is given, else `kao.recognition.verify.decision_threshold` (KaoError
    when both are given, a threshold outside (0, 2] or a far outside the model's table)."""
    if threshold is None and far is None:
        return GROUP_THRESHOLDS[model]
    return decision_threshold(model, threshold=threshold, far=far)


def group_faces(
    found: Sequence[FoundFace],
    images: int,
    errors: Sequence[ImageError] = (),
    *,
    threshold: float,
) -> Grouping:
    """Sort embedded faces (each `face.embedding` set) into persons with `cluster`, merging
    groups closer than `threshold` (see `GROUP_THRESHOLDS`)."""
    labels = cluster(np.array([f.face.embedding for f in found]), threshold)
    groups: list[list[int]] = [[] for _ in range(int(labels.max()) + 1 if len(labels) else 0)]
    for index, label in enumerate(labels.tolist()):
        groups[label].append(index)
    return Grouping(list(found), groups, images, list(errors))


def group(
    images: Iterable[ImageInput],
    *,
    threshold: float | None = None,
    far: float | None = None,
    thumbnail: int = 0,
    names: Sequence[str] | None = None,
    embedder: FaceEmbedder | None = None,
    read: Callable[[Any], np.ndarray] | None = None,
) -> Grouping:
    """Every face of `images` (each a path, bytes, RGB array or PIL image, as `kao.detect`, or
    whatever `read` (default `load_image`) turns into an RGB array, raising ImageError when it
    cannot),
    sorted into persons: faces whose embeddings lie closer than `threshold` (mean Euclidean
    distance between groups), or than the distance at false-accept rate `far` (see
    `kao.recognition.verify.threshold_at_far`; at most one of the two; default: the embedder's
    model's `GROUP_THRESHOLDS`) are one person.

    An image that cannot be read is listed in `Grouping.errors` and the others are still
    grouped. With `thumbnail` > 0 each `FoundFace` keeps a `thumbnail` x `thumbnail` crop of
    its face (the square around the box, `THUMBNAIL_SCALE` times its side, not turned).
    `names` are what the images are called in the result (default: each path, or what kind of
    input it is); `embedder` defaults to kao's shared one."""
    embedder = embedder or default_embedder()
    threshold = group_threshold(embedder.model_name, threshold=threshold, far=far)
    found: list[FoundFace] = []
    errors: list[ImageError] = []
    count = 0
    for count, image in enumerate(images, 1):
        name = describe(image) if names is None else names[count - 1]
        try:
            rgb = (read or load_image)(image)
        except ImageError as error:
            errors.append(ImageError(name, error.reason))
            continue
        for face in embedder.embed(rgb):
            crop = None
            if thumbnail > 0:
                crop = face_crop(rgb, face, thumbnail, scale=THUMBNAIL_SCALE, upright=False)
            found.append(FoundFace(name, face, crop))
    return group_faces(found, count, errors, threshold=threshold)


def pairwise_scores(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Pairwise precision, recall and F1 of a clustering: over all pairs of items, a pair is
    positive when both items share a cluster."""
    _, truth = np.unique(truth, return_inverse=True)
    _, predicted = np.unique(predicted, return_inverse=True)
    table = np.zeros((truth.max() + 1, predicted.max() + 1), np.int64)
    np.add.at(table, (truth, predicted), 1)

    def pairs(counts: np.ndarray) -> float:
        return float(np.sum(counts * (counts - 1) // 2))

    together = pairs(table)
    precision = together / max(pairs(table.sum(axis=0)), 1)
    recall = together / max(pairs(table.sum(axis=1)), 1)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}
