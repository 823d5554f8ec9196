"""Results files of a batch, written as records come and read back to resume.

JSON Lines (a path ending .jsonl): one record a line, flushed as written; on reopening, a torn
last line (the job killed mid-write) is cut off, so its image is done again, once.

Parquet (a path ending .parquet; the `batch` extra, pyarrow): a folder of parts
``part-NNNNN.parquet``, one row per image (`pyarrow.parquet.read_table(FOLDER)` reads them
all). Rows are buffered (at most `ROWS_PER_PART`, or `SECONDS_PER_PART` of work) and each part
is written under a hidden temporary name then renamed, so a part is either whole or absent; on
reopening, unfinished parts are deleted and their images done again. Columns: image (string),
width, height (int32, null on error), error (string, the reason, null on success), faces (list
of {box: float32[4], score: float32, embedding: float32[D] (`kao embed` only), attributes: JSON
text of the face's other fields}; null where the record has no face list) and fields (JSON text
of the record's other keys)."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Protocol

from kao.errors import KaoError
from kao.extras import require

LOCK = ".lock"
"""The file of a Parquet results folder that the job writing it holds locked."""
ROWS_PER_PART = 1000
SECONDS_PER_PART = 30.0
PART_PREFIX = "part-"
UNFINISHED = ".unfinished"
"""Suffix of a part being written; its name also starts with "." so that Parquet readers
(pyarrow.dataset) skip it."""
BASE_KEYS = ("image", "width", "height", "error", "faces")


class Results(Protocol):
    """A results file open for appending."""

    done: set[str]
    """The "image" of every record already in it (skipped on a rerun)."""

    def write(self, record: dict[str, Any]) -> None:
        """Append one record."""
        ...

    def close(self) -> None:
        """Write what is buffered."""
        ...


def open_results(path: Path, *, dimension: int | None = None) -> Results:
    """The results file at `path` (.jsonl or .parquet), created or reopened to resume;
    `dimension`: the embeddings' length in Parquet (None: records without embeddings)."""
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return JsonLinesResults(path)
    if suffix == ".parquet":
        require("batch", "--results FILE.parquet", "pyarrow")
        return ParquetResults(path, dimension)
    raise KaoError(f"--results must end with .jsonl or .parquet, got {path}")


def read_records(path: Path) -> Iterator[dict[str, Any]]:
    """The records of a results file as written (Parquet rows back to records: floats are
    float32 there)."""
    if path.suffix.lower() == ".jsonl":
        with path.open(encoding="utf-8") as lines:
            for line in lines:
                if line.endswith("\n"):
                    yield json.loads(line)
        return
    for table in read_tables(path):
        for row in table.to_pylist():
            yield _record(row)


def read_tables(path: Path, columns: list[str] | None = None) -> Iterator[Any]:
    """The finished parts of the Parquet results at `path` as pyarrow Tables (of `columns`, or
    all), in order: one part in memory at a time."""
    require("batch", "reading FILE.parquet", "pyarrow")
    import pyarrow.parquet as pq

    for part in _parts(path):
        yield pq.read_table(part, columns=columns)


class JsonLinesResults:
    """JSON Lines results (see the module)."""

    def __init__(self, path: Path) -> None:
        self.done: set[str] = set()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("a", encoding="utf-8")
        _lock(self._file, path)
        good = 0
        with path.open("rb") as lines:
            for line in lines:
                try:
                    record = json.loads(line)
                except ValueError:
                    break
                if not line.endswith(b"\n"):
                    break
                self.done.add(record["image"])
                good += len(line)
        if good < path.stat().st_size:
            os.truncate(path, good)  # appending carries on from the new end

    def write(self, record: dict[str, Any]) -> None:
        """Append `record` as one line, flushed."""
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def close(self) -> None:
        """Close the file."""
        self._file.close()


