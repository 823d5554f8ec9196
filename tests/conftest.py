"""Shared test fixtures: where ../shared is, and real photos with known faces."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
WIDER = SHARED / "data" / "widerface_val_subset"
LFW = SHARED / "data" / "lfw" / "lfw-deepfunneled"
POSTGRES_ENV = "KAO_TEST_POSTGRES_URL"


def shared_file(relative: str) -> Path:
    """A file under ../shared, or skip the test when the data is not beside the checkout."""
    path = SHARED / relative
    if not path.exists():
        pytest.skip(f"{path} is not available")
    return path


def lfw_photo(person: str, number: int) -> Path:
    """LFW's photo `number` of `person` (e.g. "Colin_Powell", 40), or skip without the data."""
    return shared_file(f"data/lfw/lfw-deepfunneled/{person}/{person}_{number:04d}.jpg")


@pytest.fixture
def private_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Gallery indexes and converted models are saved under the model cache: keep the test's
    apart (use with `pytest.mark.usefixtures("private_cache")`)."""
    monkeypatch.setenv("KAO_CACHE", str(tmp_path / "cache" / "models"))


@pytest.fixture(scope="session")
def postgres_url() -> str:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        message = f"{POSTGRES_ENV} is not set (bash scripts/postgres.sh start prints a URL)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; CI must test PostgreSQL")
        pytest.skip(message)
    return url


def _with_schema(url: str, schema: str) -> str:
    """`url` whose connections put their tables in `schema` (libpq's options parameter)."""
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL for a new, empty gallery: an SQLite file that does not exist yet, or a fresh schema
    with no tables in the PostgreSQL test database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'gallery.db'}"
        return
    import psycopg

    base = request.getfixturevalue("postgres_url")
    schema = f"kao_test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(base, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    try:
        yield _with_schema(base, schema)
    finally:
        with psycopg.connect(base, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")


def needs_face_recognition() -> None:
    """Skip unless face_recognition 1.3 is installed (imported as kao imports it, so that the
    rest of the test run still refuses truncated images)."""
    from kao.errors import KaoError
    from kao.evaluation.baselines import import_face_recognition

    try:
        import_face_recognition()
    except KaoError as error:
        pytest.skip(str(error))
