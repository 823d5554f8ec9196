"""API keys for `kao serve`: created and revoked with `kao keys`, checked on every request.

A key is ``kao_`` followed by 43 URL-safe characters (32 random bytes). Only its sha256 is
stored, with a name, the key's first 12 characters (to recognise it in listings) and when it
was created and revoked. The store is a small SQLite file (default ``~/.config/kao/keys.db``,
see `kao.server.settings.default_keys_path`), created readable by its owner only; every
worker process reads it on each check, so a revoked key is refused at once everywhere."""

from __future__ import annotations

import hashlib
import os
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from kao.errors import KaoError
from kao.gallery.records import check_name

PREFIX = "kao_"
SHOWN = 12
"""Characters of a key kept in clear to recognise it ("kao_" and 8 more)."""

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS api_keys (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL,
        shown TEXT NOT NULL,
        sha256 TEXT NOT NULL UNIQUE,
        created TEXT NOT NULL,
        revoked TEXT
    )""",
    "CREATE UNIQUE INDEX IF NOT EXISTS api_keys_active_name ON api_keys (name) "
    "WHERE revoked IS NULL",
)


class KeyStoreError(KaoError):
    """A key could not be created, listed or revoked (the message says why)."""


@dataclass(frozen=True)
class KeyInfo:
    """A stored key, without the key: its name, first characters, and times (UTC)."""

    name: str
    shown: str
    created: datetime
    revoked: datetime | None

    def to_dict(self) -> dict[str, str | None]:
        """JSON form: name, key (the first characters, then "..."), created, revoked."""
        return {
            "name": self.name,
            "key": f"{self.shown}...",
            "created": self.created.isoformat(),
            "revoked": self.revoked.isoformat() if self.revoked else None,
        }


def hash_key(key: str) -> str:
    """The stored form of `key`: its sha256, hexadecimal."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


class KeyStore:
    """The API keys in the SQLite file at `path` (created, with its folder, on first write)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    @contextmanager
    def _connect(self, create: bool) -> Iterator[sqlite3.Connection]:
        if self.path.is_dir():
            raise KeyStoreError(f"{self.path}: is a folder, not an API-key file")
        if create and not self.path.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        try:
            with closing(sqlite3.connect(self.path, timeout=10.0)) as conn:
                with conn:
                    for statement in _SCHEMA:
                        conn.execute(statement)
                with conn:  # one transaction: commits at the end, rolls back on an error
                    yield conn
        except sqlite3.Error as error:
            raise KeyStoreError(f"{self.path}: cannot use the API-key file: {error}") from error

    def create(self, name: str) -> tuple[KeyInfo, str]:
        """A new key named `name` -> (its record, the key itself: shown this once only).
        Two active keys cannot share a name."""
        name = check_name(name, "key")
        key = PREFIX + secrets.token_urlsafe(32)
        created = datetime.now(timezone.utc)
        with self._connect(create=True) as conn:
            taken = conn.execute(
                "SELECT 1 FROM api_keys WHERE name = ? AND revoked IS NULL", (name,)
            ).fetchone()
            if taken:
                raise KeyStoreError(f"an active key is already named {name!r}; revoke it first")
            conn.execute(
                "INSERT INTO api_keys (name, shown, sha256, created) VALUES (?, ?, ?, ?)",
                (name, key[:SHOWN], hash_key(key), created.isoformat()),
            )
        return KeyInfo(name, key[:SHOWN], created, None), key

    def list(self) -> list[KeyInfo]:
        """Every key, active and revoked, oldest first."""
        if not self.path.exists():
            return []
        with self._connect(create=False) as conn:
            rows = conn.execute(
                "SELECT name, shown, created, revoked FROM api_keys ORDER BY id"
            ).fetchall()
        return [
            KeyInfo(
                name,
                shown,
                datetime.fromisoformat(created),
                datetime.fromisoformat(revoked) if revoked else None,
            )
            for name, shown, created, revoked in rows
        ]

    def active(self) -> int:
        """How many keys are not revoked."""
        return sum(info.revoked is None for info in self.list())

    def revoke(self, name: str) -> None:
        """Revoke the active key named `name`; KeyStoreError if there is none."""
        name = check_name(name, "key")
        if not self.path.exists():
            raise KeyStoreError(f"{self.path}: no keys have been created")
        with self._connect(create=False) as conn:
            changed = conn.execute(
                "UPDATE api_keys SET revoked = ? WHERE name = ? AND revoked IS NULL",
                (datetime.now(timezone.utc).isoformat(), name),
            ).rowcount
        if not changed:
            raise KeyStoreError(f"there is no active key named {name!r} in {self.path}")

    def check(self, key: str) -> str | None:
        """The name of the active key `key`, or None when it is unknown or revoked."""
        if not key.startswith(PREFIX) or not self.path.exists():
            return None
        with self._connect(create=False) as conn:
            row = conn.execute(
                "SELECT name FROM api_keys WHERE sha256 = ? AND revoked IS NULL",
                (hash_key(key),),
            ).fetchone()
        return row[0] if row else None
