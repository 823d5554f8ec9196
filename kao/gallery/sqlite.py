"""The SQLite dialect of the gallery: one file, WAL mode, writers take turns.

A new database file is created readable by its owner only (0600), and SQLite gives its -wal and
-shm files the same mode; an existing file keeps the mode it has.

Connections use WAL (readers never wait for the writer), a 30 s busy timeout (a writer waits for
another process's write to finish), foreign keys on, and ``BEGIN IMMEDIATE`` for writes (the
write lock is taken first, so two writers never deadlock). Revisions come from a counter in
kao_meta. Needs SQLite 3.35 or newer (``RETURNING``), which Python 3.10+ builds ship.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar

from kao.errors import GalleryError
from kao.files import create_private
from kao.gallery.store import Gallery

BUSY_TIMEOUT = 30.0
"""Seconds a writer waits for another connection's write lock."""

MIN_SQLITE = (3, 35, 0)


class SQLiteGallery(Gallery):
    """A gallery in an SQLite file (see `open_gallery`)."""

    _db_errors: ClassVar[tuple[type[BaseException], ...]] = (sqlite3.Error,)

    def __init__(self, path: Path) -> None:
        super().__init__(f"sqlite:///{path}")
        self.path = path
        if sqlite3.sqlite_version_info < MIN_SQLITE:
            raise GalleryError(
                f"{path}: SQLite {sqlite3.sqlite_version} is too old; kao needs 3.35 or newer"
            )
        if path.is_dir():
            raise GalleryError(f"{path}: is a folder, not an SQLite database file")
        if not path.parent.is_dir():
            raise GalleryError(f"{path}: the folder {path.parent} does not exist")
        try:
            if str(path) != ":memory:":  # SQLite's name for a database that has no file
                create_private(path)
            self._conn = sqlite3.connect(
                path, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
            )
        except OSError as error:
            raise GalleryError(f"{path}: cannot create: {error.strerror or error}") from error
        except sqlite3.Error as error:
            raise GalleryError(f"{path}: cannot open: {error}") from error
        try:
            self._configure()
            self._ensure_schema()
        except BaseException:
            self._conn.close()
            raise

    def _configure(self) -> None:
        try:
            self._conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT * 1000)}")
            self._conn.execute("PRAGMA foreign_keys = ON")
            self._set_wal()
        except sqlite3.DatabaseError as error:
            raise GalleryError(f"{self.path}: {self._explain(error)}") from error

    def _set_wal(self) -> None:
        """Switch to WAL (a setting stored in the file). The switch needs the database to
        itself, and SQLite does not always wait for that, so a busy database is retried."""
        deadline = time.monotonic() + BUSY_TIMEOUT
        while True:
            try:
                self._conn.execute("PRAGMA journal_mode = WAL").fetchone()
                return
            except sqlite3.OperationalError as error:
                busy = "locked" in str(error) or "busy" in str(error)
                if not busy or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def _explain(self, error: BaseException) -> str:
        message = str(error).strip()
        if "file is not a database" in message:
            return f"not an SQLite database ({message})"
        return message

    @contextmanager
    def _transaction(self, write: bool) -> Iterator[sqlite3.Cursor]:
        cur = self._conn.cursor()
        try:
            cur.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            yield cur
            cur.execute("COMMIT")
        except BaseException:
            if self._conn.in_transaction:
                with suppress(sqlite3.Error):  # the first error is the one to report
                    self._conn.execute("ROLLBACK")
            raise
        finally:
            cur.close()

    def _sql(self, query: str) -> str:
        return query

    def _types(self) -> dict[str, str]:
        return {
            "id": "INTEGER PRIMARY KEY AUTOINCREMENT",  # ids are never reused
            "time": "TEXT",  # ISO 8601, UTC
            "real": "REAL",
            "blob": "BLOB",
        }

    def _schema_exists(self, cur: Any) -> bool:
        row = cur.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'kao_meta'"
        ).fetchone()
        return row is not None

    def _lock_schema(self, cur: Any) -> None:
        """Nothing to do: BEGIN IMMEDIATE holds the write lock, so a second process waits, then
        finds the tables."""

    def _create_schema(self, cur: Any) -> None:
        for statement in self._schema_statements():
            cur.execute(statement)
        cur.execute("INSERT OR IGNORE INTO kao_meta (key, value) VALUES ('revision', '0')")

    def _next_revision(self, cur: Any) -> int:
        row = cur.execute(
            "UPDATE kao_meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'revision' "
            "RETURNING value"
        ).fetchone()
        if row is None:
            raise GalleryError(f"{self.url}: kao_meta has no revision counter")
        return int(row[0])

    def _time_to_db(self, value: datetime) -> str:
        return value.astimezone(timezone.utc).isoformat(timespec="microseconds")

    def _time_from_db(self, value: Any) -> datetime:
        return datetime.fromisoformat(value).astimezone(timezone.utc)

    def _close(self) -> None:
        self._conn.close()
