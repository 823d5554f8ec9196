"""Re-embedding a collection with another recognition model, from the photos its faces came from.

A gallery stores embeddings, not photos: each face records its `source` (the photo's path, made
absolute when enrolled from a file) and its box. `reembed` reads each source again, finds the
enrolled face at its box, embeds it with the new model and then replaces the whole collection
in one transaction. A face whose photo cannot be read, or whose face is no longer at its box (the
file changed), is reported; the collection is then left as it was unless the caller agrees to
drop those faces."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kao.detection.boxes import iou_matrix
from kao.errors import ImageError, KaoError
from kao.gallery.records import FaceRecord, NewFace
from kao.gallery.store import Gallery
from kao.image import describe, load_image
from kao.recognition.embedder import FaceEmbedder

MIN_BOX_IOU = 0.5
"""The found face must overlap the enrolled face's stored box this much (intersection over
union): less means the file at that path is no longer the enrolled photo."""


@dataclass(frozen=True)
class Unreadable:
    """A stored face that could not be re-embedded, and why."""

    face_id: int
    person: str
    source: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """{"id", "person", "source", "reason"}."""
        return {
            "id": self.face_id,
            "person": self.person,
            "source": self.source,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Reembedding:
    """What `reembed` did: `ids` maps each re-embedded face's old id to its new one (empty
    when nothing was written); `unreadable` lists the faces that could not be re-embedded,
    dropped from the collection when `written`, else the collection is unchanged."""

    collection: str
    model: str
    ids: dict[int, int]
    unreadable: list[Unreadable]
    written: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON form: collection, model, written, reembedded (the number of faces), ids
        ({old id: new id}) and unreadable [{id, person, source, reason}]."""
        return {
            "collection": self.collection,
            "model": self.model,
            "written": self.written,
            "reembedded": len(self.ids),
            "ids": {str(old): new for old, new in self.ids.items()},
            "unreadable": [item.to_dict() for item in self.unreadable],
        }


def source_path(source: str, root: Path | None) -> Path:
    """The file a face's `source` names: an absolute path as it is, a relative one under `root`.
    KaoError (the reason) for a relative path without `root` or a source that is no path
    (a photo sent as bytes or over HTTP: kao keeps no copy)."""
    if source.startswith("<") and source.endswith(">"):
        raise KaoError(f"the photo was given as {source}, not as a file: kao kept no copy")
    path = Path(source)
    if path.is_absolute():
        return path
    if root is None:
        raise KaoError("a relative path: give the folder it is relative to (--root DIR)")
    return root / path


def reembed_face(embedder: FaceEmbedder, record: FaceRecord, root: Path | None) -> NewFace:
    """`record`'s face embedded again by `embedder` from its source photo: the detected face
    that best overlaps the stored box (the largest face when no box was stored). KaoError with
    the reason when the photo cannot be read or the face is not at its box."""
    path = source_path(record.source, root)
    try:
        rgb = load_image(path)
    except ImageError as error:
        raise KaoError(error.reason) from None
    faces = embedder.detector.detect(rgb)
    if not faces:
        raise KaoError("no face found in the photo now")
    if record.box is None:
        best = max(faces, key=lambda face: face.area)
    else:
        overlaps = iou_matrix(np.array(record.box), np.stack([face.box for face in faces]))[0]
        if overlaps.max() < MIN_BOX_IOU:
            raise KaoError(
                f"no face at the enrolled box (best overlap {overlaps.max():.2f}): the file changed"
            )
        best = faces[int(overlaps.argmax())]
    (embedded,) = embedder.embed_faces(rgb, [best])
    return NewFace(
        embedding=embedded.embedding,
        model=embedder.model_name,
        source=describe(os.fspath(path)) if root is not None else record.source,
        box=tuple(float(v) for v in best.box),
    )


def reembed(
    gallery: Gallery,
    collection: str,
    embedder: FaceEmbedder,
    *,
    root: Path | None = None,
    drop_unreadable: bool = False,
) -> Reembedding:
    """Re-compute every face of `collection` with `embedder`'s model from its source photo
    (relative sources under `root`), then replace the collection's faces in one transaction.
    When a face cannot be re-embedded, nothing is written unless `drop_unreadable`, which
    deletes those faces (and persons left without faces). ConflictError when the collection
    changes meanwhile."""
    revision = gallery.revision(collection)
    done: dict[int, NewFace] = {}
    unreadable: list[Unreadable] = []
    for record in gallery.faces(collection):
        try:
            done[record.id] = reembed_face(embedder, record, root)
        except KaoError as error:
            unreadable.append(Unreadable(record.id, record.person, record.source, str(error)))
    model = embedder.model_name
    if unreadable and not drop_unreadable:
        return Reembedding(collection, model, {}, unreadable, written=False)
    ids = gallery.replace_faces(collection, revision, done)
    return Reembedding(collection, model, ids, unreadable, written=True)
