"""The export format of a collection: JSON Lines, one face per line, UTF-8.

Each line is an object ``{"person", "model", "source", "box", "embedding", "created"}``: box is
``[x1, y1, x2, y2]`` pixels or null, embedding a list of D numbers, created an ISO 8601 time in
UTC. Each embedding value is written as the shortest decimal that reads back as the same float32,
so an export and import round trip is exact. Face ids are not written: an import makes new ones.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from kao.errors import GalleryError
from kao.gallery.records import FaceRecord, NewFace, check_name

KEYS = frozenset({"person", "model", "source", "box", "embedding", "created"})

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
    key is an error."""
    try:
        item: Any = json.loads(text)
    except json.JSONDecodeError as error:
        raise GalleryError(f"not valid JSON ({error.msg} at column {error.colno})") from None
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
    try:
        embedding = np.asarray(vector, dtype=np.float64).astype(np.float32)
    except OverflowError:
        raise GalleryError("embedding has a number too large for float32") from None
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
    except ValueError:
        raise GalleryError(f"created {value!r} is not an ISO 8601 date and time") from None
    if created.tzinfo is None:
        created = created.replace(tzinfo=timezone.utc)
    return created.astimezone(timezone.utc)


def write(path: Path, records: Iterable[FaceRecord]) -> int:
    """Write `records` to `path`: into a temporary file beside it, flushed to disk, then moved
    into place with os.replace, so `path` is the old file or the complete new one, never half
    written. Returns the number of lines."""
    if not path.parent.is_dir():
        raise GalleryError(f"{path}: the folder {path.parent} does not exist")
    try:
        handle, temp_name = tempfile.mkstemp(
            dir=path.parent, prefix=f".{path.name}.", suffix=".part"
        )
    except OSError as error:
        raise GalleryError(f"{path}: cannot write: {error.strerror or error}") from error
    temp = Path(temp_name)
    count = 0
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as out:
            for record in records:
                out.write(to_line(record) + "\n")
                count += 1
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except OSError as error:
        temp.unlink(missing_ok=True)
        raise GalleryError(f"{path}: cannot write: {error.strerror or error}") from error
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return count


def read(path: Path) -> list[Item]:
    """Every face of the file at `path`, checked; blank lines are skipped. A bad line raises
    GalleryError naming ``path:line`` and the reason."""
    items: list[Item] = []
    try:
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                where = f"{path}:{number}"
                try:
                    person, face, created = parse_line(line)
                except GalleryError as error:
                    raise GalleryError(f"{where}: {error}") from None
                items.append((where, person, face, created))
    except UnicodeDecodeError as error:
        raise GalleryError(f"{path}: not UTF-8 text ({error.reason})") from error
    except OSError as error:
        raise GalleryError(f"{path}: cannot read: {error.strerror or error}") from error
    return items
