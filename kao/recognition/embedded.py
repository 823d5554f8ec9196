"""Faces embedded by `kao embed --results RESULTS` (JSON Lines or Parquet, see `kao.jobs`),
read back for enrolment and grouping without the photos: `read_embedded` streams them photo by
photo, `load_embedded` holds them as arrays."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kao.errors import KaoError


@dataclass(frozen=True)
class EmbeddedImage:
    """One record of a `kao embed` results file: the `image` as recorded (a path), the
    recognition `model` (None for a photo that failed), the `error` that failed it (else None),
    and its faces, best detection score first: `boxes` (F, 4) float32 [x1, y1, x2, y2] pixels
    and `embeddings` (F, D) float32 unit vectors."""

    image: str
    model: str | None
    error: str | None
    boxes: np.ndarray
    embeddings: np.ndarray


def read_embedded(path: Path) -> Iterator[EmbeddedImage]:
    """Every record of the results file at `path`, in file order. KaoError when the file is
    missing, a photo's record has no embeddings (the file was not written by `kao embed`), or
    its records mix recognition models."""
    if not path.exists():
        raise KaoError(f"{path}: no such results file")
    parquet = path.suffix.lower() == ".parquet"
    model: str | None = None
    for record in _parquet_images(path) if parquet else _jsonl_images(path):
        if record.error is not None:
            yield record
            continue
        if record.model is None:
            raise KaoError(
                f"{path}: {record.image} has no embeddings; read the results of "
                "`kao embed --results`"
            )
        if model is None:
            model = record.model
        elif record.model != model:
            raise KaoError(
                f"{path}: {record.image} was embedded with {record.model}, earlier photos with "
                f"{model}; one results file, one model"
            )
        yield record


def _failed(image: str, error: str) -> EmbeddedImage:
    empty = np.zeros((0, 4), np.float32)
    return EmbeddedImage(image, None, error, empty, empty.reshape(0, 0))


def _jsonl_images(path: Path) -> Iterator[EmbeddedImage]:
    """The records of JSON Lines results; `model` None for a photo without embeddings."""
    from kao.jobs import read_records

    for record in read_records(path):
        image = str(record["image"])
        if "error" in record:
            yield _failed(image, str(record["error"]))
            continue
        faces = record.get("faces")
        if faces is None or any("embedding" not in f for f in faces):
            yield EmbeddedImage(image, None, None, np.zeros((0, 4), np.float32), np.zeros((0, 0)))
            continue
        boxes = np.array([f["box"] for f in faces], np.float32).reshape(-1, 4)
        vectors = (
            np.array([f["embedding"] for f in faces], np.float32)
            if faces
            else np.zeros((0, 0), np.float32)
        )
        yield EmbeddedImage(image, record.get("model"), None, boxes, vectors)


def _parquet_images(path: Path) -> Iterator[EmbeddedImage]:
    """The records of Parquet results, a part's boxes and embeddings taken as whole columns (no
    Python object per number); `model` None for a photo without embeddings."""
    import pyarrow.compute as pc

    from kao.jobs.results import read_tables

    for table in read_tables(path, ["image", "error", "faces", "fields"]):
        faces = table.column("faces").combine_chunks()
        counts = pc.fill_null(pc.list_value_length(faces), 0).to_numpy(zero_copy_only=False)
        starts = np.concatenate([[0], np.cumsum(counts)])
        listed = faces.is_valid().to_numpy(zero_copy_only=False)
        flat = pc.list_flatten(faces)  # the faces of every photo, in order
        has_embedding = "embedding" in {f.name for f in faces.type.value_type}
        boxes = _matrix(pc.struct_field(flat, "box"), 4)
        embeddings = None
        if has_embedding:
            column = pc.struct_field(flat, "embedding")
            if column.null_count == 0:
                embeddings = _matrix(column, column.type.list_size)
        for i, (image, error, fields) in enumerate(
            zip(
                table.column("image").to_pylist(),
                table.column("error").to_pylist(),
                table.column("fields").to_pylist(),
                strict=True,
            )
        ):
            if error is not None:
                yield _failed(image, error)
                continue
            start, end = int(starts[i]), int(starts[i + 1])
            model = json.loads(fields).get("model")
            if listed[i] and embeddings is not None and model is not None:
                vectors = embeddings[start:end] if end > start else np.zeros((0, 0), np.float32)
                yield EmbeddedImage(image, model, None, boxes[start:end], vectors)
            else:
                yield EmbeddedImage(image, None, None, boxes[start:end], np.zeros((0, 0)))


def _matrix(column: Any, width: int) -> np.ndarray:
    """A fixed-size-list column of pyarrow as an (N, width) float32 array."""
    import pyarrow.compute as pc

    values = pc.list_flatten(column).to_numpy(zero_copy_only=False)
    return values.astype(np.float32, copy=False).reshape(-1, width)


@dataclass(frozen=True)
class EmbeddedFaces:
    """Every face of a results file (N faces of I photos that were read, F photos failed).

    Attributes:
        model: the recognition model of the embeddings (None when no photo was read).
        images: (I,) the photos read, as recorded, in file order (those without a face too).
        image: (N,) int64 index into `images` of each face's photo.
        face: (N,) int64 each face's number in its photo, from 1 (best detection score first).
        boxes: (N, 4) float32 [x1, y1, x2, y2] pixels.
        embeddings: (N, D) float32 unit vectors.
        failed: (F,) (photo, reason) of the records of photos that failed.
    """

    model: str | None
    images: list[str]
    image: np.ndarray
    face: np.ndarray
    boxes: np.ndarray
    embeddings: np.ndarray
    failed: list[tuple[str, str]]


def load_embedded(path: Path) -> EmbeddedFaces:
    """Every face of the results file at `path` (see `read_embedded`)."""
    images: list[str] = []
    failed: list[tuple[str, str]] = []
    owners: list[np.ndarray] = []
    numbers: list[np.ndarray] = []
    boxes: list[np.ndarray] = []
    vectors: list[np.ndarray] = []
    model = None
    for record in read_embedded(path):
        if record.error is not None:
            failed.append((record.image, record.error))
            continue
        model = record.model
        owners.append(np.full(len(record.boxes), len(images), np.int64))
        numbers.append(np.arange(1, len(record.boxes) + 1, dtype=np.int64))
        images.append(record.image)
        boxes.append(record.boxes)
        vectors.append(record.embeddings)
    dimension = max((len(v[0]) for v in vectors if len(v)), default=0)
    return EmbeddedFaces(
        model=model,
        images=images,
        image=np.concatenate(owners) if owners else np.zeros(0, np.int64),
        face=np.concatenate(numbers) if numbers else np.zeros(0, np.int64),
        boxes=np.concatenate(boxes) if boxes else np.zeros((0, 4), np.float32),
        embeddings=(
            np.concatenate([v.reshape(-1, dimension) for v in vectors])
            if dimension
            else np.zeros((0, 0), np.float32)
        ),
        failed=failed,
    )
