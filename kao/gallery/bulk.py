"""Enrolment from a `kao embed --results` file, for collections of any size.

The person of each photo is the name of the folder that holds it (a collection laid out one
sub-folder per person: ``people/Ada_Lovelace/1.jpg`` is Ada_Lovelace). A photo is enrolled when
it has exactly one face (or, with `largest`, its largest face); the others are counted by
reason. Faces are written in transactions of `BATCH` faces, each committed on its own, so a
large enrolment neither holds one huge transaction nor loses what was committed when stopped; a
rerun skips the photos whose faces the collection already holds (by source). Embeddings are
taken as `kao embed` recorded them: the photo is not read again, so `kao enroll`'s quality
check (which needs the photo) does not apply."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

import numpy as np

from kao.errors import ConflictError, GalleryError
from kao.gallery.records import Box, NewFace, check_name
from kao.gallery.store import Gallery
from kao.recognition.embedded import EmbeddedImage, read_embedded

BATCH = 1000
"""Faces written per transaction."""

NO_FACE = "no face"
SEVERAL_FACES = "several faces"
FAILED = "failed in kao embed"
NO_PERSON = "no person folder name"
ENROLLED = "already enrolled"
REASONS = (NO_FACE, SEVERAL_FACES, FAILED, NO_PERSON, ENROLLED)
"""Why a photo is not enrolled, in the order reports list them."""


@dataclass
class BulkEnrolment:
    """What `enroll_results` did: `added` faces of `persons` (their names) in `batches`
    transactions; `skipped` photos by reason (`REASONS`)."""

    added: int = 0
    persons: set[str] = field(default_factory=set)
    batches: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        """JSON form: added, persons (how many), batches, skipped {reason: photos}."""
        return {
            "added": self.added,
            "persons": len(self.persons),
            "batches": self.batches,
            "skipped": {reason: self.skipped[reason] for reason in REASONS},
        }


def person_of(image: str) -> str:
    """The person of a photo: the name of its folder ("" for a photo without one)."""
    return PurePath(image).parent.name


def enroll_results(
    gallery: Gallery,
    collection: str,
    path: Path,
    *,
    largest: bool = False,
    batch: int = BATCH,
    on_batch: Callable[[BulkEnrolment], None] | None = None,
) -> BulkEnrolment:
    """Enrol the faces recorded in the `kao embed --results` file at `path` into `collection`
    (created when new), each photo as the person its folder names (see the module). The
    records' model must be the collection's (ConflictError before anything is written);
    `on_batch` is called after each committed transaction."""
    done = BulkEnrolment()
    already = gallery.sources(collection)
    pending: list[tuple[str, NewFace]] = []
    checked = False
    for record in read_embedded(path):
        reason = _reason(record, largest, already)
        if reason is not None:
            done.skipped[reason] += 1
            continue
        assert record.model is not None  # a photo that was read
        if not checked:
            _check_model(gallery, collection, record.model, path)
            checked = True
        chosen = int(np.argmax(_areas(record.boxes)))
        x1, y1, x2, y2 = (float(v) for v in record.boxes[chosen])
        box: Box = (x1, y1, x2, y2)
        face = NewFace(record.embeddings[chosen], record.model, record.image, box)
        pending.append((person_of(record.image), face))
        if len(pending) >= batch:
            _write(gallery, collection, pending, done, on_batch)
    _write(gallery, collection, pending, done, on_batch)
    return done


def _reason(record: EmbeddedImage, largest: bool, already: set[str]) -> str | None:
    """Why `record`'s photo is not enrolled, or None."""
    if record.error is not None:
        return FAILED
    if not len(record.boxes):
        return NO_FACE
    if len(record.boxes) > 1 and not largest:
        return SEVERAL_FACES
    try:
        check_name(person_of(record.image), "person")
    except GalleryError:
        return NO_PERSON  # none, or not a name kao stores (e.g. a control character)
    if record.image in already:
        return ENROLLED
    return None


def _areas(boxes: np.ndarray) -> np.ndarray:
    """Areas (F,) of boxes (F, 4) [x1, y1, x2, y2]."""
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def _check_model(gallery: Gallery, collection: str, model: str, path: Path) -> None:
    """ConflictError when `collection` holds faces of another model than `model`."""
    held = gallery.collection_model(collection)
    if held is not None and held != model:
        raise ConflictError(
            f"{path} holds {model} embeddings, but collection {collection!r} holds {held} "
            f"embeddings; run kao embed --model {held} --results ..., or enrol into another "
            "collection"
        )


def _write(
    gallery: Gallery,
    collection: str,
    pending: list[tuple[str, NewFace]],
    done: BulkEnrolment,
    on_batch: Callable[[BulkEnrolment], None] | None,
) -> None:
    """Write `pending` in one transaction, count it in `done` and empty it."""
    if not pending:
        return
    ids = gallery.add_batch(collection, pending, pinned=True)
    done.added += len(ids)
    done.persons.update(person for person, _ in pending)
    done.batches += 1
    pending.clear()
    if on_batch is not None:
        on_batch(done)
