"""`kao.recognition.cluster`'s average-linkage grouping for collections too large for an
all-pairs distance matrix: the pairs come from an approximate nearest-neighbour graph (usearch
HNSW, `kao.gallery.index.ApproximateIndex`), and memory grows with the faces and their close
neighbours, never with N x N.

Why it gives the same groups. Average linkage merges the two groups whose mean Euclidean
distance is smallest, as long as it is at most the threshold t. Two groups whose mean distance
is at most t hold at least one pair of faces at most t apart, so only groups joined by such a
pair can ever merge: the graph holds, for every face, its neighbours within t (its `k` nearest,
asked again with twice as many while the farthest found is still within t, up to
`MAX_NEIGHBOURS`). The mean distance of two candidate groups is the exact mean over all their
pairs: the sum over the graph's pairs is carried through merges (Lance-Williams), and the pairs
the graph lacks are computed from the embeddings when first needed. Merges happen in order of
mean distance, as in SciPy's `linkage`, so the groups are those of `kao.recognition.cluster`
unless the approximate search misses every close pair between two groups that would merge (the
HNSW search finds the exact nearest neighbour for over 99 % of queries: see
`kao.gallery.index`), or a face has more than `MAX_NEIGHBOURS` neighbours within t and the
missing ones are the only links between two groups (`Graph.capped` counts such faces)."""

from __future__ import annotations

import csv
import heapq
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kao.errors import ImageError, KaoError
from kao.files import replace_atomically
from kao.recognition.cluster import FoundFace, Grouping, group_threshold
from kao.recognition.embedded import EmbeddedFaces, load_embedded

NEIGHBOURS = 32
"""Nearest neighbours first asked for each face."""
MAX_NEIGHBOURS = 1024
"""Most neighbours asked for one face (its query is repeated with twice as many while the
farthest found is within the threshold)."""
_QUERY_BLOCK = 8192
"""Faces searched at once (the answer is block x k ids and similarities)."""
_PAIR_BLOCK = 8192
"""Face pairs whose distance is computed at once (block x D float64 differences)."""


@dataclass(frozen=True)
class Graph:
    """The pairs of faces at most `threshold` apart that the nearest-neighbour search found:
    `first` < `second` (E,) int64 face indices and their `distances` (E,) float64 (Euclidean,
    computed from the embeddings); `capped`: faces whose `MAX_NEIGHBOURS` nearest were all
    within the threshold (more may be)."""

    first: np.ndarray
    second: np.ndarray
    distances: np.ndarray
    capped: int