class ParquetResults:
    """Parquet results (see the module)."""

    def __init__(self, path: Path, dimension: int | None) -> None:
        import pyarrow.parquet as pq

        if path.exists() and not path.is_dir():
            raise KaoError(f"{path} is a file; Parquet results are a folder of parts")
        path.mkdir(parents=True, exist_ok=True)
        self._lock = (path / LOCK).open("a")
        _lock(self._lock, path)
        for unfinished in path.glob(f".*{UNFINISHED}"):
            unfinished.unlink()
        parts = _parts(path)
        self.done = {
            str(image)
            for part in parts
            for image in pq.read_table(part, columns=["image"])["image"]
        }
        self._path = path
        self._number = 1 + max((int(p.stem.removeprefix(PART_PREFIX)) for p in parts), default=-1)
        self._schema = schema(dimension)
        self._rows: list[dict[str, Any]] = []
        self._since = time.monotonic()

    def write(self, record: dict[str, Any]) -> None:
        """Buffer `record`; write a part when the buffer is full or old enough."""
        self._rows.append(_row(record))
        if len(self._rows) >= ROWS_PER_PART or time.monotonic() - self._since > SECONDS_PER_PART:
            self._flush()

    def close(self) -> None:
        """Write the buffered rows as a last part."""
        self._flush()
        self._lock.close()

    def _flush(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self._rows:
            name = self._path / f"{PART_PREFIX}{self._number:05d}.parquet"
            temporary = name.with_name(f".{name.name}{UNFINISHED}")
            pq.write_table(pa.Table.from_pylist(self._rows, schema=self._schema), temporary)
            os.replace(temporary, name)
            self._number += 1
            self._rows = []
        self._since = time.monotonic()


def _lock(file: IO[Any], path: Path) -> None:
    """Hold `file` (of the results `path`) locked until it is closed, so that two jobs never
    write the same results at once (KaoError if another job holds it; no lock where the
    platform has no `fcntl`, e.g. Windows). The lock dies with the process, even when it is
    killed: moving on to a rerun needs no cleaning up."""
    try:
        import fcntl
    except ImportError:
        return
    try:
        fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        with contextlib.suppress(OSError):
            file.close()
        raise KaoError(f"{path} is being written by another job; wait for it to end") from None


def schema(dimension: int | None) -> Any:
    """The pyarrow schema of Parquet results (see the module)."""
    import pyarrow as pa

    face = [
        pa.field("box", pa.list_(pa.float32(), 4)),
        pa.field("score", pa.float32()),
        pa.field("attributes", pa.string()),
    ]
    if dimension is not None:
        face.insert(2, pa.field("embedding", pa.list_(pa.float32(), dimension)))
    return pa.schema(
        [
            pa.field("image", pa.string(), nullable=False),
            pa.field("width", pa.int32()),
            pa.field("height", pa.int32()),
            pa.field("error", pa.string()),
            pa.field("faces", pa.list_(pa.struct(face))),
            pa.field("fields", pa.string()),
        ]
    )


def _parts(path: Path) -> list[Path]:
    """The finished parts of Parquet results, in order."""
    return sorted(path.glob(f"{PART_PREFIX}*.parquet"))


def _row(record: dict[str, Any]) -> dict[str, Any]:
    """A record as a Parquet row."""
    faces = record.get("faces")
    listed = isinstance(faces, list)
    rows = None
    if listed:
        rows = []
        for face in faces:
            extra = {k: v for k, v in face.items() if k not in ("box", "score", "embedding")}
            row = {"box": face["box"], "score": face["score"], "attributes": json.dumps(extra)}
            if "embedding" in face:
                row["embedding"] = face["embedding"]
            rows.append(row)
    rest = {k: v for k, v in record.items() if k not in BASE_KEYS or (k == "faces" and not listed)}
    return {
        "image": record["image"],
        "width": record.get("width"),
        "height": record.get("height"),
        "error": record.get("error"),
        "faces": rows,
        "fields": json.dumps(rest),
    }


def _record(row: dict[str, Any]) -> dict[str, Any]:
    """A Parquet row back as a record (the inverse of `_row`, floats as float32 gave them)."""
    record: dict[str, Any] = {"image": row["image"]}
    if row["error"] is not None:
        record["error"] = row["error"]
    else:
        record.update(width=row["width"], height=row["height"])
    if row["faces"] is not None:
        faces = []
        for face in row["faces"]:
            item = {"box": face["box"], "score": face["score"]}
            if face.get("embedding") is not None:
                item["embedding"] = face["embedding"]
            item.update(json.loads(face["attributes"]))
            faces.append(item)
        record["faces"] = faces
    record.update(json.loads(row["fields"]))
    return record
