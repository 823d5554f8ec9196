"""The PostgreSQL dialect of the gallery, through psycopg 3.

Plain tables (embeddings in BYTEA) in the first schema of the connection's search_path. Writers
of one collection take turns on a row lock (``SELECT ... FOR UPDATE``) of its kao_collections
row; reads run in REPEATABLE READ snapshots. The tables are created under a transaction-scoped
advisory lock, so several processes may open a new database at once. Revisions come from the
sequence kao_revision.

Connections come from a small psycopg pool that checks each one before handing it out and
replaces a broken one, so a gallery keeps working after the server restarts or a connection
drops: the call that finds the server gone fails (DatabaseError, after waiting up to the
connect timeout for it to come back), the next ones reconnect. Each call is one transaction on
one connection; a write cut off before its commit was rolled back by the server.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any, ClassVar

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool

from kao.errors import GalleryError
from kao.gallery.store import Gallery
from kao.gallery.urls import redact_url

SERVER_KEYWORDS = frozenset({"host", "hostaddr", "port", "dbname", "user", "service"})
"""A keyword/value connection string must name at least one of these."""

CONNECT_TIMEOUT = 10
"""Seconds to wait for the server, unless the URL says otherwise (connect_timeout=...); also how
long a call waits for a connection, and how long the pool tries to replace a broken one before
it waits for the next call to try again."""

POOL_SIZE = 2
"""Connections a gallery keeps at most: calls take turns (see `Gallery`), so one is in use and
one may be on its way in to replace a broken one."""

SCHEMA_LOCK = 0x6B616F5F67616C  # "kao_gal": the advisory lock held while tables are created


class PostgresGallery(Gallery):
    """A gallery in a PostgreSQL database (see `open_gallery`)."""

    _lock_clause: ClassVar[str] = " FOR UPDATE"
    _db_errors: ClassVar[tuple[type[BaseException], ...]] = (psycopg.Error,)

    def __init__(self, url: str) -> None:
        super().__init__(redact_url(url))
        try:
            params = conninfo_to_dict(url)
        except psycopg.Error as error:
            reason = " ".join(str(error).split())
            raise GalleryError(
                f"bad PostgreSQL URL or connection string {self.url!r}: {reason} (a file name "
                "that contains '=' is written sqlite:///NAME)"
            ) from None
        if "://" not in url and not SERVER_KEYWORDS & params.keys():
            raise GalleryError(
                f"PostgreSQL connection string {self.url!r} names no server or database: give "
                f"at least one of {', '.join(sorted(SERVER_KEYWORDS))}"
            )
        self._password = str(params.get("password") or "")
        host = params.get("host") or "the local socket"
        port = params.get("port") or "5432"
        server = f"PostgreSQL server {host}:{port}"
        where = f"{server} (database {params.get('dbname') or '(default)'!r}, user " + (
            f"{params.get('user') or '(default)'!r})"
        )
        options: dict[str, Any] = {"autocommit": True}
        if "connect_timeout" not in params:
            options["connect_timeout"] = CONNECT_TIMEOUT
        try:  # one connection first, so that an unreachable server is reported with its reason
            psycopg.connect(url, **options).close()
        except psycopg.Error as error:
            raise GalleryError(f"cannot connect to {where}: {self._explain(error)}") from None
        timeout = _timeout(params)
        self._pool = ConnectionPool(
            url,
            kwargs=options,
            min_size=1,
            max_size=POOL_SIZE,
            open=False,
            check=ConnectionPool.check_connection,
            timeout=timeout,
            reconnect_timeout=timeout,
            num_workers=1,
            name="kao-gallery",
        )
        try:
            self._pool.open()
            self._ensure_schema()
        except BaseException:
            self._pool.close()
            raise

    def _explain(self, error: BaseException) -> str:
        message = " ".join(str(error).split())
        if self._password:
            message = message.replace(self._password, "***")
        return message

    @contextmanager
    def _transaction(self, write: bool) -> Iterator[psycopg.Cursor[Any]]:
        with self._pool.connection() as conn:
            # Read in a snapshot; both settings go into the BEGIN statement (no extra round trip).
            conn.isolation_level = None if write else psycopg.IsolationLevel.REPEATABLE_READ
            conn.read_only = None if write else True
            with conn.transaction(), conn.cursor() as cur:
                yield cur

    def _sql(self, query: str) -> str:
        return _placeholders(query)

    def _insert_returning(self, cur: Any, query: str, rows: Sequence[Sequence[Any]]) -> list[int]:
        """All `rows` in one `executemany`, which psycopg pipelines: a batch costs a few round
        trips to the server instead of one per row."""
        if not rows:
            return []
        cur.executemany(self._sql(query), rows, returning=True)
        ids = [int(cur.fetchone()[0])]
        while cur.nextset():
            ids.append(int(cur.fetchone()[0]))
        return ids

    def _types(self) -> dict[str, str]:
        return {
            "id": "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
            "time": "TIMESTAMPTZ",
            "real": "DOUBLE PRECISION",
            "blob": "BYTEA",
        }

    def _schema_exists(self, cur: Any) -> bool:
        # A query of the catalogue, not to_regclass(): that may answer from a cache that has not
        # yet seen the tables another process just committed.
        row = cur.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_tables "
            "WHERE schemaname = current_schema() AND tablename = 'kao_meta')"
        ).fetchone()
        return bool(row[0])

    def _lock_schema(self, cur: Any) -> None:
        # Concurrent CREATE TABLE IF NOT EXISTS can fail on PostgreSQL's catalogue; take turns.
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))

    def _create_schema(self, cur: Any) -> None:
        for statement in self._schema_statements():
            cur.execute(statement)
        cur.execute("CREATE SEQUENCE IF NOT EXISTS kao_revision")

    def _next_revision(self, cur: Any) -> int:
        return int(cur.execute("SELECT nextval('kao_revision')").fetchone()[0])

    def _time_to_db(self, value: datetime) -> datetime:
        return value

    def _time_from_db(self, value: Any) -> datetime:
        return value.astimezone(timezone.utc)

    def _close(self) -> None:
        self._pool.close()


def _timeout(params: dict[str, Any]) -> float:
    """Seconds to wait for a connection: the connection's connect_timeout when positive (libpq
    reads 0 or less as "for ever"), else CONNECT_TIMEOUT."""
    try:
        seconds = float(params.get("connect_timeout") or 0)
    except ValueError:
        seconds = 0.0
    return seconds if seconds > 0 else float(CONNECT_TIMEOUT)


@lru_cache(maxsize=256)
def _placeholders(query: str) -> str:
    """``?`` placeholders as psycopg's ``%s`` (kao's SQL has no literal ? or %)."""
    return query.replace("?", "%s")
