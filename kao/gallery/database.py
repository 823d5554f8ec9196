"""`FaceDatabase`: the face database in one object: enrol people from photos, identify the faces
of new photos, and list, rename, delete, export and import what is stored.

Example::

    with kao.FaceDatabase("faces.db") as db:          # or "postgresql://user@host/db"
        db.enroll("family", "Alice", ["alice1.jpg", "alice2.jpg"])
        [found] = db.identify("family", "party.jpg")   # found.person: "Alice" or None
        db.persons("family")                            # [PersonInfo("Alice", 2)]
        db.rename_person("family", "Alice", "Alice B.")

It joins the three parts: the embedder (photo -> face embeddings, loaded only when a photo is
enrolled or identified), the gallery (the stored faces, SQLite or PostgreSQL) and a
nearest-neighbour index over each collection. The index is
kept in sync with the gallery: each search first reads the collection's revision (one small
query); when it changed, the faces added or deleted since are applied to the index. Indexes are
also saved in the cache folder, so a new process loads the large approximate index instead of
building it again, and rebuilds it when the file is missing, damaged or not the collection's.
A saved index is named by, and records, the database's random id, the collection and the model
(never the URL: two folders' "faces.db", or a database deleted and made again at the same path,
are different databases), and its revision must not be newer than the collection's.

A person's score for a face is the best similarity among that person's enrolled faces, so
every photo enrolled for a person (another angle, another age) helps recognise them."""

from __future__ import annotations

import copy
import hashlib
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

import numpy as np

from kao.detection import FaceDetector
from kao.detection.boxes import iou_matrix
from kao.errors import ConflictError, KaoError
from kao.face import Face
from kao.gallery.connect import open_gallery
from kao.gallery.index import IndexFileError, choose_index, load_index
from kao.gallery.records import (
    Box,
    CollectionInfo,
    FaceRecord,
    NewFace,
    PersonInfo,
    check_box,
    check_name,
)
from kao.gallery.reembed import Reembedding, reembed
from kao.gallery.store import Gallery, model_conflict
from kao.image import ImageInput, describe, load_image
from kao.models.store import cache_dir
from kao.quality import enrolment_problem
from kao.recognition.embedder import (
    DEFAULT_MODEL,
    RECOGNITION_MODELS,
    FaceEmbedder,
    NoFaceError,
    check_model,
    default_embedder,
)
from kao.recognition.verify import decision_threshold, similarity

BOX_MATCH = 0.5
"""The least intersection over union between a box given to `FaceDatabase.enroll` and the
detected face enrolled for it."""


class PoorFaceError(KaoError):
    """A photo's face is too poor to enrol: `source` names the photo, `problem` says why (see
    `kao.quality.enrolment_problem`)."""

    def __init__(self, source: str, problem: str) -> None:
        super().__init__(f"{source}: {problem}; enrol it anyway with force")
        self.source = source
        self.problem = problem


@dataclass(frozen=True)
class Match:
    """A candidate person for a face: `similarity` in [0, 1] (0.5 at the verification
    threshold) and the id of their most similar enrolled face."""

    person: str
    similarity: float
    face_id: int


