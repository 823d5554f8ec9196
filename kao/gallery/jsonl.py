"""The export format of a collection: JSON Lines, one face per line, UTF-8.

Each line is an object ``{"person", "model", "source", "box", "embedding", "created"}``: box is
``[x1, y1, x2, y2]`` pixels or null, embedding a list of D numbers, created an ISO 8601 time in
UTC. Each embedding value is written as the shortest decimal that reads back as the same float32,
so an export and import round trip is exact. Face ids are not written: an import makes new ones.

Exports are private files written atomically (`kao.files`). Reading takes only regular
files (never waits on a FIFO or reads a device), lines of at most `MAX_LINE` bytes, and reports
every malformed line, however hostile (huge numbers, deep nesting, impossible dates), as a
GalleryError naming ``path:line``.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from kao.errors import GalleryError
from kao.files import replace_atomically
from kao.gallery.records import FaceRecord, NewFace, check_name

KEYS = frozenset({"person", "model", "source", "box", "embedding", "created"})
MAX_LINE = 2 << 20
"""Bytes a line may have: twice the longest line of the largest embedding the gallery takes
(records.MAX_DIM values of at most 16 characters each, 1 MiB); a 128-d line has about 2.5 KB."""
FLOAT32_MAX = float(np.finfo(np.float32).max)

Item = tuple[str, str, NewFace, datetime | None]
"""A face read from a file: (``path:line``, person, face, created or None)."""


def to_line(record: FaceRecord) -> str:
    """`record` as one line of an export file (without the newline)."""
    return json.dumps(
        {
            "person": record.person,
            "model": record.model,
            "source": record.source,
            "box": None if record.box is None else list(record.box),
            # str(np.float32) is the shortest decimal that reads back as the same float32.
            "embedding": [float(str(v)) for v in record.embedding],
            "created": record.created.astimezone(timezone.utc).isoformat(),
        },
        ensure_ascii=False,
    )


def parse_line(text: str) -> tuple[str, NewFace, datetime | None]:
    """(person, face, created) from one line of an export file; GalleryError says what is wrong.
    Required keys: person, model, embedding (a list of numbers); optional: source (default ""),
    box (default null), created (ISO 8601; without a time zone it is taken as UTC). Any other
    key is an error. Every number is read as a float, so no number is too long to read."""
    try:
        item: Any = json.loads(text, parse_int=float)
    except json.JSONDecodeError as error:
        raise GalleryError(f"not valid JSON ({error.msg} at column {error.colno})") from None
    except RecursionError:
        raise GalleryError("JSON nested too deeply") from None
    if not isinstance(item, dict):
        raise GalleryError(f"expected a JSON object, got {type(item).__name__}")
    missing = sorted({"person", "model", "embedding"} - item.keys())
    if missing:
        raise GalleryError(f"missing {', '.join(missing)}")
    unknown = sorted(item.keys() - KEYS)
    if unknown:
        raise GalleryError(f"unknown key(s) {', '.join(unknown)}")
    vector = item["embedding"]
    if not isinstance(vector, list) or not vector or not all(_is_number(v) for v in vector):
        raise GalleryError("embedding must be a non-empty list of numbers")
    values = np.asarray(vector, dtype=np.float64)
    if not (np.abs(values) <= FLOAT32_MAX).all():  # also catches NaN and infinity
        raise GalleryError("embedding has a number too large for float32, or NaN or infinity")
    embedding = values.astype(np.float32)
    box = item.get("box")
    if box is not None and (not isinstance(box, list) or not all(_is_number(v) for v in box)):
        raise GalleryError(f"box must be a list of 4 numbers or null, not {box!r}")
    face = NewFace(embedding, item["model"], item.get("source", ""), box)
    return check_name(item["person"], "person"), face, _created(item.get("created"))


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _created(value: object) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise GalleryError(f"created must be an ISO 8601 string, not {value!r}")
    try:
        created = datetime.fromisoformat(value)
        if created.tzinfo is None:
            created = created.replace(tzinfo=timezone.utc)
        return created.astimezone(timezone.utc)
    except (ValueError, OverflowError) as error:
        raise GalleryError(
            f"created {value[:40]!r} is not an ISO 8601 date and time of the years 1 to 9999 "
            f"({error})"
        ) from None


def write(path: Path, records: Iterable[FaceRecord]) -> int:
    """Write `records` to `path` (mode 0600): into a part file beside it, flushed to disk, then
    moved into place with os.replace, so `path` is the old file or the complete new one, never
    half written. Returns the number of lines."""
    if not path.parent.is_dir():
        raise GalleryError(f"{path}: the folder {path.parent} does not exist")
    count = 0
    try:
        with replace_atomically(path) as out:
            for record in records:
                out.write((to_line(record) + "\n").encode("utf-8"))
                count += 1
    except OSError as error:
        raise GalleryError(f"{path}: cannot write: {error.strerror or error}") from error
    return count


def read(path: Path) -> list[Item]:
    """Every face of the regular file at `path`, checked; blank lines are skipped. A bad line
    raises GalleryError naming ``path:line`` and the reason; so does a line longer than
    `MAX_LINE` bytes, read no further. Anything but a regular file (a FIFO, a device, a folder)
    is refused without reading from it."""
    items: list[Item] = []
    try:
        with _open_regular(path) as stream:
            for number, line in enumerate(iter(lambda: stream.readline(MAX_LINE + 1), b""), 1):
                where = f"{path}:{number}"
                try:
                    if len(line) > MAX_LINE:
                        raise GalleryError(f"line longer than {MAX_LINE} bytes")
                    text = line.decode("utf-8")
                    if not text.strip():
                        continue
                    person, face, created = parse_line(text)
                except UnicodeDecodeError as error:
                    raise GalleryError(f"{where}: not UTF-8 text ({error.reason})") from None
                except GalleryError as error:
                    raise GalleryError(f"{where}: {error}") from None
                items.append((where, person, face, created))
    except OSError as error:
        raise GalleryError(f"{path}: cannot read: {error.strerror or error}") from error
    return items


def _open_regular(path: Path) -> BinaryIO:
    """`path` opened for binary reading, or GalleryError unless it is a regular file. Opened
    without blocking, so a FIFO is refused instead of waited on."""
    handle = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        mode = os.fstat(handle).st_mode
        if not stat.S_ISREG(mode):
            kind = "a folder" if stat.S_ISDIR(mode) else "not a regular file"
            raise GalleryError(f"{path}: {kind} (an export file is needed)")
        os.set_blocking(handle, True)
        return os.fdopen(handle, "rb")
    except BaseException:
        os.close(handle)
        raise
