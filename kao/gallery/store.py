"""The gallery: collections of persons, each with the embeddings of several photos of their face.

`Gallery` holds the SQL and logic that SQLite and PostgreSQL share; `kao.gallery.sqlite` and
`kao.gallery.postgres` add only the dialect: connecting, transactions, column types, where
revisions come from. `kao.gallery.connect.open_gallery` picks the dialect from a URL.

Tables (prefixed ``kao_`` so that a PostgreSQL database can be shared with other software):
``kao_meta`` (schema_version; database_id, a random id given to the database when it is created,
so that copies of its data kept elsewhere, like index caches, can tell it from another database
at the same path or URL), ``kao_collections``, ``kao_persons``, ``kao_faces``. Every write
runs in one transaction that first locks its collection, so writers of one collection take turns
and each sees what the previous one committed. A collection's revision is raised on every change
from a counter that never goes back, not even when a collection is deleted and made again.
"""

from __future__ import annotations

import os
import threading
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar

import numpy as np

from kao.errors import ConflictError, DatabaseError, GalleryError, NotFoundError
from kao.gallery import jsonl
from kao.gallery.records import (
    CollectionInfo,
    FaceRecord,
    NewFace,
    PersonInfo,
    check_name,
    embedding_bytes,
    embedding_from_bytes,
)

SCHEMA_VERSION = 1