@dataclass(frozen=True)
class Identified:
    """A face of the probe photo with its best matches; `person` is the best match when it is
    above the threshold, else None ("unknown")."""

    face: Face
    matches: list[Match]
    person: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON form: box, matches [{person, similarity}], person (or null)."""
        return {
            "box": self.face.to_dict()["box"],
            "matches": [
                {"person": m.person, "similarity": round(m.similarity, 4)} for m in self.matches
            ],
            "person": self.person,
        }


@dataclass
class _Synced:
    """An index of one collection and model at one version (database id, revision), with the
    person of each face id."""

    index: Any
    version: tuple[str, int]
    persons: dict[int, str] = field(default_factory=dict)


class FaceDatabase:
    """The face database at a gallery URL ("faces.db", "postgresql://...", see `open_gallery`):
    enrolment and identification, and every listing and change of the stored faces.

    Photos are embedded by `embedder` when given (one recognition model for every collection:
    a collection holding another model's faces is refused). By default each collection uses
    its own model, the model of the faces it holds, and a new or empty collection kao's
    default (`kao.recognition.embedder.DEFAULT_MODEL`); those embedders share `detector`
    (default: kao's default detector) and load on first enrolment or identification, so
    listing and deleting load no model. Safe to share between threads; several processes may
    use one database at once. Use it as a context manager or call `close()`."""

    def __init__(
        self,
        url: str | Path,
        embedder: FaceEmbedder | None = None,
        *,
        detector: FaceDetector | None = None,
    ) -> None:
        self.gallery: Gallery = open_gallery(url)
        self.url = self.gallery.url
        """The gallery's URL, without any password."""
        self._embedder = embedder
        self._detector = detector
        self._embedders: dict[str, FaceEmbedder] = {}
        """The embedder of each model a collection asked for (when `embedder` is None)."""
        self._indexes: dict[tuple[str, str], _Synced] = {}
        """Indexes by (collection, model)."""
        self._lock = threading.Lock()
        self._embedders_lock = threading.Lock()

    def embedder_for(self, collection: str) -> FaceEmbedder:
        """The embedder of `collection`'s photos: this database's `embedder` when it was given,
        else one of the collection's model (kao's default model for a new or empty one)."""
        if self._embedder is not None:
            return self._embedder
        model = self.gallery.collection_model(collection) or DEFAULT_MODEL
        if model not in RECOGNITION_MODELS:
            raise ConflictError(
                f"collection {collection!r} holds {model} embeddings, which kao does not "
                "compute; enrol the people again in another collection"
            )
        return self._model_embedder(model)

    def _model_embedder(self, model: str) -> FaceEmbedder:
        """The embedder of recognition model `model` (one of `RECOGNITION_MODELS`) on this
        database's detector, made on first use and then shared."""
        with self._embedders_lock:
            found = self._embedders.get(model)
            if found is None:
                if model == DEFAULT_MODEL and self._detector is None:
                    found = default_embedder()
                else:
                    detector = self._detector or default_embedder().detector
                    found = FaceEmbedder(detector, model=model)
                self._embedders[model] = found
            return found

    def using(self, embedder: FaceEmbedder) -> FaceDatabase:
        """This database (the same connection and cached indexes) enrolling and identifying
        with `embedder` in every collection, e.g. another recognition model; closing either
        closes both."""
        view = copy.copy(self)
        view._embedder = embedder
        return view

    def close(self) -> None:
        """Closes the database connection (the `with` block does it on exit)."""
        self.gallery.close()

    def __enter__(self) -> FaceDatabase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"FaceDatabase({self.url!r})"

    # -- what is stored: each call is one transaction of the gallery -----------------------------

    def create_collection(self, name: str) -> None:
        """Create an empty collection; ConflictError if one of that name exists."""
        self.gallery.create_collection(name)

    def list_collections(self) -> list[CollectionInfo]:
        """Every collection with its numbers of persons and faces, sorted by name."""
        return self.gallery.list_collections()

    def delete_collection(self, name: str) -> None:
        """Delete a collection with all its persons and faces; NotFoundError if unknown."""
        self.gallery.delete_collection(name)

    def revision(self, collection: str) -> int:
        """The collection's revision (it rises with every change); NotFoundError if unknown."""
        return self.gallery.revision(collection)

    def persons(self, collection: str) -> list[PersonInfo]:
        """Every person of the collection with their number of faces, sorted by name."""
        return self.gallery.persons(collection)

    def faces(self, collection: str, person: str | None = None) -> list[FaceRecord]:
        """The stored faces of the collection, or of one person of it, sorted by id."""
        return self.gallery.faces(collection, person)

    def rename_person(self, collection: str, old: str, new: str) -> None:
        """Rename a person; NotFoundError if `old` is unknown, ConflictError if `new` exists."""
        self.gallery.rename_person(collection, old, new)

    def delete_person(self, collection: str, person: str) -> int:
        """Delete a person and all their faces; returns how many faces went."""
        return self.gallery.delete_person(collection, person)

    def delete_face(self, collection: str, face_id: int) -> None:
        """Delete one face by id; a person left without faces is deleted too."""
        self.gallery.delete_face(collection, face_id)

    def export(self, collection: str, path: str | os.PathLike[str]) -> int:
        """Write the collection's faces to `path` as JSON Lines; returns the number of faces."""
        return self.gallery.export(collection, path)

    def import_(self, collection: str, path: str | os.PathLike[str]) -> int:
        """Add the faces of an `export` file to `collection`, all or nothing; returns how many.
        The faces keep the model recorded in the file, which must be the collection's
        (ConflictError otherwise, like `enroll`)."""
        return self.gallery.import_(collection, path, pinned=True)

    # -- photos --------------------------------------------------------------------------------

    def reembed(
        self,
        collection: str,
        model: str,
        *,
        root: str | os.PathLike[str] | None = None,
        drop_unreadable: bool = False,
    ) -> Reembedding:
        """Re-compute every face of `collection` with recognition model `model` from the photo
        it was enrolled from (relative paths under `root`), the collection then holding `model`
        faces only. When a photo cannot be read, or its face is no longer at the enrolled box,
        nothing is changed unless `drop_unreadable` (those faces are then deleted); the result
        lists them. Faces get new ids. See `kao.gallery.reembed`."""
        embedder = self._model_embedder(check_model(model))
        folder = None if root is None else Path(root)
        return reembed(
            self.gallery, collection, embedder, root=folder, drop_unreadable=drop_unreadable
        )

    def enroll(
        self,
        collection: str,
        person: str,
        images: Sequence[ImageInput],
        *,
        force: bool = False,
        boxes: Sequence[Sequence[float] | None] | None = None,
    ) -> list[int]:
        """Add one face per photo to `person` in `collection` (created when new), in one
        transaction: every photo is embedded first, and nothing is stored if one fails.

        Each photo's largest face is used, or with `boxes` (one per photo: ``(x1, y1, x2, y2)``
        pixels, or None for the largest) the face detected at the photo's box (intersection
        over union at least `BOX_MATCH`), e.g. one that `kao.group` found in a group photo. A
        photo given as a path is recorded by its absolute path (what `reembed` reads again).
        Raises NoFaceError naming a photo without a face (at its box), and PoorFaceError
        naming a photo whose face is too small, blurred, dark or turned to enrol
        (`kao.quality.enrolment_problem`) unless `force`. Returns the new face ids."""
        if not images:
            raise KaoError("enroll needs at least one photo")
        wanted: list[Box | None] = (
            [None] * len(images) if boxes is None else [check_box(box) for box in boxes]
        )
        if len(wanted) != len(images):
            raise KaoError(f"enroll got {len(wanted)} boxes for {len(images)} photos")
        embedder = self.embedder_for(collection)
        self._check_model(collection, embedder.model_name, "enrol")  # add_faces checks again
        faces = []
        for image, box in zip(images, wanted, strict=True):
            rgb = load_image(image, copy=False)
            try:
                face = _face_to_enrol(embedder, rgb, box)
            except NoFaceError as error:
                raise NoFaceError(f"{describe(image)}: {error}") from None
            problem = None if force else enrolment_problem(rgb, face)
            if problem is not None:
                raise PoorFaceError(describe(image), problem)
            faces.append(
                NewFace(
                    embedding=face.embedding,
                    model=embedder.model_name,
                    source=describe(Path(image).absolute() if _is_path(image) else image),
                    box=tuple(float(v) for v in face.box),
                )
            )
        return self.gallery.add_faces(collection, person, faces, pinned=True)

    def identify(
        self,
        collection: str,
        image: ImageInput,
        top: int = 3,
        *,
        threshold: float | None = None,
        far: float | None = None,
    ) -> list[Identified]:
        """Every face of `image` with its `top` best-matching persons of `collection`; the best
        is the face's person when closer than `threshold` (Euclidean distance) or than the
        distance at false-accept rate `far` (at most one of the two; default: the model's
        calibrated threshold, see `kao.recognition.verify.decision_threshold`)."""
        embedder = self.embedder_for(collection)
        faces = embedder.embed(image)
        return self._identify(collection, embedder, faces, top, threshold, far)

    def identify_faces(
        self,
        collection: str,
        faces: Sequence[Face],
        top: int = 3,
        *,
        threshold: float | None = None,
        far: float | None = None,
    ) -> list[Identified]:
        """Like `identify`, for faces already embedded by `embedder_for(collection)`."""
        return self._identify(collection, self.embedder_for(collection), faces, top, threshold, far)

    def _identify(
        self,
        collection: str,
        embedder: FaceEmbedder,
        faces: Sequence[Face],
        top: int,
        threshold: float | None,
        far: float | None,
    ) -> list[Identified]:
        """`identify_faces` with the collection's embedder already looked up."""
        if top < 1:
            raise KaoError(f"--top must be at least 1, got {top}")
        model = embedder.model_name
        limit = decision_threshold(model, threshold=threshold, far=far)
        if not faces:
            return []
        synced = self._sync(collection, embedder)
        if not synced.persons:  # no face of this model: maybe the collection holds another's
            self._check_model(collection, model, "identify")
        queries = np.stack([f.embedding for f in faces]).astype(np.float32)
        # Ask for enough faces to find `top` different persons in most collections.
        ids, cosines = synced.index.search(queries, min(len(synced.persons), top * 8) or 1)
        results = []
        for face, row_ids, row_cos in zip(faces, ids, cosines, strict=True):
            best: dict[str, Match] = {}
            for face_id, cosine in zip(row_ids.tolist(), row_cos.tolist(), strict=True):
                if face_id < 0:
                    continue
                person = synced.persons[face_id]
                if person not in best:
                    distance = float(np.sqrt(max(0.0, 2.0 - 2.0 * cosine)))
                    best[person] = Match(person, similarity(distance, model), face_id)
            matches = sorted(best.values(), key=lambda m: -m.similarity)[:top]
            known = matches and matches[0].similarity >= similarity(limit, model)
            results.append(Identified(face, matches, matches[0].person if known else None))
        return results

    def _check_model(self, collection: str, model: str, action: str) -> None:
        """ConflictError when `collection` holds faces of other models than `model` only: a
        collection is pinned to the model of its first face, and `action` ("enrol",
        "identify") with another model would mix embeddings or match nothing."""
        held = self.gallery.other_model(collection, model)
        if held is not None:
            raise model_conflict(collection, held, model, action)

    def _sync(self, collection: str, embedder: FaceEmbedder) -> _Synced:
        """The collection's index of `embedder`'s faces, brought up to date with the gallery."""
        collection = check_name(collection, "collection")
        model = embedder.model_name
        with self._lock:
            version = self.gallery.version(collection)
            database, revision = version
            synced = self._indexes.get((collection, model))
            if synced is not None and synced.version == version:
                return synced
            ids, persons, matrix = self.gallery.embeddings(collection, model)
            contents = {"database": database, "collection": collection, "model": model}
            path = _index_path(contents)
            if synced is None or synced.version[0] != database or synced.version[1] > revision:
                synced = _load(path, contents, revision)
            dimension = matrix.shape[1] if len(ids) else embedder.dimension
            if (
                synced is None
                or synced.index.dim != dimension
                or type(synced.index) is not choose_index(len(ids), dimension)
            ):
                synced = _Synced(_build(ids, matrix, embedder.dimension), version)
            else:
                _apply_changes(synced.index, ids, matrix)
            synced.version = version
            synced.persons = dict(zip(ids.tolist(), persons, strict=True))
            path.parent.mkdir(parents=True, exist_ok=True)
            synced.index.save(path, revision, contents)
            self._indexes[(collection, model)] = synced
            return synced


def _face_to_enrol(embedder: FaceEmbedder, rgb: np.ndarray, box: Box | None) -> Face:
    """The embedded face of `rgb` (H x W x 3 uint8) to enrol: its largest, or the one detected
    at `box`; NoFaceError saying which is missing ("no face found", "no face at box ...")."""
    if box is None:
        try:
            face, _, _ = embedder.embed_one(rgb)
        except NoFaceError:
            raise NoFaceError("no face found") from None
        return face
    found = embedder.detector.detect(rgb)
    overlaps = iou_matrix(np.array([box]), np.array([f.box for f in found]))[0]
    if not found or overlaps.max() < BOX_MATCH:
        raise NoFaceError(f"no face at box ({', '.join(f'{v:g}' for v in box)})")
    (face,) = embedder.embed_faces(rgb, [found[int(overlaps.argmax())]])
    return face


def _is_path(image: ImageInput) -> TypeGuard[str | os.PathLike[str]]:
    return isinstance(image, (str, os.PathLike))


def _index_path(contents: dict[str, str]) -> Path:
    """Where the index of `contents` (database id, collection, model) is saved."""
    key = "\n".join(contents[name] for name in ("database", "collection", "model"))
    name = hashlib.sha256(key.encode()).hexdigest()[:24]
    return cache_dir().parent / "indexes" / f"{name}.kaoindex"


def _load(path: Path, contents: dict[str, str], revision: int) -> _Synced | None:
    """The index saved at `path` if it holds `contents` at a revision no newer than `revision`
    (the collection's now), else None: the caller builds it from the gallery."""
    if not path.is_file():
        return None
    try:
        index, saved = load_index(path, contents)
    except IndexFileError:
        return None  # damaged, from another version or of other contents: rebuilt
    if saved > revision:
        return None
    return _Synced(index, (contents["database"], saved))


def _build(ids: np.ndarray, matrix: np.ndarray, dimension: int) -> Any:
    kind = choose_index(len(ids), dimension)
    if len(ids) == 0:
        return kind(dimension)
    return kind.build(ids, matrix)


def _apply_changes(index: Any, ids: np.ndarray, matrix: np.ndarray) -> None:
    """Make `index` hold exactly the faces (`ids`, `matrix`): add the new, remove the gone."""
    present = index.ids()
    gone = np.setdiff1d(present, ids)
    if gone.size:
        index.remove(gone)
    new = ~np.isin(ids, present)
    if new.any():
        index.add(ids[new], matrix[new])


__all__ = ["FaceDatabase", "Identified", "Match", "NoFaceError", "PoorFaceError", "Reembedding"]
