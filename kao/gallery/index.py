"""Nearest-neighbour search over face embeddings: exact (numpy) and approximate (usearch HNSW).

Embeddings are L2-normalised float32 vectors, so cosine similarity is the dot product; both
indexes return, for each query, the `k` most similar stored faces as (face ids, similarities),
best first. `choose_index(count)` picks the kind for a collection of `count` faces.

Why usearch for the approximate index. Measured on this project's 2-core machine (AMD EPYC,
AVX2, otherwise idle) on the synthetic collections of `kao bench search` (5 faces per identity,
same-person cosine about 0.9, different people about 0), HNSW with the same graph settings
(connectivity 16, expansion 64 at build, 2 build threads), one query at a time:

- 200k faces: usearch 2.26 built in 28.4 s (f32 vectors) or 20.8 s (f16), FAISS 1.15
  (`IndexHNSWFlat`) in 22.4 s, hnswlib 0.8 in 18.4 s; at search expansion 256 they find the
  exact best match for 100 %, 99.7 %, 100 % and 100 % of queries in 1.33, 1.05, 0.69 and
  0.63 ms (p50).
- 1M faces: usearch (f16) builds in 173 s and finds the exact best match for 99.3 % of queries
  in 2.7 ms at expansion 512, 99.5 % in 3.4 ms at 640; FAISS and hnswlib reach 99.4 % and
  99.2 % at 512 in 1.9 and 1.8 ms.

FAISS and hnswlib answer about twice as fast, but all three meet kao's budget (p50 <= 5 ms,
recall@1 >= 0.99 at 1M faces) with similar build times, so the choice rests on upkeep. FAISS's
HNSW index cannot remove vectors ("remove_ids not implemented"; a gallery deletes faces) and
needs an id-map wrapper and OpenMP thread settings for single queries; hnswlib's last release
(0.8.0) is from 2023 and has no binary wheel on PyPI, so installing it compiles C++ (the very
complaint about dlib), and its capacity must be managed by hand. usearch is maintained, ships a
2 MB wheel, takes the face ids as keys, removes in place, grows by itself, serialises to a
buffer we can checksum, and stores vectors as f16: 386 MiB instead of 630 MiB at 1M x 128,
faster to build and search, for similarities within 1e-3 of float32 (recall@1 against float32
exact search is in the numbers above). `APPROXIMATE` holds the tuned settings.

Files (`save` / `load`): `KAOINDEX` magic, a little-endian uint32 header length, a JSON header
(format, kind, revision, contents, dimension, count, library and its version, parameters,
payload length and CRC-32), then the payload: raw ids and vectors for the exact index, usearch's
own serialisation for the approximate one. `contents` says what the index holds (the caller's
strings, e.g. database id, collection and model); `load` checks it against what the caller
expects. Files are private (0600) and written atomically (`kao.files`); a truncated,
corrupt or incompatible file, or one holding other contents, raises `IndexFileError` (a
`KaoError`) and the caller rebuilds from its database.

Determinism: the exact index is deterministic. The approximate index inserts on one thread by
default (`threads=1`), which makes its graph, and so every result, a function of the inserted
vectors and their order only; `threads=0` (all cores) builds about twice as fast on 2 cores,
but the graph then depends on thread timing and results may differ between runs in rare
near-ties. Searches never change an index (batches use every core). Neither index locks:
searches may run concurrently, but `add`, `remove` and `load` need the caller's lock.
"""

from __future__ import annotations

import json
import math
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

from kao.errors import KaoError
from kao.files import replace_atomically

if TYPE_CHECKING:
    from typing_extensions import Self

MAGIC = b"KAOINDEX"
FORMAT = 2
"""Version 2 added `contents`."""
EXACT_LIMIT = 100_000
"""Collections of fewer 128-d faces use `ExactIndex`, larger ones `ApproximateIndex` (see
`choose_index` for the measurement)."""

NORM_TOLERANCE = 1e-2
_SCORE_BLOCK = 1 << 25  # similarities computed per block of an exact search (128 MiB float32)


class IndexFileError(KaoError):
    """An index file is missing, truncated, corrupt or was written by an incompatible version;
    the message names the file and the reason. Rebuild the index from the database."""


@dataclass(frozen=True)
class Approximate:
    """HNSW settings of `ApproximateIndex`. `connectivity` (HNSW's M) links per node and
    `expansion_add` (efConstruction) set graph quality and build time; `expansion_search` (ef)
    trades query time for recall and can be changed on a built index."""

    connectivity: int = 16
    expansion_add: int = 64
    expansion_search: int = 640
    storage: str = "f16"


