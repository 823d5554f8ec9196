"""Grouping faces by person without names: agglomerative clustering of embeddings."""

from __future__ import annotations

import numpy as np

GROUP_THRESHOLD = 0.35
"""Average-linkage cut (Euclidean distance between unit dlib embeddings): the best of 0.30-0.55
in steps of 0.05 for `kao eval group` on LFW (tuned on the data it is scored on; see
docs/BENCHMARKS.md)."""
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
