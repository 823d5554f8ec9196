"""Face search speed (`kao bench search`): the approximate index beside exact search on a
synthetic collection shaped like real face embeddings; returns the JSON-ready report."""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from kao.evaluation.bench_speed import machine
from kao.gallery.index import APPROXIMATE, ApproximateIndex, ExactIndex
from kao.progress import progress

FACES_PER_IDENTITY = 5
SAME_PERSON_COSINE = 0.9
"""Typical cosine of two embeddings of one person (dlib model)."""
BLOCK = 10_000
"""Faces generated and inserted at a time."""
EXACT_LATENCY_QUERIES = 100
"""Single exact queries timed (each scans the whole collection)."""


def bench_search(
    size: int = 100_000,
    dim: int = 128,
    queries: int = 1000,
    k: int = 1,
    *,
    seed: int = 0,
    connectivity: int = APPROXIMATE.connectivity,
    expansion_add: int = APPROXIMATE.expansion_add,
    expansion_search: int = APPROXIMATE.expansion_search,
    threads: int = 1,
) -> dict[str, Any]:
    """The approximate (HNSW) index beside exact search on one synthetic collection of `size`
    `dim`-dimensional faces (`synthetic_faces`): build time (s), memory (MiB), single-query
    latency (ms, p50 and p99), batch throughput over `queries` queries and recall@1 and
    recall@`k` against exact search. `threads` insert faces (1: reproducible; 0: every core)."""
    ids, vectors, probes, identities = synthetic_faces(size, dim, queries, seed)
    same, other = _cosines(vectors, probes, identities)

    start = time.perf_counter()
    exact = ExactIndex.build(ids, vectors)
    exact_build = time.perf_counter() - start

    rss_before = _rss_mib()
    start = time.perf_counter()
    approximate = ApproximateIndex(
        dim,
        connectivity=connectivity,
        expansion_add=expansion_add,
        expansion_search=expansion_search,
        threads=threads,
    )
    for first in progress(range(0, size, BLOCK), -(-size // BLOCK), "blocks"):
        approximate.add(ids[first : first + BLOCK], vectors[first : first + BLOCK])
    approximate_build = time.perf_counter() - start
    rss_growth = _rss_mib() - rss_before
    del vectors

    start = time.perf_counter()
    exact_ids, _ = exact.search(probes, k)
    exact_batch = time.perf_counter() - start
    start = time.perf_counter()
    found_ids, _ = approximate.search(probes, k)
    approximate_batch = time.perf_counter() - start

    approximate_times, exact_times = _single_queries(approximate, exact, probes, k)
    return {
        "size": size,
        "dim": dim,
        "queries": queries,
        "k": k,
        "data": {
            "identities": int(-(-size // FACES_PER_IDENTITY)),
            "faces_per_identity": FACES_PER_IDENTITY,
            "same_identity_cosine": round(same, 3),
            "other_identity_cosine": round(other, 3),
            "seed": seed,
        },
        "index": {
            "library": "usearch",
            "version": _usearch_version(),
            "connectivity": connectivity,
            "expansion_add": expansion_add,
            "expansion_search": expansion_search,
            "storage": approximate.storage,
            "build_threads": threads,
        },
        "build_s": {
            "approximate": round(approximate_build, 2),
            "exact": round(exact_build, 2),
        },
        "memory_mib": {
            "approximate_index": round(approximate.nbytes / 2**20, 1),
            "approximate_rss_growth": round(rss_growth, 1),
            "exact_index": round(exact.nbytes / 2**20, 1),
            "peak_rss": round(_peak_rss_mib(), 1),
        },
        "latency_ms": {
            "approximate": _percentiles(approximate_times),
            "exact": _percentiles(exact_times),
        },
        "exact_latency_queries": len(exact_times),
        "speedup_p50": round(
            statistics.median(exact_times) / statistics.median(approximate_times), 1
        ),
        "batch_queries_per_s": {
            "approximate": round(queries / approximate_batch, 1),
            "exact": round(queries / exact_batch, 1),
        },
        "recall_at_1": round(float(np.mean(found_ids[:, 0] == exact_ids[:, 0])), 4),
        f"recall_at_{k}": round(_recall(found_ids, exact_ids), 4),
        "machine": machine(),
    }


def synthetic_faces(
    size: int, dim: int, queries: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A synthetic face collection shaped like real embeddings: identity centres uniform on the
    unit sphere, FACES_PER_IDENTITY faces each (centre plus Gaussian noise, re-normalised) so
    that two faces of one person have cosine about SAME_PERSON_COSINE and of two people about 0.
    Face i belongs to identity i // FACES_PER_IDENTITY. Returns face ids (N,) int64, vectors
    (N, D) float32, queries (Q, D) float32 (fresh faces of random identities) and the queries'
    identities (Q,) int64. Generated in blocks to bound the temporary memory."""
    rng = np.random.default_rng(seed)
    count = -(-size // FACES_PER_IDENTITY)
    centres = _normalised(rng.standard_normal((count, dim), dtype=np.float32))
    # |centre + noise|^2 = 1 + D sigma^2, so two faces of a person have cosine 1 / (1 + D sigma^2)
    sigma = np.float32(np.sqrt((1 / SAME_PERSON_COSINE - 1) / dim))
    vectors = np.empty((size, dim), np.float32)
    for first in range(0, size, BLOCK):
        rows = np.arange(first, min(size, first + BLOCK))
        noise = rng.standard_normal((len(rows), dim), dtype=np.float32)
        vectors[rows] = _normalised(centres[rows // FACES_PER_IDENTITY] + sigma * noise)
    identities = rng.integers(0, count, queries)
    noise = rng.standard_normal((queries, dim), dtype=np.float32)
    query_vectors = _normalised(centres[identities] + sigma * noise)
    return np.arange(size, dtype=np.int64), vectors, query_vectors, identities


def _normalised(vectors: np.ndarray) -> np.ndarray:
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _cosines(
    vectors: np.ndarray, queries: np.ndarray, identities: np.ndarray
) -> tuple[float, float]:
    """Mean cosine of each query with the first stored face of its identity and with a face of
    the next identity (a different person)."""
    first = identities * FACES_PER_IDENTITY
    same = np.einsum("ij,ij->i", queries, vectors[first])
    other = np.einsum("ij,ij->i", queries, vectors[(first + FACES_PER_IDENTITY) % len(vectors)])
    return float(same.mean()), float(other.mean())


def _single_queries(
    approximate: ApproximateIndex, exact: ExactIndex, queries: np.ndarray, k: int
) -> tuple[list[float], list[float]]:
    """Seconds per query of each index, one query at a time, the two taking turns so that
    background load hits them alike; exact search only on the first EXACT_LATENCY_QUERIES
    queries (each scans the whole collection). One untimed warm-up query each."""
    approximate.search(queries[:1], k)
    exact.search(queries[:1], k)
    times: tuple[list[float], list[float]] = ([], [])
    for row in progress(range(len(queries)), len(queries), "queries"):
        query = queries[row : row + 1]
        for index, spent in ((approximate, times[0]), (exact, times[1])):
            if index is exact and row >= EXACT_LATENCY_QUERIES:
                continue
            start = time.perf_counter()
            index.search(query, k)
            spent.append(time.perf_counter() - start)
    return times


def _percentiles(times: list[float]) -> dict[str, float]:
    values = np.asarray(times) * 1000
    return {
        "p50": round(float(np.percentile(values, 50)), 3),
        "p99": round(float(np.percentile(values, 99)), 3),
    }


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    """Mean fraction of each query's exact top-k that the approximate top-k contains."""
    hits = [
        len(np.intersect1d(f[f >= 0], t[t >= 0])) / max(1, (t >= 0).sum())
        for f, t in zip(found, truth, strict=True)
    ]
    return float(np.mean(hits))


def _rss_mib() -> float:
    """The resident memory of this process now (Linux; 0 elsewhere)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_rss_mib() -> float:
    """The peak resident memory of this process (ru_maxrss is KiB on Linux)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _usearch_version() -> str:
    import usearch

    return usearch.__version__