APPROXIMATE = Approximate()
"""Tuned on 1M synthetic 128-d faces (2 build threads) for recall@1 >= 0.99 at p50 <= 5 ms with
the shortest build. (16, 64) for (connectivity, expansion_add) builds in 173 s and reaches
99.5 % at expansion 640 in 3.4 ms (99.3 % at 512 in 2.7 ms: too little margin). Cheaper graphs
miss or barely meet the target: (12, 64) and (16, 48) build in 140 and 137 s but find 98.5 % and
98.9 % at expansion 768 (3.3 and 4.2 ms); (24, 48) builds in 150 s and finds 99.0 % at 640 in
4.0 ms. f16 storage builds 1.4x faster and answers 1.4x faster than f32 for the same recall."""


class VectorIndex(Protocol):
    """What every index offers. Ids are int64 face ids (>= 0; -1 marks "no result"), vectors
    L2-normalised float32 of the index's dimension."""

    dim: int

    @classmethod
    def build(cls, ids: np.ndarray, vectors: np.ndarray) -> Self: ...

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None: ...

    def remove(self, ids: np.ndarray) -> None: ...

    def ids(self) -> np.ndarray: ...

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]: ...

    def __len__(self) -> int: ...

    @property
    def nbytes(self) -> int: ...

    def save(
        self, path: Path, revision: int, contents: Mapping[str, str] | None = None
    ) -> None: ...

    @classmethod
    def load(cls, path: Path, contents: Mapping[str, str] | None = None) -> tuple[Self, int]: ...


