"""`open_gallery(url)`: the SQLite or PostgreSQL gallery a URL names.

This factory sits above both back-ends (`kao.gallery.sqlite`, `kao.gallery.postgres`), which
import only `kao.gallery.store` and `kao.gallery.urls`, so nothing imports in a circle. The
PostgreSQL back-end is imported only for a PostgreSQL URL: its driver is an optional extra."""

from __future__ import annotations

import os
from pathlib import Path

from kao.errors import GalleryError
from kao.extras import require
from kao.gallery.sqlite import SQLiteGallery
from kao.gallery.store import Gallery
from kao.gallery.urls import LIBPQ_KEYWORDS, URL_FORMS, redact_url


def open_gallery(url: str | os.PathLike[str]) -> Gallery:
    """Open (and create when new) a gallery.

    `url` is one of:
        - ``sqlite:///faces.db`` (relative) or ``sqlite:////srv/faces.db`` (absolute), as in
          SQLAlchemy, or a bare path (``faces.db``, a `Path`): an SQLite file, created on first
          use in a folder that must exist;
        - ``postgresql://user:password@host:port/database`` (or ``postgres://``), any libpq URL
          (e.g. ``?options=-csearch_path%3Dfaces`` for the tables in the schema "faces"), or a
          libpq keyword/value string (``host=db dbname=faces user=kao password=...``, naming at
          least one of host, hostaddr, port, dbname, user or service): PostgreSQL through
          psycopg 3. Anything that starts like ``word=`` is such a string, never a file name
          (write a file named so as ``sqlite:///word=...``).

    Raises GalleryError for any other form, a file that is not an SQLite database, or a server
    that cannot be reached (the message names host and port, never the password).
    """
    if isinstance(url, os.PathLike):
        url = os.fspath(url)
    if not isinstance(url, str):
        raise GalleryError(f"gallery URL must be a string or a path, not {type(url).__name__}")
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in ("postgresql", "postgres") or LIBPQ_KEYWORDS.match(url):
        require("postgres", "a PostgreSQL gallery", "psycopg", "psycopg_pool")
        from kao.gallery.postgres import PostgresGallery

        return PostgresGallery(url)
    if scheme == "sqlite" and url[len("sqlite://") :].startswith("/"):
        path = url[len("sqlite:///") :]
    elif scheme:
        raise GalleryError(f"unsupported gallery URL {redact_url(url)!r}; use one of: {URL_FORMS}")
    else:
        path = url
    if not path:
        raise GalleryError(f"gallery URL {url!r} names no file; use one of: {URL_FORMS}")
    return SQLiteGallery(Path(path))
