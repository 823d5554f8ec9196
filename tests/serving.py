"""A real `kao serve` process for the tests that need one (browser tests, several workers)."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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


def local_client(app: Any) -> Any:
    """FastAPI's TestClient for `app`, its requests sent to the loopback name 127.0.0.1 (the
    Host a loopback server answers to); use it as a context manager."""
    with warnings.catch_warnings():  # Starlette prefers httpx2 for its TestClient; httpx works
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    return TestClient(app, base_url="http://127.0.0.1")