NAMES_PER_QUERY = 500
"""Person names looked up per query (SQLite allows 999 parameters before 3.32)."""

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS kao_meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS kao_collections (
        id {id},
        name TEXT NOT NULL UNIQUE,
        revision BIGINT NOT NULL,
        created {time} NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS kao_persons (
        id {id},
        collection_id BIGINT NOT NULL REFERENCES kao_collections (id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        UNIQUE (collection_id, name),
        UNIQUE (id, collection_id)
    )""",
    """CREATE TABLE IF NOT EXISTS kao_faces (
        id {id},
        collection_id BIGINT NOT NULL,
        person_id BIGINT NOT NULL,
        model TEXT NOT NULL,
        dim INTEGER NOT NULL CHECK (dim > 0),
        source TEXT NOT NULL,
        box_x1 {real},
        box_y1 {real},
        box_x2 {real},
        box_y2 {real},
        embedding {blob} NOT NULL CHECK (length(embedding) = 4 * dim),
        created {time} NOT NULL,
        FOREIGN KEY (person_id, collection_id)
            REFERENCES kao_persons (id, collection_id) ON DELETE CASCADE
    )""",
    "CREATE INDEX IF NOT EXISTS kao_faces_person ON kao_faces (person_id, collection_id)",
    "CREATE INDEX IF NOT EXISTS kao_faces_model ON kao_faces (collection_id, model, id)",
)

_FACE_COLUMNS = (
    "f.id, p.name, f.model, f.source, f.box_x1, f.box_y1, f.box_x2, f.box_y2, f.embedding, "
    "f.created"
)

Cursor = Any  # a DB-API cursor: sqlite3.Cursor or psycopg.Cursor


class Gallery(ABC):
    """A face database: named collections of persons, each person with one or more faces.

    Open one with `kao.gallery.open_gallery`, or use `kao.FaceDatabase`, which also enrols and
    identifies. Every method is one transaction: it happens entirely or not at all. A Gallery
    may be shared between threads (calls take turns); processes each open their own. Use it as
    a context manager or call `close()`.
    """

    url: str
    """The database's URL, without any password."""

    _lock_clause: ClassVar[str] = ""
    """What makes ``SELECT ... FROM kao_collections`` lock the row until commit (" FOR UPDATE")."""

    _db_errors: ClassVar[tuple[type[BaseException], ...]] = ()
    """The driver's exceptions, reported as GalleryError."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._lock = threading.RLock()
        self._closed = False
        self._before_commit: Callable[[], None] | None = None
        """Tests only: called inside every write transaction right before it commits."""

    # -- dialect -------------------------------------------------------------------------------

    @abstractmethod
    def _transaction(self, write: bool) -> Any:
        """A context manager: begins a transaction (a write one takes the write lock where the
        dialect has one), yields a cursor, commits at the end, rolls back on an exception."""

    @abstractmethod
    def _sql(self, query: str) -> str:
        """`query`, written with ``?`` placeholders, in the driver's placeholder style."""

    @abstractmethod
    def _types(self) -> dict[str, str]:
        """The column types that fill the `_SCHEMA` templates: id, time, real, blob."""

    @abstractmethod
    def _schema_exists(self, cur: Cursor) -> bool:
        """True when the table kao_meta exists."""

    @abstractmethod
    def _lock_schema(self, cur: Cursor) -> None:
        """Take, until commit, the lock under which the tables are looked for and created."""

    @abstractmethod
    def _create_schema(self, cur: Cursor) -> None:
        """Create every table (inside the write transaction that holds `_lock_schema`)."""

    @abstractmethod
    def _next_revision(self, cur: Cursor) -> int:
        """A revision number greater than any handed out before."""

    @abstractmethod
    def _time_to_db(self, value: datetime) -> Any:
        """A UTC datetime in the form the driver stores."""

    @abstractmethod
    def _time_from_db(self, value: Any) -> datetime:
        """A stored time as a UTC datetime."""

    @abstractmethod
    def _close(self) -> None:
        """Close the connection."""

    # -- plumbing ------------------------------------------------------------------------------

    def _explain(self, error: BaseException) -> str:
        """A driver error as a message (backends remove secrets and add hints)."""
        return str(error).strip()

    @contextmanager
    def _tx(self, write: bool) -> Iterator[Cursor]:
        """One transaction with this gallery's lock held; driver errors become GalleryError."""
        with self._lock:
            if self._closed:
                raise GalleryError(f"{self.url}: the gallery is closed")
            try:
                with self._transaction(write) as cur:
                    yield cur
                    if write and self._before_commit is not None:
                        self._before_commit()
            except self._db_errors as error:
                raise DatabaseError(f"{self.url}: {self._explain(error)}") from error

    def _run(self, cur: Cursor, query: str, params: Sequence[Any] = ()) -> Cursor:
        cur.execute(self._sql(query), tuple(params))
        return cur

    def _ensure_schema(self) -> None:
        """Create the tables unless they exist and give the database its id unless it has one
        (databases made before ids existed); refuse a schema this version does not know. Safe
        when several processes open a new database at once."""
        with self._tx(write=False) as cur:
            version = self._schema_version(cur)
            identified = version is not None and self._database_id(cur) is not None
        if not identified:
            with self._tx(write=True) as cur:
                self._lock_schema(cur)
                version = self._schema_version(cur)
                if version is None:
                    self._create_schema(cur)
                    self._add_meta(cur, "schema_version", str(SCHEMA_VERSION))
                    version = self._schema_version(cur)
                if version == SCHEMA_VERSION:
                    self._add_meta(cur, "database_id", uuid.uuid4().hex)
        if version != SCHEMA_VERSION:
            raise GalleryError(
                f"{self.url}: the gallery has schema version {version}; this kao reads version "
                f"{SCHEMA_VERSION} (a newer kao made it?)"
            )

    def _add_meta(self, cur: Cursor, key: str, value: str) -> None:
        """Store `value` under `key` in kao_meta unless the key is there (then it is kept)."""
        self._run(
            cur,
            "INSERT INTO kao_meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
            (key, value),
        )

    def _database_id(self, cur: Cursor) -> str | None:
        row = self._run(cur, "SELECT value FROM kao_meta WHERE key = 'database_id'").fetchone()
        return None if row is None else str(row[0])

    def _schema_version(self, cur: Cursor) -> int | None:
        if not self._schema_exists(cur):
            return None
        row = self._run(cur, "SELECT value FROM kao_meta WHERE key = 'schema_version'").fetchone()
        if row is None:
            raise GalleryError(f"{self.url}: kao_meta has no schema_version: not a kao gallery")
        try:
            return int(row[0])
        except ValueError:
            raise GalleryError(f"{self.url}: bad schema_version {row[0]!r}") from None

    def _schema_statements(self) -> list[str]:
        types = self._types()
        return [statement.format(**types) for statement in _SCHEMA]

    def _collection(self, cur: Cursor, name: str, *, lock: bool = False) -> int:
        """The id of collection `name` (locked until commit when `lock`), or GalleryError."""
        found = self._find_collection(cur, name, lock=lock)
        if found is None:
            raise NotFoundError(f"{self.url}: there is no collection {name!r}")
        return found

    def _find_collection(self, cur: Cursor, name: str, *, lock: bool = False) -> int | None:
        query = "SELECT id FROM kao_collections WHERE name = ?"
        row = self._run(cur, query + (self._lock_clause if lock else ""), (name,)).fetchone()
        return None if row is None else int(row[0])

    def _create(self, cur: Cursor, name: str) -> bool:
        """Create collection `name` unless it exists; True when this call created it."""
        row = self._run(
            cur,
            "INSERT INTO kao_collections (name, revision, created) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO NOTHING RETURNING id",
            (name, self._next_revision(cur), self._time_to_db(_now())),
        ).fetchone()
        return row is not None

    def _change(self, cur: Cursor, name: str, *, create: bool = False) -> int:
        """Begin a change of collection `name` (made first when `create`): lock its row, so
        that writers of one collection take turns, and raise its revision. Returns its id."""
        collection = self._find_collection(cur, name, lock=True)
        if collection is None and create:
            self._create(cur, name)
            collection = self._find_collection(cur, name, lock=True)
        if collection is None:
            raise NotFoundError(f"{self.url}: there is no collection {name!r}")
        self._run(
            cur,
            "UPDATE kao_collections SET revision = ? WHERE id = ?",
            (self._next_revision(cur), collection),
        )
        return collection

    def _find_person(self, cur: Cursor, collection: int, person: str) -> int | None:
        row = self._run(
            cur,
            "SELECT id FROM kao_persons WHERE collection_id = ? AND name = ?",
            (collection, person),
        ).fetchone()
        return None if row is None else int(row[0])

    def _person(self, cur: Cursor, collection: int, cname: str, person: str) -> int:
        """The id of `person` in collection `cname` (whose id is `collection`), or GalleryError."""
        found = self._find_person(cur, collection, person)
        if found is None:
            raise NotFoundError(
                f"{self.url}: there is no person {person!r} in collection {cname!r}"
            )
        return found

    def _insert(
        self,
        cur: Cursor,
        collection: int,
        cname: str,
        items: Iterable[tuple[str, str, NewFace, datetime]],
        pin: str | None = None,
    ) -> list[int]:
        """Insert faces given as (where, person, face, created); `where` names each item in error
        messages. Persons are created as needed; dimensions are checked per model. With `pin`
        (the action: "enrol", "import"), the collection keeps to one model: a face of another
        model than its faces' (or than the first new one's) is a ConflictError. Everything is
        checked before anything is written; the rows are then written with `_insert_returning`
        (a few round trips for a whole batch on PostgreSQL)."""
        dims: dict[str, int] = {}
        pinned: set[str] = set()
        rows: list[tuple[str, str, NewFace, datetime]] = []
        for where, person, face, created in items:
            if pin and face.model not in pinned:
                other = next(iter(pinned), None) or self._other_model(cur, collection, face.model)
                if other is not None:
                    raise model_conflict(cname, other, face.model, pin, where)
                pinned.add(face.model)
            known = dims.get(face.model)
            if known is None:
                row = self._run(
                    cur,
                    "SELECT dim FROM kao_faces WHERE collection_id = ? AND model = ? LIMIT 1",
                    (collection, face.model),
                ).fetchone()
                known = dims[face.model] = face.dim if row is None else int(row[0])
            if face.dim != known:
                raise GalleryError(
                    f"{where}: collection {cname!r} holds {known}-dimensional embeddings of model "
                    f"{face.model!r}; this one has {face.dim} dimensions"
                )
            rows.append((where, person, face, created))
        persons = self._persons(cur, collection, {person for _, person, _, _ in rows})
        return self._insert_returning(
            cur,
            "INSERT INTO kao_faces (collection_id, person_id, model, dim, source, box_x1, "
            "box_y1, box_x2, box_y2, embedding, created) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            [
                (
                    collection,
                    persons[person],
                    face.model,
                    face.dim,
                    face.source,
                    *(face.box if face.box is not None else (None, None, None, None)),
                    embedding_bytes(face.embedding),
                    self._time_to_db(created),
                )
                for _, person, face, created in rows
            ],
        )

    def _persons(self, cur: Cursor, collection: int, names: set[str]) -> dict[str, int]:
        """The ids of the persons `names` of `collection`, created when new."""
        ordered = sorted(names)
        ids: dict[str, int] = {}
        for start in range(0, len(ordered), NAMES_PER_QUERY):
            chunk = ordered[start : start + NAMES_PER_QUERY]
            found = self._run(
                cur,
                f"SELECT name, id FROM kao_persons WHERE collection_id = ? AND name IN "
                f"({', '.join('?' * len(chunk))})",
                (collection, *chunk),
            ).fetchall()
            ids.update((str(name), int(id_)) for name, id_ in found)
        new = [name for name in ordered if name not in ids]
        created = self._insert_returning(
            cur,
            "INSERT INTO kao_persons (collection_id, name) VALUES (?, ?) RETURNING id",
            [(collection, name) for name in new],
        )
        ids.update(zip(new, created, strict=True))
        return ids

    def _insert_returning(
        self, cur: Cursor, query: str, rows: Sequence[Sequence[Any]]
    ) -> list[int]:
        """Run `query`, an INSERT ... RETURNING id, once per row of `rows`; the new ids in order.
        Backends whose driver can send the rows together override it."""
        return [int(self._run(cur, query, row).fetchone()[0]) for row in rows]

    def _record(self, row: Sequence[Any]) -> FaceRecord:
        face_id, person, model, source, x1, y1, x2, y2, blob, created = row
        box = None if x1 is None else (float(x1), float(y1), float(x2), float(y2))
        return FaceRecord(
            id=int(face_id),
            person=person,
            model=model,
            source=source,
            box=box,
            embedding=embedding_from_bytes(bytes(blob)),
            created=self._time_from_db(created),
        )

    # -- collections ---------------------------------------------------------------------------

    def create_collection(self, name: str) -> None:
        """Create an empty collection; GalleryError if one of that name exists."""
        name = check_name(name, "collection")
        with self._tx(write=True) as cur:
            if not self._create(cur, name):
                raise ConflictError(f"{self.url}: collection {name!r} already exists")

    def ensure_collection(self, name: str) -> None:
        """Create collection `name` unless it exists."""
        name = check_name(name, "collection")
        with self._tx(write=True) as cur:
            if self._find_collection(cur, name) is None:
                self._create(cur, name)

    def list_collections(self) -> list[CollectionInfo]:
        """Every collection with its numbers of persons and faces and its faces' model (the
        model of its oldest face), sorted by name."""
        with self._tx(write=False) as cur:
            rows = self._run(
                cur,
                "SELECT c.name, "
                "(SELECT COUNT(*) FROM kao_persons p WHERE p.collection_id = c.id), "
                "(SELECT COUNT(*) FROM kao_faces f WHERE f.collection_id = c.id), "
                "(SELECT f.model FROM kao_faces f WHERE f.collection_id = c.id "
                "ORDER BY f.id LIMIT 1) "
                "FROM kao_collections c",
            ).fetchall()
        infos = [
            CollectionInfo(name, int(persons), int(faces), model)
            for name, persons, faces, model in rows
        ]
        return sorted(infos, key=lambda info: info.name)

    def delete_collection(self, name: str) -> None:
        """Delete a collection with all its persons and faces; GalleryError if unknown."""
        name = check_name(name, "collection")
        with self._tx(write=True) as cur:
            collection = self._collection(cur, name, lock=True)
            self._run(cur, "DELETE FROM kao_collections WHERE id = ?", (collection,))

    def revision(self, collection: str) -> int:
        """The collection's revision: it rises with every change to the collection (faces
        added, deleted or imported, persons deleted or renamed) and stays put on reads. It never
        repeats within the database, even across a deleted and re-created collection; another
        database (or this one deleted and made again) counts from the start, so copies kept
        outside the database use `version`."""
        return self.version(collection)[1]

    def version(self, collection: str) -> tuple[str, int]:
        """(database id, revision of the collection), read together: one state of the
        collection, never named the same by another database or by this database deleted and
        made again (a byte-for-byte copy of the database file is the exception: it keeps the
        id). To keep a copy (an index) in sync, read it *before* `embeddings`: the data is then
        at least as new as the version."""
        name = check_name(collection, "collection")
        with self._tx(write=False) as cur:
            row = self._run(
                cur,
                "SELECT revision, (SELECT value FROM kao_meta WHERE key = 'database_id') "
                "FROM kao_collections WHERE name = ?",
                (name,),
            ).fetchone()
        if row is None:
            raise NotFoundError(f"{self.url}: there is no collection {name!r}")
        if row[1] is None:
            raise DatabaseError(f"{self.url}: kao_meta has no database_id")
        return str(row[1]), int(row[0])

    # -- persons and faces ---------------------------------------------------------------------

    def add_faces(
        self, collection: str, person: str, faces: Sequence[NewFace], *, pinned: bool = False
    ) -> list[int]:
        """Enrol `faces` (at least one) for `person` in `collection`, in one transaction: all
        are stored or none. The collection and the person are created when new. Every face of a
        model must have the dimension of that model's faces already in the collection; when
        `pinned`, every face must be of the collection's one model (ConflictError). Returns
        the new faces' ids, in order."""
        cname = check_name(collection, "collection")
        person = check_name(person, "person")
        if isinstance(faces, NewFace) or not isinstance(faces, Sequence):
            raise GalleryError(f"faces must be a sequence of NewFace, not {type(faces).__name__}")
        if not faces:
            raise GalleryError(f"no faces given for person {person!r}")
        for i, face in enumerate(faces):
            if not isinstance(face, NewFace):
                raise GalleryError(f"faces[{i}] is a {type(face).__name__}, not a NewFace")
        created = _now()
        with self._tx(write=True) as cur:
            collection_id = self._change(cur, cname, create=True)
            items = ((f"faces[{i}]", person, face, created) for i, face in enumerate(faces))
            return self._insert(cur, collection_id, cname, items, "enrol" if pinned else None)

    def add_batch(
        self, collection: str, faces: Sequence[tuple[str, NewFace]], *, pinned: bool = False
    ) -> list[int]:
        """Enrol many persons' faces, given as (person, face), in one transaction, as
        `add_faces` does for one person (errors name each face by its source). Returns the new
        faces' ids, in order; nothing is written for an empty `faces`."""
        cname = check_name(collection, "collection")
        if not faces:
            return []
        created = _now()
        items = [
            (face.source, check_name(person, "person"), face, created) for person, face in faces
        ]
        with self._tx(write=True) as cur:
            collection_id = self._change(cur, cname, create=True)
            return self._insert(cur, collection_id, cname, items, "enrol" if pinned else None)

    def sources(self, collection: str) -> set[str]:
        """The `source` of every face of `collection` (empty when it does not exist)."""
        cname = check_name(collection, "collection")
        with self._tx(write=False) as cur:
            collection_id = self._find_collection(cur, cname)
            if collection_id is None:
                return set()
            query = "SELECT DISTINCT source FROM kao_faces WHERE collection_id = ?"
            return {str(row[0]) for row in self._run(cur, query, (collection_id,)).fetchall()}

    def replace_faces(
        self, collection: str, revision: int, faces: Mapping[int, NewFace]
    ) -> dict[int, int]:
        """Give the faces of `collection` new contents in one transaction: each face id of
        `faces` becomes that `NewFace` (same person and creation time, a new id, so that every
        copy of an index sees the change), and every other face of the collection is deleted
        (a person left without faces too). The new faces must share one model. The collection
        must still be at `revision` (ConflictError otherwise: it changed since it was read, and
        nothing is written). Returns {old id: new id}."""
        cname = check_name(collection, "collection")
        with self._tx(write=True) as cur:
            collection_id = self._collection(cur, cname, lock=True)
            row = self._run(
                cur, "SELECT revision FROM kao_collections WHERE id = ?", (collection_id,)
            ).fetchone()
            if int(row[0]) != revision:
                raise ConflictError(
                    f"collection {cname!r} changed while its faces were re-computed; run again"
                )
            self._change(cur, cname)
            rows = self._run(
                cur,
                "SELECT f.id, p.name, f.created FROM kao_faces f JOIN kao_persons p "
                "ON p.id = f.person_id WHERE f.collection_id = ? ORDER BY f.id",
                (collection_id,),
            ).fetchall()
            stored = {int(face_id): (person, created) for face_id, person, created in rows}
            strangers = sorted(set(faces) - set(stored))
            if strangers:
                raise NotFoundError(
                    f"{self.url}: there is no face {strangers[0]} in collection {cname!r}"
                )
            self._run(cur, "DELETE FROM kao_faces WHERE collection_id = ?", (collection_id,))
            old_ids = sorted(faces)
            items = (
                (
                    f"face {old}",
                    stored[old][0],
                    faces[old],
                    self._time_from_db(stored[old][1]),
                )
                for old in old_ids
            )
            new_ids = self._insert(cur, collection_id, cname, items, "re-embed")
            self._run(
                cur,
                "DELETE FROM kao_persons WHERE collection_id = ? AND NOT EXISTS "
                "(SELECT 1 FROM kao_faces f WHERE f.person_id = kao_persons.id)",
                (collection_id,),
            )
        return dict(zip(old_ids, new_ids, strict=True))

    def persons(self, collection: str) -> list[PersonInfo]:
        """Every person of the collection with their number of faces, sorted by name."""
        cname = check_name(collection, "collection")
        with self._tx(write=False) as cur:
            collection_id = self._collection(cur, cname)
            rows = self._run(
                cur,
                "SELECT p.name, COUNT(f.id) FROM kao_persons p "
                "LEFT JOIN kao_faces f ON f.person_id = p.id "
                "WHERE p.collection_id = ? GROUP BY p.id, p.name",
                (collection_id,),
            ).fetchall()
        return sorted((PersonInfo(name, int(count)) for name, count in rows), key=_person_key)

    def faces(self, collection: str, person: str | None = None) -> list[FaceRecord]:
        """The faces of the collection, or of one person of it (GalleryError if unknown),
        sorted by id."""
        cname = check_name(collection, "collection")
        with self._tx(write=False) as cur:
            collection_id = self._collection(cur, cname)
            query = (
                f"SELECT {_FACE_COLUMNS} FROM kao_faces f JOIN kao_persons p "
                "ON p.id = f.person_id WHERE f.collection_id = ?"
            )
            params: list[Any] = [collection_id]
            if person is not None:
                params.append(self._person(cur, collection_id, cname, check_name(person, "person")))
                query += " AND f.person_id = ?"
            rows = self._run(cur, query + " ORDER BY f.id", params).fetchall()
        return [self._record(row) for row in rows]

    def delete_person(self, collection: str, person: str) -> int:
        """Delete a person and all their faces; returns how many faces went. GalleryError if the
        collection or the person is unknown."""
        cname = check_name(collection, "collection")
        person = check_name(person, "person")
        with self._tx(write=True) as cur:
            collection_id = self._change(cur, cname)
            person_id = self._person(cur, collection_id, cname, person)
            row = self._run(
                cur, "SELECT COUNT(*) FROM kao_faces WHERE person_id = ?", (person_id,)
            ).fetchone()
            self._run(cur, "DELETE FROM kao_persons WHERE id = ?", (person_id,))
        return int(row[0])

    def delete_face(self, collection: str, face_id: int) -> None:
        """Delete one face (GalleryError if the collection holds no face of that id); a person
        left without faces is deleted too."""
        cname = check_name(collection, "collection")
        if isinstance(face_id, bool) or not isinstance(face_id, (int, np.integer)):
            raise GalleryError(f"face id must be an integer, not {type(face_id).__name__}")
        with self._tx(write=True) as cur:
            collection_id = self._change(cur, cname)
            row = None
            if -(2**63) <= face_id < 2**63:  # beyond, no column could hold it
                row = self._run(
                    cur,
                    "DELETE FROM kao_faces WHERE id = ? AND collection_id = ? RETURNING person_id",
                    (int(face_id), collection_id),
                ).fetchone()
            if row is None:
                raise NotFoundError(
                    f"{self.url}: there is no face {face_id} in collection {cname!r}"
                )
            self._run(
                cur,
                "DELETE FROM kao_persons WHERE id = ? AND NOT EXISTS "
                "(SELECT 1 FROM kao_faces WHERE person_id = ?)",
                (row[0], row[0]),
            )

    def rename_person(self, collection: str, old: str, new: str) -> None:
        """Rename a person; GalleryError if `old` is unknown or `new` exists."""
        cname = check_name(collection, "collection")
        old = check_name(old, "person")
        new = check_name(new, "person")
        with self._tx(write=True) as cur:
            collection_id = self._change(cur, cname)
            person_id = self._person(cur, collection_id, cname, old)
            if self._find_person(cur, collection_id, new) is not None:
                raise ConflictError(
                    f"{self.url}: cannot rename {old!r}: person {new!r} exists in collection "
                    f"{cname!r}"
                )
            self._run(cur, "UPDATE kao_persons SET name = ? WHERE id = ?", (new, person_id))

    def collection_model(self, collection: str) -> str | None:
        """The model of the collection's oldest face: the one model of a collection enrolled
        through `FaceDatabase`; None when it has no face or does not exist."""
        cname = check_name(collection, "collection")
        with self._tx(write=False) as cur:
            row = self._run(
                cur,
                "SELECT f.model FROM kao_faces f JOIN kao_collections c "
                "ON c.id = f.collection_id WHERE c.name = ? ORDER BY f.id LIMIT 1",
                (cname,),
            ).fetchone()
        return None if row is None else str(row[0])

    def other_model(self, collection: str, model: str) -> str | None:
        """None when the collection has a face of `model`, no face, or does not exist; else the
        model of one of its faces: the one a collection pinned to its model holds."""
        cname = check_name(collection, "collection")
        model = check_name(model, "model")
        with self._tx(write=False) as cur:
            collection_id = self._find_collection(cur, cname)
            return None if collection_id is None else self._other_model(cur, collection_id, model)

    def _other_model(self, cur: Cursor, collection: int, model: str) -> str | None:
        """`other_model` in `cur`'s transaction: two single-row index look-ups, however many
        faces the collection holds."""
        query = "SELECT model FROM kao_faces WHERE collection_id = ?"
        if self._run(cur, query + " AND model = ? LIMIT 1", (collection, model)).fetchone():
            return None
        row = self._run(cur, query + " LIMIT 1", (collection,)).fetchone()
        return None if row is None else str(row[0])

    def embeddings(self, collection: str, model: str) -> tuple[np.ndarray, list[str], np.ndarray]:
        """The faces of the collection made by `model`, and only those, sorted by id.

        Returns:
            ids: int64 array of shape (N,), the face ids.
            persons: the N persons' names, in the same order.
            matrix: float32 array of shape (N, D), one L2-normalised embedding per row; (0, 0)
                when the collection has no face of `model`.
        """
        cname = check_name(collection, "collection")
        model = check_name(model, "model")
        with self._tx(write=False) as cur:
            collection_id = self._collection(cur, cname)
            rows = self._run(
                cur,
                "SELECT f.id, p.name, f.embedding, f.dim FROM kao_faces f JOIN kao_persons p "
                "ON p.id = f.person_id WHERE f.collection_id = ? AND f.model = ? ORDER BY f.id",
                (collection_id, model),
            ).fetchall()
        ids = np.array([row[0] for row in rows], dtype=np.int64)
        names = [row[1] for row in rows]
        if not rows:
            return ids, names, np.zeros((0, 0), dtype=np.float32)
        dim = int(rows[0][3])
        data = bytearray(b"".join(bytes(row[2]) for row in rows))
        matrix = np.frombuffer(data, dtype="<f4").reshape(len(rows), dim).astype(np.float32)
        return ids, names, matrix

    # -- export and import ---------------------------------------------------------------------

    def export(self, collection: str, path: str | os.PathLike[str]) -> int:
        """Write the collection's faces to `path` as JSON Lines (`kao.gallery.jsonl`), one face
        per line in id order: person, model, source, box, embedding as a list of floats that
        read back exactly, created. The file is written beside `path` and moved into place
        (os.replace), so `path` is the old file or the complete new one. Returns the number of
        faces."""
        return jsonl.write(Path(path), self.faces(collection))

    def import_(
        self, collection: str, path: str | os.PathLike[str], *, pinned: bool = False
    ) -> int:
        """Add the faces of an `export` file to `collection` (created when new; persons too), in
        one transaction: a malformed line raises GalleryError naming ``path:line`` and nothing
        is written (ConflictError for a face of another model, when `pinned`, as in
        `add_faces`). Faces get new ids and keep their `created` times. Blank lines are skipped.
        Returns the number of faces added."""
        cname = check_name(collection, "collection")
        now = _now()
        items = [
            (where, person, face, created or now)
            for where, person, face, created in jsonl.read(Path(path))
        ]
        if not items:
            return 0
        with self._tx(write=True) as cur:
            collection_id = self._change(cur, cname, create=True)
            self._insert(cur, collection_id, cname, items, "import" if pinned else None)
        return len(items)

    # -- life cycle ----------------------------------------------------------------------------

    def ping(self) -> None:
        """Check that the database answers (one trivial query); raises DatabaseError when it
        cannot be reached or fails, GalleryError when the gallery is closed."""
        with self._tx(write=False) as cur:
            self._run(cur, "SELECT 1").fetchone()

    def close(self) -> None:
        """Close the connection; later calls raise GalleryError. Closing twice is harmless."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._close()

    def __enter__(self) -> Gallery:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"


def model_conflict(
    collection: str, held: str, model: str, action: str, where: str = ""
) -> ConflictError:
    """The refusal to `action` ("enrol", "identify", "import") faces of `model` with a
    collection whose faces are of model `held`; `where` prefixes the message."""
    hint = (
        "import the file into another collection"
        if action == "import"
        else f"{action} with --model {held} (model={held} over HTTP)"
    )
    return ConflictError(
        f"{where + ': ' if where else ''}collection {collection!r} holds {held} embeddings, "
        f"not {model}; {hint}, or enrol the people again in another collection"
    )


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _person_key(info: PersonInfo) -> str:
    return info.person
