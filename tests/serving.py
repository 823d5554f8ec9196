"""A real `kao serve` process for the tests that need one (browser tests, several workers)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from kao.evaluation.loadtest import Server


@contextmanager
def kao_serve(
    folder: Path, *options: str, db: str | None = None, env: dict[str, str] | None = None
) -> Iterator[str]:
    """A real `kao serve` (see `kao.evaluation.loadtest.Server`) with database `db` (default: a
    new SQLite file in `folder`) and extra command-line `options`, its log `folder`/serve.log;
    yields its base URL."""
    database = db or str(folder / "faces.db")
    with Server(database, folder / "serve.log", *options, env=env) as server:
        yield server.base