def distances(embeddings: np.ndarray, first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Euclidean distances (E,) float64 between rows `first` (E,) and `second` (E,) of
    `embeddings` (N, D), computed as SciPy's `pdist` does (square root of the summed squared
    differences in float64), a block of pairs at a time."""
    out = np.empty(len(first), np.float64)
    for start in range(0, len(first), _PAIR_BLOCK):
        a = embeddings[first[start : start + _PAIR_BLOCK]].astype(np.float64)
        b = embeddings[second[start : start + _PAIR_BLOCK]].astype(np.float64)
        out[start : start + len(a)] = np.sqrt(np.sum((a - b) ** 2, axis=1))
    return out


def neighbour_graph(
    embeddings: np.ndarray,
    threshold: float,
    *,
    neighbours: int = NEIGHBOURS,
    threads: int = 1,
) -> Graph:
    """The `Graph` of `embeddings` (N, D float32, L2-normalised) for `threshold`, from a usearch
    HNSW index of all of them (built on `threads` threads: 1 is reproducible, 0 every core)."""
    from kao.gallery.index import APPROXIMATE, ApproximateIndex

    count = len(embeddings)
    vectors = np.ascontiguousarray(embeddings, np.float32)
    empty = np.zeros(0, np.int64)
    if count < 2:
        return Graph(empty, empty, np.zeros(0, np.float64), 0)
    index = ApproximateIndex(len(vectors[0]), storage="f32", threads=threads)
    index.add(np.arange(count, dtype=np.int64), vectors)
    firsts, seconds, capped = [], [], 0
    pending = np.arange(count)
    k = min(neighbours, count)
    while len(pending):
        index.expansion_search = max(APPROXIMATE.expansion_search, k)
        again = []
        for start in range(0, len(pending), _QUERY_BLOCK):
            rows = pending[start : start + _QUERY_BLOCK]
            ids, similarities = index.search(vectors[rows], k)
            # similarity s of unit vectors is distance sqrt(2 - 2 s); a margin keeps the
            # borderline pairs, whose exact distance decides
            close = (ids >= 0) & (similarities >= 1 - threshold**2 / 2 - 1e-3)
            full = close.all(axis=1)
            if k < min(MAX_NEIGHBOURS, count):
                again.append(rows[full])
            elif k < count:
                capped += int(np.count_nonzero(full))
            queried = np.broadcast_to(rows[:, None], ids.shape)
            firsts.append(queried[close])
            seconds.append(ids[close])
        pending = np.concatenate(again) if again else empty
        k = min(2 * k, MAX_NEIGHBOURS, count)
    first, second = np.concatenate(firsts), np.concatenate(seconds)
    keep = first != second
    pairs = np.unique(
        np.stack([np.minimum(first, second), np.maximum(first, second)], axis=1)[keep], axis=0
    )
    found = distances(vectors, pairs[:, 0], pairs[:, 1])
    near = found <= threshold
    return Graph(pairs[near, 0], pairs[near, 1], found[near], capped)


def cluster_graph(embeddings: np.ndarray, threshold: float, graph: Graph) -> np.ndarray:
    """Cluster label (N,) int64 of each row of `embeddings` (N, D): average-linkage clustering
    that stops merging when the mean Euclidean distance between two groups exceeds
    `threshold`, merging only groups that `graph` (see `neighbour_graph`) joins. Labels are
    numbered as `kao.recognition.cluster.cluster` numbers them: by group size, largest first,
    then by first member."""
    count = len(embeddings)
    if not np.isfinite(threshold) or threshold <= 0:
        raise KaoError(f"threshold must be a positive distance, got {threshold}")
    vectors = np.asarray(embeddings, np.float32)
    members: dict[int, np.ndarray] = {i: np.array([i]) for i in range(count)}
    # the sum of the distances between the faces of two groups, for the groups the graph joins
    sums: dict[int, dict[int, float]] = {i: {} for i in range(count)}
    heap: list[tuple[float, int, int]] = []
    for a, b, d in zip(
        graph.first.tolist(), graph.second.tolist(), graph.distances.tolist(), strict=True
    ):
        sums[a][b] = sums[b][a] = d
        heap.append((d, a, b))
    heapq.heapify(heap)
    next_id = count
    while heap:
        mean, a, b = heapq.heappop(heap)
        if mean > threshold:
            break
        if a not in members or b not in members:
            continue  # one of them was merged since
        faces_a, faces_b = members.pop(a), members.pop(b)
        merged = np.concatenate([faces_a, faces_b])
        around_a, around_b = sums.pop(a), sums.pop(b)
        joined: dict[int, float] = {}
        for c in (around_a.keys() | around_b.keys()) - {a, b}:
            faces_c = members[c]
            total = _known_or_sum(around_a, c, vectors, faces_a, faces_c) + _known_or_sum(
                around_b, c, vectors, faces_b, faces_c
            )
            joined[c] = total
            beside_c = sums[c]
            beside_c.pop(a, None)
            beside_c.pop(b, None)
            beside_c[next_id] = total
            mean_c = total / (len(merged) * len(faces_c))
            if mean_c <= threshold:
                heapq.heappush(heap, (mean_c, next_id, c))
        members[next_id] = merged
        sums[next_id] = joined
        next_id += 1
    ordered = sorted(members.values(), key=lambda group: (-len(group), int(group.min())))
    labels = np.empty(count, np.int64)
    for number, group in enumerate(ordered):
        labels[group] = number
    return labels


def _known_or_sum(
    known: dict[int, float], c: int, vectors: np.ndarray, faces: np.ndarray, faces_c: np.ndarray
) -> float:
    """`known[c]`, the sum of the distances between a group and group `c` when the graph joins
    them, else that sum computed from the rows `faces` and `faces_c` of `vectors`."""
    found = known.get(c)
    if found is not None:
        return found
    from scipy.spatial.distance import cdist

    total = 0.0
    step = max(1, _PAIR_BLOCK // len(faces_c))
    for start in range(0, len(faces), step):
        block = vectors[faces[start : start + step]].astype(np.float64)
        total += float(cdist(block, vectors[faces_c].astype(np.float64)).sum())
    return total


@dataclass(frozen=True)
class ResultsGrouping:
    """The faces of a `kao embed` results file sorted by person (`group_results`): `labels`
    (N,) int64 the group of each face of `faces` (0 the largest), at `threshold`, from a
    `graph` of its close pairs."""

    faces: EmbeddedFaces
    labels: np.ndarray
    threshold: float
    graph: Graph

    @property
    def people(self) -> int:
        """How many groups."""
        return int(self.labels.max()) + 1 if len(self.labels) else 0

    def rows(self) -> Iterator[dict[str, Any]]:
        """One row per face, in file order: image, face (its number in the photo, from 1),
        box [x1, y1, x2, y2] and person (its group's number, from 1: the largest first)."""
        faces = self.faces
        for i in range(len(self.labels)):
            yield {
                "image": faces.images[int(faces.image[i])],
                "face": int(faces.face[i]),
                "box": [round(float(v), 1) for v in faces.boxes[i]],
                "person": int(self.labels[i]) + 1,
            }

    def write(self, path: Path) -> None:
        """Write `rows` to `path`: CSV (.csv: image, face, x1, y1, x2, y2, person) or JSON Lines
        (.jsonl), replaced atomically."""
        suffix = path.suffix.lower()
        if suffix not in (".csv", ".jsonl"):
            raise KaoError(f"{path}: the groups file must end with .csv or .jsonl")

        with replace_atomically(path) as binary:
            stream = io.TextIOWrapper(binary, "utf-8", newline="")
            if suffix == ".jsonl":
                stream.writelines(json.dumps(row) + "\n" for row in self.rows())
            else:
                table = csv.writer(stream)
                table.writerow(["image", "face", "x1", "y1", "x2", "y2", "person"])
                table.writerows(
                    [row["image"], row["face"], *row["box"], row["person"]] for row in self.rows()
                )
            stream.flush()
            stream.detach()  # replace_atomically closes the file

    def grouping(self) -> Grouping:
        """The same groups as a `kao.recognition.cluster.Grouping` (what `kao group` reports)."""
        faces = self.faces
        found = [
            FoundFace.embedded(faces.images[int(faces.image[i])], faces.boxes[i], vector)
            for i, vector in enumerate(faces.embeddings)
        ]
        groups: list[list[int]] = [[] for _ in range(self.people)]
        for index, label in enumerate(self.labels.tolist()):
            groups[label].append(index)
        errors = [ImageError(image, reason) for image, reason in faces.failed]
        return Grouping(found, groups, len(faces.images) + len(faces.failed), errors)


def group_results(
    path: Path,
    *,
    threshold: float | None = None,
    far: float | None = None,
    neighbours: int = NEIGHBOURS,
    threads: int = 1,
) -> ResultsGrouping:
    """The faces of the `kao embed --results` file at `path` sorted by person with
    `cluster_graph`: at `threshold` or `far` as `kao.group` takes them (default: the model's
    `GROUP_THRESHOLDS`), the graph from `neighbours` nearest neighbours per face, its index built
    on `threads` threads (see `neighbour_graph`)."""
    faces = load_embedded(path)
    if faces.model is None:
        empty = np.zeros(0, np.int64)
        return ResultsGrouping(faces, empty, 0.0, Graph(empty, empty, np.zeros(0), 0))
    cut = group_threshold(faces.model, threshold=threshold, far=far)
    graph = neighbour_graph(faces.embeddings, cut, neighbours=neighbours, threads=threads)
    return ResultsGrouping(faces, cluster_graph(faces.embeddings, cut, graph), cut, graph)