class _Index:
    """Checks and file handling shared by both indexes; subclasses store and search."""

    kind: ClassVar[str]
    library: ClassVar[str]

    def __init__(self, dim: int) -> None:
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
            raise KaoError(f"index dimension must be a positive integer, got {dim!r}")
        self.dim = int(dim)

    @classmethod
    def build(cls, ids: np.ndarray, vectors: np.ndarray, **options: Any) -> Self:
        """An index of `vectors` (N, D) float32 under face `ids` (N,) int64; N may be 0.
        `options` go to the constructor."""
        vectors = np.asarray(vectors)
        if vectors.ndim != 2:
            raise KaoError(f"vectors must be a 2-D array (N, D), got shape {vectors.shape}")
        index = cls(vectors.shape[1], **options)
        index.add(ids, vectors)
        return index

    def __len__(self) -> int:
        raise NotImplementedError

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Store `vectors` (N, D) under `ids` (N,). An id already stored, or given twice, raises
        KaoError and nothing is added."""
        ids, vectors = self._check_ids(ids), self._check_vectors(vectors, "vectors")
        if len(ids) != len(vectors):
            raise KaoError(f"{len(ids)} ids for {len(vectors)} vectors")
        if len(np.unique(ids)) != len(ids):
            raise KaoError("ids to add contain duplicates")
        present = ids[self._contains(ids)]
        if len(present):
            raise KaoError(f"ids already in the index (remove them first): {_some(present)}")
        if len(ids):
            self._add(ids, vectors)

    def remove(self, ids: np.ndarray) -> None:
        """Forget the faces `ids` (N,). An id not stored raises KaoError and nothing is removed."""
        ids = np.unique(self._check_ids(ids))
        missing = ids[~self._contains(ids)]
        if len(missing):
            raise KaoError(f"ids not in the index: {_some(missing)}")
        if len(ids):
            self._remove(ids)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The `k` most similar stored faces of each query (Q, D) float32: ids (Q, k) int64 and
        cosine similarities (Q, k) float32, best first. Rows with fewer than `k` results are
        padded with id -1 and similarity -inf."""
        queries = self._check_vectors(queries, "queries")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise KaoError(f"k must be a positive integer, got {k!r}")
        ids = np.full((len(queries), k), -1, np.int64)
        similarities = np.full((len(queries), k), -np.inf, np.float32)
        if len(self) and len(queries):
            self._search(queries, int(k), ids, similarities)
        return ids, similarities

    def save(self, path: Path, revision: int, contents: Mapping[str, str] | None = None) -> None:
        """Write the index to `path` (mode 0600, atomically) with the database `revision` it
        reflects and its `contents`: what it holds, as strings, for `load` to check."""
        if isinstance(revision, bool) or not isinstance(revision, (int, np.integer)):
            raise KaoError(f"revision must be an integer, got {revision!r}")
        contents = dict(contents or {})
        if not all(isinstance(v, str) for v in [*contents, *contents.values()]):
            raise KaoError(f"index contents must map strings to strings, got {contents!r}")
        path = Path(path)
        payload = self._payload()
        header = {
            "format": FORMAT,
            "kind": self.kind,
            "revision": int(revision),
            "contents": contents,
            "dim": self.dim,
            "count": len(self),
            "library": self.library,
            "library_version": _library_version(self.library),
            "params": self._params(),
            "payload_bytes": len(payload),
            "payload_crc32": zlib.crc32(payload),
        }
        head = json.dumps(header, sort_keys=True).encode()
        head += struct.pack("<I", zlib.crc32(head))
        with replace_atomically(path) as stream:
            stream.write(MAGIC + struct.pack("<I", len(head)) + head)
            stream.write(payload)

    @classmethod
    def load(cls, path: Path, contents: Mapping[str, str] | None = None) -> tuple[Self, int]:
        """The index saved at `path` and its revision. Raises IndexFileError when the file is
        unreadable, truncated, corrupt, of another kind, written by an incompatible library, or
        holds other `contents` than those given (None: any)."""
        header, payload = _read(Path(path), contents)
        if header["kind"] != cls.kind:
            raise IndexFileError(f"{path}: holds an {header['kind']} index, not an {cls.kind} one")
        return cls._open(Path(path), header, payload), header["revision"]

    @classmethod
    def _open(cls, path: Path, header: dict[str, Any], payload: memoryview) -> Self:
        try:
            index = cls._from_payload(header, payload)
        except KaoError as error:
            raise IndexFileError(f"{path}: {error}") from error
        except Exception as error:  # the library's own loader: any failure means corrupt
            raise IndexFileError(f"{path}: unreadable {cls.kind} index ({error})") from error
        if len(index) != header["count"]:
            raise IndexFileError(
                f"{path}: holds {len(index)} vectors, header says {header['count']}"
            )
        return index

    def _check_ids(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids)
        if ids.ndim != 1 or (ids.size and not np.issubdtype(ids.dtype, np.integer)):
            raise KaoError(f"ids must be a 1-D integer array, got {ids.dtype} {ids.shape}")
        ids = ids.astype(np.int64, copy=False)
        if len(ids) and ids.min() < 0:
            raise KaoError(f"face ids must be >= 0 (-1 means no result), got {ids.min()}")
        return ids

    def _check_vectors(self, vectors: np.ndarray, name: str) -> np.ndarray:
        vectors = np.asarray(vectors)
        if vectors.ndim != 2 or not np.issubdtype(vectors.dtype, np.floating):
            raise KaoError(
                f"{name} must be a 2-D float array (N, D), got {vectors.dtype} {vectors.shape}"
            )
        if vectors.shape[1] != self.dim:
            raise KaoError(
                f"{name} have dimension {vectors.shape[1]}, the index holds dimension {self.dim}"
            )
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        norms = np.einsum("ij,ij->i", vectors, vectors)
        bad = ~(np.abs(norms - 1) <= NORM_TOLERANCE)  # also catches NaN and inf
        if bad.any():
            row = int(np.argmax(bad))
            raise KaoError(
                f"{name} must be L2-normalised: row {row} has squared norm {norms[row]:.4g}"
            )
        return vectors

    def _contains(self, ids: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        raise NotImplementedError

    def _remove(self, ids: np.ndarray) -> None:
        raise NotImplementedError

    def _search(
        self, queries: np.ndarray, k: int, ids: np.ndarray, similarities: np.ndarray
    ) -> None:
        raise NotImplementedError

    def _params(self) -> dict[str, Any]:
        return {}

    def _payload(self) -> bytes | bytearray:
        raise NotImplementedError

    @classmethod
    def _from_payload(cls, header: dict[str, Any], payload: memoryview) -> Self:
        raise NotImplementedError


class ExactIndex(_Index):
    """Brute-force search with numpy: every query is compared with every stored face (one matrix
    product), so results are exact and the index costs nothing to build; a query takes time
    proportional to N (p50 22 ms at 1M x 128 on 2 cores). Memory: N x (4 D + 8) bytes plus
    a Python dict of the ids."""

    kind = "exact"
    library = "numpy"

    def __init__(self, dim: int) -> None:
        super().__init__(dim)
        self._ids = np.empty(0, np.int64)
        self._vectors = np.empty((0, self.dim), np.float32)
        self._count = 0
        self._rows: dict[int, int] = {}

    def __len__(self) -> int:
        return self._count

    def ids(self) -> np.ndarray:
        """(N,) int64: the face ids held, sorted."""
        return np.sort(self._ids[: self._count])

    @property
    def nbytes(self) -> int:
        """Bytes of the stored ids and vectors (allocated capacity)."""
        return self._ids.nbytes + self._vectors.nbytes

    def _contains(self, ids: np.ndarray) -> np.ndarray:
        return np.fromiter((i in self._rows for i in ids.tolist()), bool, len(ids))

    def _add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        start, end = self._count, self._count + len(ids)
        if end > len(self._ids):
            capacity = max(end, 2 * len(self._ids))
            grown_ids = np.empty(capacity, np.int64)
            grown_ids[:start] = self._ids[:start]
            grown = np.empty((capacity, self.dim), np.float32)
            grown[:start] = self._vectors[:start]
            self._ids, self._vectors = grown_ids, grown
        self._ids[start:end] = ids
        self._vectors[start:end] = vectors
        self._rows.update(zip(ids.tolist(), range(start, end), strict=True))
        self._count = end

    def _remove(self, ids: np.ndarray) -> None:
        for face in ids.tolist():  # move the last row into each freed one
            row = self._rows.pop(face)
            last = self._count - 1
            if row != last:
                moved = int(self._ids[last])
                self._ids[row] = moved
                self._vectors[row] = self._vectors[last]
                self._rows[moved] = row
            self._count = last

    def _search(
        self, queries: np.ndarray, k: int, ids: np.ndarray, similarities: np.ndarray
    ) -> None:
        stored, count = self._vectors[: self._count], self._count
        take = min(k, count)
        block = max(1, _SCORE_BLOCK // count)
        for start in range(0, len(queries), block):
            scores = queries[start : start + block] @ stored.T  # (B, N)
            if take < count:
                top = np.argpartition(-scores, take - 1, axis=1)[:, :take]
            else:
                top = np.broadcast_to(np.arange(count), (len(scores), count))
            top_scores = np.take_along_axis(scores, top, axis=1)
            order = np.argsort(-top_scores, axis=1, kind="stable")
            rows = np.take_along_axis(top, order, axis=1)
            ids[start : start + block, :take] = self._ids[rows]
            similarities[start : start + block, :take] = np.take_along_axis(
                top_scores, order, axis=1
            )

    def _payload(self) -> bytes:
        count = self._count
        return (
            self._ids[:count].astype("<i8", copy=False).tobytes()
            + self._vectors[:count].astype("<f4", copy=False).tobytes()
        )

    @classmethod
    def _from_payload(cls, header: dict[str, Any], payload: memoryview) -> Self:
        dim, count = header["dim"], header["count"]
        if len(payload) != count * (8 + 4 * dim):
            raise KaoError(f"payload of {len(payload)} bytes for {count} vectors of {dim}")
        index = cls(dim)
        ids = np.frombuffer(payload, "<i8", count).astype(np.int64)
        vectors = np.frombuffer(payload, "<f4", count * dim, offset=8 * count)
        index.add(ids, vectors.reshape(count, dim))
        return index


class ApproximateIndex(_Index):
    """HNSW graph search with usearch: a query computes about 15k of the N similarities, so at
    1M x 128 it takes 3.8 ms (p50 on the idle 2-core machine; 4.6 ms while it was shared) and
    finds the exact best match for 99.4 % of queries (`kao bench search` measures both).
    Inserting costs a graph search per face: 408 s for 1M faces on one thread, 202 s on two.
    Removal marks the face deleted: searches skip it but the graph keeps its node, so rebuild
    after removing a large share. Vectors are stored as f16 (similarities within 1e-3).
    Memory: about 530 bytes per 128-d face (504 MiB at 1M)."""

    kind = "approximate"
    library = "usearch"

    def __init__(
        self,
        dim: int,
        *,
        connectivity: int = APPROXIMATE.connectivity,
        expansion_add: int = APPROXIMATE.expansion_add,
        expansion_search: int = APPROXIMATE.expansion_search,
        storage: str = APPROXIMATE.storage,
        threads: int = 1,
    ) -> None:
        """`storage` is how vectors are kept, "f16" or "f32"; `threads` inserting faces: 1 (the
        default) gives the same graph for the same adds, 0 uses every core, faster but not
        reproducible."""
        super().__init__(dim)
        from usearch.index import Index

        for name, value in (
            ("connectivity", connectivity),
            ("expansion_add", expansion_add),
            ("expansion_search", expansion_search),
        ):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 2:
                raise KaoError(f"{name} must be an integer >= 2, got {value!r}")
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
            raise KaoError(f"threads must be an integer >= 0, got {threads!r}")
        if storage not in ("f16", "f32"):
            raise KaoError(f'storage must be "f16" or "f32", got {storage!r}')
        self.threads = threads
        self.storage = storage
        self._index = Index(
            ndim=self.dim,
            metric="ip",
            dtype=storage,
            connectivity=int(connectivity),
            expansion_add=int(expansion_add),
            expansion_search=int(expansion_search),
        )

    def __len__(self) -> int:
        return len(self._index)

    def ids(self) -> np.ndarray:
        """(N,) int64: the face ids held (removed ones excluded), sorted."""
        return np.sort(np.asarray(self._index.keys, np.int64))

    @property
    def expansion_search(self) -> int:
        """Candidates kept while searching (HNSW's ef): higher finds more true neighbours but
        takes longer. Not saved with the index's graph, but in the file header."""
        return self._index.expansion_search

    @expansion_search.setter
    def expansion_search(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 2:
            raise KaoError(f"expansion_search must be an integer >= 2, got {value!r}")
        self._index.expansion_search = int(value)

    @property
    def nbytes(self) -> int:
        """Bytes the library holds for vectors and graph."""
        return int(self._index.memory_usage)

    def _contains(self, ids: np.ndarray) -> np.ndarray:
        if not len(ids):
            return np.zeros(0, bool)
        return np.asarray(self._index.contains(ids.astype(np.uint64)), bool)

    def _add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        self._index.add(ids.astype(np.uint64), vectors, threads=self.threads)

    def _remove(self, ids: np.ndarray) -> None:
        self._index.remove(ids.astype(np.uint64))

    def _search(
        self, queries: np.ndarray, k: int, ids: np.ndarray, similarities: np.ndarray
    ) -> None:
        matches = self._index.search(queries, k, threads=1 if len(queries) == 1 else 0)
        keys = np.asarray(matches.keys).reshape(len(queries), -1).astype(np.int64)
        distances = np.asarray(matches.distances, np.float32).reshape(len(queries), -1)
        # usearch gives a single query only the matches it found, a batch padded rows and counts
        one = len(queries) == 1
        counts = np.array([keys.shape[1]]) if one else np.asarray(matches.counts)
        found = np.arange(keys.shape[1]) < counts.reshape(-1, 1)  # (Q, found or k)
        width = keys.shape[1]
        ids[:, :width][found] = keys[found]
        similarities[:, :width][found] = 1 - distances[found]  # usearch's "ip" is 1 - dot

    def _params(self) -> dict[str, Any]:
        return {
            "connectivity": self._index.connectivity,
            "expansion_add": self._index.expansion_add,
            "expansion_search": self._index.expansion_search,
            "storage": self.storage,
            "threads": self.threads,
        }

    def _payload(self) -> bytearray:
        return self._index.save()

    @classmethod
    def _from_payload(cls, header: dict[str, Any], payload: memoryview) -> Self:
        from usearch.index import Index, MetricKind, ScalarKind

        written, installed = header["library_version"], _library_version(cls.library)
        if written.split(".")[0] != installed.split(".")[0]:
            raise KaoError(f"written with usearch {written}, incompatible with {installed}")
        params = header["params"]
        scalar = {"f16": ScalarKind.F16, "f32": ScalarKind.F32}.get(params["storage"])
        meta = Index.metadata(payload)
        if (
            not meta
            or meta["dimensions"] != header["dim"]
            or meta["kind_metric"] != MetricKind.IP
            or meta["kind_scalar"] != scalar
        ):
            raise KaoError(f"usearch payload does not match the header ({meta})")
        index = cls(
            header["dim"],
            connectivity=params["connectivity"],
            expansion_add=params["expansion_add"],
            expansion_search=params["expansion_search"],
            storage=params["storage"],
            threads=params["threads"],
        )
        index._index.load(payload)
        return index


def choose_index(count: int, dim: int = 128) -> type[ExactIndex] | type[ApproximateIndex]:
    """The index kind for a collection of `count` faces of dimension `dim`: `ExactIndex` below
    the size where an approximate query becomes faster than a brute-force one, since exact
    search is then as fast, needs no build and never misses; `ApproximateIndex` from there on.

    Measured with `kao bench search --size N --dim D --queries 300` on the 2-core machine
    (single-query p50, approximate with the default settings vs exact): 128-d 50k faces
    1.14 vs 0.80 ms, 100k 1.76 vs 1.89 ms, 200k 2.31 vs 4.35 ms; 512-d 25k 2.38 vs 1.65 ms,
    50k 3.31 vs 3.73 ms, 100k 4.34 vs 8.17 ms. The crossover, EXACT_LIMIT faces at 128-d and
    half that at 512-d, is scaled as `EXACT_LIMIT * sqrt(128 / dim)` for other dimensions."""
    if dim < 1:
        raise KaoError(f"dimension must be positive, got {dim}")
    return ExactIndex if count < EXACT_LIMIT * math.sqrt(128 / dim) else ApproximateIndex


def load_index(
    path: Path, contents: Mapping[str, str] | None = None
) -> tuple[ExactIndex | ApproximateIndex, int]:
    """The index saved at `path`, of whichever kind, and its revision; raises IndexFileError
    like `load`."""
    header, payload = _read(Path(path), contents)
    kind = ExactIndex if header["kind"] == ExactIndex.kind else ApproximateIndex
    return kind._open(Path(path), header, payload), header["revision"]


_HEADER_TYPES: dict[str, type | tuple[type, ...]] = {
    "kind": str,
    "revision": int,
    "contents": dict,
    "dim": int,
    "count": int,
    "library_version": str,
    "params": dict,
    "payload_bytes": int,
    "payload_crc32": int,
}


def _read(
    path: Path, contents: Mapping[str, str] | None = None
) -> tuple[dict[str, Any], memoryview]:
    """The header and payload of an index file, checked for truncation and corruption, and that
    it holds `contents` unless that is None."""
    try:
        data = path.read_bytes()
    except OSError as error:
        reason = error.strerror or error
        raise IndexFileError(f"{path}: cannot read index file ({reason})") from error
    start = len(MAGIC) + 4
    if data[: len(MAGIC)] != MAGIC or len(data) < start:
        raise IndexFileError(f"{path}: not a kao index file")
    (length,) = struct.unpack("<I", data[len(MAGIC) : start])
    head, crc = data[start : start + length - 4], data[start + length - 4 : start + length]
    if length < 4 or len(crc) != 4 or struct.unpack("<I", crc)[0] != zlib.crc32(head):
        raise IndexFileError(f"{path}: truncated or corrupt index header")
    try:
        header = json.loads(head)
        if not isinstance(header, dict):
            raise ValueError("not a JSON object")
        if header.get("format") != FORMAT:
            raise IndexFileError(
                f"{path}: index file format {header.get('format')!r}, this kao reads {FORMAT}"
            )
        for name, kind in _HEADER_TYPES.items():
            if not isinstance(header.get(name), kind) or isinstance(header.get(name), bool):
                raise ValueError(f"{name} is {header.get(name)!r}")
        if header["kind"] not in (ExactIndex.kind, ApproximateIndex.kind):
            raise ValueError(f"unknown kind {header['kind']!r}")
        if header["dim"] < 1 or header["count"] < 0:
            raise ValueError(f"{header['count']} vectors of dimension {header['dim']}")
    except (ValueError, UnicodeDecodeError) as error:
        raise IndexFileError(f"{path}: corrupt index header ({error})") from error
    if contents is not None and header["contents"] != dict(contents):
        raise IndexFileError(f"{path}: holds {header['contents']}, not {dict(contents)}")
    payload = memoryview(data)[start + length :]
    if len(payload) != header["payload_bytes"]:
        raise IndexFileError(
            f"{path}: truncated or corrupt: {len(payload)} payload bytes, header says "
            f"{header['payload_bytes']}"
        )
    if zlib.crc32(payload) != header["payload_crc32"]:
        raise IndexFileError(f"{path}: corrupt: payload checksum mismatch")
    return header, payload


def _library_version(library: str) -> str:
    if library == "numpy":
        return np.__version__
    import usearch

    return usearch.__version__


def _some(ids: np.ndarray, limit: int = 5) -> str:
    shown = ", ".join(str(i) for i in ids[:limit].tolist())
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")
