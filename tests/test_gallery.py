"""The face database (kao.gallery): every storage test runs on SQLite and on a real PostgreSQL.

PostgreSQL comes from $KAO_TEST_POSTGRES_URL (`bash scripts/postgres.sh start` prints one;
scripts/test.sh sets it). Without it the PostgreSQL cases are skipped, except under CI=true,
where they fail. Each PostgreSQL case gets a fresh schema, dropped afterwards.
"""

from __future__ import annotations

import glob
import json
import os
import queue
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kao.errors import DatabaseError, GalleryError, KaoError
from kao.gallery import (
    CollectionInfo,
    Gallery,
    NewFace,
    PersonInfo,
    open_gallery,
)
from tests.test_index import dead_pid

WORKER = Path(__file__).with_name("gallery_worker.py")
POSTGRES_SH = Path(__file__).parents[1] / "scripts" / "postgres.sh"
MODEL = "test_model"
DLIB = "dlib_resnet_v1"


def unit(seed: int, dim: int = 8) -> np.ndarray:
    """A random float32 unit vector of `dim` dimensions, the same for the same seed."""
    vector = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return vector / np.linalg.norm(vector)


def face(seed: int, dim: int = 8, model: str = MODEL, box: Any = (1, 2, 3, 4)) -> NewFace:
    return NewFace(unit(seed, dim), model, f"photos/{seed}.jpg", box)


# -- backends ----------------------------------------------------------------------------------


@pytest.fixture
def gallery(url: str) -> Iterator[Gallery]:
    with open_gallery(url) as opened:
        yield opened


def sql(url: str, query: str) -> list[tuple[Any, ...]]:
    """Run one statement on the gallery's database behind kao's back; its rows."""
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url[len("sqlite:///") :]) as conn:
            return conn.execute(query).fetchall()
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(query)
        return cursor.fetchall() if cursor.description else []


# -- storage -----------------------------------------------------------------------------------


def test_crud_round_trip(gallery: Gallery) -> None:
    gallery.create_collection("family")
    assert gallery.list_collections() == [CollectionInfo("family", 0, 0)]
    before = datetime.now(timezone.utc)
    alice = gallery.add_faces("family", "Alice", [face(1), face(2, box=None), face(3)])
    bob = gallery.add_faces("family", "Bob", [face(4), face(5)])
    assert alice[0] < alice[1] < alice[2] < bob[0] < bob[1]
    assert gallery.persons("family") == [PersonInfo("Alice", 3), PersonInfo("Bob", 2)]
    assert gallery.list_collections() == [CollectionInfo("family", 2, 5, MODEL)]

    records = gallery.faces("family")
    assert [r.id for r in records] == alice + bob
    assert [r.person for r in records] == ["Alice"] * 3 + ["Bob"] * 2
    for record, seed in zip(records, [1, 2, 3, 4, 5], strict=True):
        assert record.model == MODEL
        assert record.source == f"photos/{seed}.jpg"
        assert record.embedding.dtype == np.float32
        assert np.array_equal(record.embedding, unit(seed))
        assert before - timedelta(seconds=1) <= record.created <= datetime.now(timezone.utc)
        assert record.created.tzinfo is not None
    assert records[0].box == (1.0, 2.0, 3.0, 4.0)
    assert records[1].box is None
    assert [r.id for r in gallery.faces("family", "Bob")] == bob

    gallery.rename_person("family", "Bob", "Robert")
    assert [p.person for p in gallery.persons("family")] == ["Alice", "Robert"]
    assert [r.person for r in gallery.faces("family", "Robert")] == ["Robert", "Robert"]

    gallery.delete_face("family", alice[1])
    assert gallery.persons("family") == [PersonInfo("Alice", 2), PersonInfo("Robert", 2)]
    gallery.delete_face("family", bob[0])
    gallery.delete_face("family", bob[1])  # Robert's last face: Robert goes too
    assert gallery.persons("family") == [PersonInfo("Alice", 2)]

    assert gallery.delete_person("family", "Alice") == 2
    assert gallery.persons("family") == []
    assert gallery.faces("family") == []
    # ids are never reused
    assert gallery.add_faces("family", "Carol", [face(6)])[0] > bob[1]

    gallery.delete_collection("family")
    assert gallery.list_collections() == []


def test_collections(gallery: Gallery) -> None:
    gallery.create_collection("b")
    with pytest.raises(GalleryError, match="already exists"):
        gallery.create_collection("b")
    gallery.ensure_collection("b")
    gallery.ensure_collection("a")
    gallery.add_faces("c", "x", [face(1)])  # made on the fly
    gallery.add_faces("b", "y", [face(2), face(3)])
    assert gallery.list_collections() == [
        CollectionInfo("a", 0, 0),
        CollectionInfo("b", 1, 2, MODEL),
        CollectionInfo("c", 1, 1, MODEL),
    ]
    gallery.delete_collection("b")
    assert [c.name for c in gallery.list_collections()] == ["a", "c"]
    gallery.add_faces("b", "y", [face(4)])  # a new, independent "b"
    assert gallery.persons("b") == [PersonInfo("y", 1)]


def test_names_sort_and_normalise_the_same_everywhere(gallery: Gallery) -> None:
    for name in ["bob", "Zed", "älg", "Alice", "李"]:
        gallery.add_faces("c", name, [face(len(name))])
    assert [p.person for p in gallery.persons("c")] == ["Alice", "Zed", "bob", "älg", "李"]
    decomposed = unicodedata.normalize("NFD", "José")
    gallery.add_faces("c", decomposed, [face(9)])
    assert "José" in [p.person for p in gallery.persons("c")]
    assert len(gallery.faces("c", "José")) == 1
    assert len(gallery.faces("c", decomposed)) == 1


def test_embeddings_filter_by_model(gallery: Gallery) -> None:
    a1 = gallery.add_faces("c", "ann", [face(1, 4, "small"), face(2, 16, "big")])
    b1 = gallery.add_faces(
        "c", "ben", [face(3, 16, "big"), face(4, 4, "small"), face(5, 4, "small")]
    )
    ids, persons, matrix = gallery.embeddings("c", "small")
    assert ids.dtype == np.int64 and matrix.dtype == np.float32
    assert ids.tolist() == [a1[0], b1[1], b1[2]]
    assert persons == ["ann", "ben", "ben"]
    assert matrix.shape == (3, 4)
    assert np.array_equal(matrix, np.stack([unit(1, 4), unit(4, 4), unit(5, 4)]))
    ids, persons, matrix = gallery.embeddings("c", "big")
    assert ids.tolist() == [a1[1], b1[0]] and persons == ["ann", "ben"]
    assert np.array_equal(matrix, np.stack([unit(2, 16), unit(3, 16)]))
    matrix[0, 0] = 5.0  # a fresh array, not a view of the database
    assert [r.model for r in gallery.faces("c")] == ["small", "big", "big", "small", "small"]

    ids, persons, matrix = gallery.embeddings("c", "other")
    assert ids.shape == (0,) and persons == [] and matrix.shape == (0, 0)


def test_dimension_mismatch_is_refused_and_writes_nothing(gallery: Gallery) -> None:
    gallery.add_faces("c", "ann", [face(1, 8)])
    revision = gallery.revision("c")
    with pytest.raises(GalleryError, match=r"faces\[1\].*8-dimensional.*'test_model'.*4 dim"):
        gallery.add_faces("c", "new", [face(2, 8), face(3, 4)])
    with pytest.raises(GalleryError, match="8-dimensional"):
        gallery.add_faces("c", "ann", [face(4, 16)])
    with pytest.raises(GalleryError, match=r"faces\[1\].*4-dimensional"):
        gallery.add_faces("d", "ann", [face(5, 4), face(6, 8)])  # within one call
    assert gallery.persons("c") == [PersonInfo("ann", 1)]
    assert gallery.revision("c") == revision
    assert [c.name for c in gallery.list_collections()] == ["c"]
    gallery.add_faces("c", "ann", [face(7, 4, "other_model")])  # another model, another size
    assert gallery.persons("c") == [PersonInfo("ann", 2)]


BAD_NAMES = ["", " ", "a" * 201, "tab\there", "new\nline", "nul\x00", "\x7f", " a", "b ", "\ud800"]


def test_bad_names_are_refused(gallery: Gallery) -> None:
    gallery.add_faces("c", "ok", [face(1)])
    for name in BAD_NAMES:
        with pytest.raises(GalleryError, match="collection name"):
            gallery.create_collection(name)
        with pytest.raises(GalleryError, match="person name"):
            gallery.add_faces("c", name, [face(2)])
        with pytest.raises(GalleryError, match="person name"):
            gallery.rename_person("c", "ok", name)
        with pytest.raises(GalleryError, match="model name"):
            NewFace(unit(1), name, "x.jpg")
    with pytest.raises(GalleryError, match="must be a string"):
        gallery.persons(None)  # type: ignore[arg-type]
    assert gallery.list_collections() == [CollectionInfo("c", 1, 1, MODEL)]


HIDDEN = {
    "\u202e": "U+202E RIGHT-TO-LEFT OVERRIDE, a format character",
    "\u202a": "U+202A LEFT-TO-RIGHT EMBEDDING",
    "\u2066": "U+2066 LEFT-TO-RIGHT ISOLATE",
    "\u2069": "U+2069 POP DIRECTIONAL ISOLATE",
    "\u200e": "U+200E LEFT-TO-RIGHT MARK",
    "\u200f": "U+200F RIGHT-TO-LEFT MARK",
    "\u061c": "U+061C ARABIC LETTER MARK",
    "\u200b": "U+200B ZERO WIDTH SPACE",
    "\u200c": "U+200C ZERO WIDTH NON-JOINER",
    "\u200d": "U+200D ZERO WIDTH JOINER",
    "\u2060": "U+2060 WORD JOINER",
    "\ufeff": "U+FEFF ZERO WIDTH NO-BREAK SPACE",
    "\u00ad": "U+00AD SOFT HYPHEN",
    "\u2028": "U+2028 LINE SEPARATOR, a line separator",
    "\u3164": "U+3164 HANGUL FILLER, a character shown as nothing",
    "\x1b": "U+001B, a control character",
    "\x85": "U+0085, a control character",
}


@pytest.mark.parametrize("char", HIDDEN)
def test_invisible_and_reordering_characters_are_refused(gallery: Gallery, char: str) -> None:
    """Names that show as another name (an admin would read 'evil' for 'live', or two names
    that look alike) are refused in every kind of name, with the character named."""
    name = f"ev{char}il"
    message = re.escape(HIDDEN[char])
    with pytest.raises(GalleryError, match=f"collection name .*{message}"):
        gallery.create_collection(name)
    with pytest.raises(GalleryError, match=f"person name .*{message}"):
        gallery.add_faces("c", name, [face(1)])
    with pytest.raises(GalleryError, match=f"model name .*{message}"):
        face(1, model=name)
    assert gallery.list_collections() == []


def test_names_that_urls_cannot_reach_are_refused(gallery: Gallery) -> None:
    for name in ["a/b", "/", ".", "..", "a/"]:
        with pytest.raises(GalleryError, match=r"collection name .*'/' or is '\.' or '\.\.'"):
            gallery.create_collection(name)
        with pytest.raises(GalleryError, match="collection name"):
            gallery.add_faces(name, "ann", [face(1)])
    for name in ["/", ".", "..", "a/", "/a", "a//b", "a/./b", "a/../b", "../a"]:
        with pytest.raises(GalleryError, match=r"person name .*empty, '\.' or '\.\.' part"):
            gallery.add_faces("c", name, [face(1)])
    for name in ["a b", "a/b", "-x", ".x", "é", "a:b"]:
        with pytest.raises(GalleryError, match=r"model name .*letters, digits"):
            face(1, model=name)
    assert gallery.list_collections() == []
    ids = gallery.add_faces("c", "AC/DC", [face(1, model="Model-2.1_x")])
    assert gallery.faces("c", "AC/DC")[0].id == ids[0]
    assert [c.name for c in gallery.list_collections()] == ["c"]


def test_good_names(gallery: Gallery) -> None:
    names = ["a" * 200, "Zoë Ørsted", "山田 太郎", "O'Brien-Smith (2)", "x"]
    for i, name in enumerate(names):
        gallery.add_faces(name, name, [face(i)])
    assert sorted(c.name for c in gallery.list_collections()) == sorted(names)
    assert all(gallery.persons(name) == [PersonInfo(name, 1)] for name in names)


@pytest.mark.parametrize(
    ("embedding", "message"),
    [
        (unit(1).astype(np.float64), "float32"),
        (unit(1).reshape(1, 8), "shape"),
        (np.zeros(0, np.float32), "shape"),
        (np.array([np.nan, 1, 0, 0], np.float32), "NaN"),
        (np.array([np.inf, 0, 0, 0], np.float32), "infinite"),
        (unit(1) * 2, "not L2-normalised"),
        (np.zeros(8, np.float32), "not L2-normalised"),
        (unit(1).tolist(), "numpy float32 array"),
    ],
)
def test_bad_embeddings_are_refused(embedding: Any, message: str) -> None:
    with pytest.raises(GalleryError, match=message):
        NewFace(embedding, MODEL, "x.jpg")


@pytest.mark.parametrize("box", [(1, 2, 3), (1, 2, 3, float("nan")), (3, 0, 1, 5), "abcd", 7])
def test_bad_boxes_and_sources_are_refused(box: Any) -> None:
    with pytest.raises(GalleryError, match="box"):
        NewFace(unit(1), MODEL, "x.jpg", box)
    with pytest.raises(GalleryError, match="source"):
        NewFace(unit(1), MODEL, "nul\x00.jpg")
    assert NewFace(unit(1), MODEL, "x.jpg", np.array([1, 2, 3, 4], np.float32)).box == (1, 2, 3, 4)
    assert issubclass(GalleryError, KaoError)


def test_bad_face_lists_are_refused(gallery: Gallery) -> None:
    with pytest.raises(GalleryError, match="no faces"):
        gallery.add_faces("c", "ann", [])
    with pytest.raises(GalleryError, match="sequence of NewFace"):
        gallery.add_faces("c", "ann", face(1))  # type: ignore[arg-type]
    with pytest.raises(GalleryError, match=r"faces\[1\] is a dict"):
        gallery.add_faces("c", "ann", [face(1), {"embedding": unit(2)}])  # type: ignore[list-item]
    assert gallery.list_collections() == []


def test_revision_rises_on_every_change_and_only_then(gallery: Gallery, tmp_path: Path) -> None:
    seen: list[int] = []

    def changed() -> None:
        now = gallery.revision("c")
        assert now > seen[-1]
        seen.append(now)

    def unchanged() -> None:
        assert gallery.revision("c") == seen[-1]

    gallery.create_collection("c")
    seen.append(gallery.revision("c"))
    gallery.add_faces("c", "ann", [face(1), face(2)])
    changed()
    ids = gallery.add_faces("c", "ben", [face(3)])
    changed()
    gallery.persons("c"), gallery.faces("c"), gallery.faces("c", "ann")
    gallery.embeddings("c", MODEL), gallery.list_collections(), gallery.revision("c")
    gallery.export("c", tmp_path / "c.jsonl")
    gallery.ensure_collection("c")
    unchanged()
    gallery.add_faces("other", "x", [face(9)])  # another collection
    unchanged()
    gallery.rename_person("c", "ben", "benjamin")
    changed()
    gallery.delete_face("c", ids[0])
    changed()
    gallery.delete_person("c", "ann")
    changed()
    gallery.import_("c", tmp_path / "c.jsonl")
    changed()
    for failing in (
        lambda: gallery.create_collection("c"),
        lambda: gallery.delete_person("c", "nobody"),
        lambda: gallery.delete_face("c", ids[0]),
        lambda: gallery.rename_person("c", "ann", "ben"),
        lambda: gallery.add_faces("c", "x", [face(1, dim=3)]),
    ):
        with pytest.raises(GalleryError):
            failing()
        unchanged()
    gallery.delete_collection("c")
    with pytest.raises(GalleryError, match="no collection 'c'"):
        gallery.revision("c")
    gallery.create_collection("c")
    changed()  # never repeats, even for a collection made again


def test_export_import_round_trip(gallery: Gallery, tmp_path: Path) -> None:
    tricky = unit(7, 64)
    tricky[:4] = [1e-40, -0.0, 1e-7, np.float32(1) / 3]  # a subnormal, a negative zero, ...
    tricky /= np.linalg.norm(tricky)
    faces = [
        NewFace(unit(1, 64), "big", "a.jpg", (0.5, 1.25, 100.0, 200.75)),
        NewFace(tricky, "big", "ünïcode/ファイル.jpg", None),
    ]
    gallery.add_faces("src", "Ann", faces)
    gallery.add_faces("src", "Ben", [face(2, 8, "small"), face(3, 64, "big")])
    path = tmp_path / "out" / "src.jsonl"
    path.parent.mkdir()
    path.write_text("old contents\n")
    assert gallery.export("src", path) == 4
    assert sorted(os.listdir(path.parent)) == ["src.jsonl"]  # no temporary file left
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 4
    first = json.loads(lines[0])
    assert set(first) == {"person", "model", "source", "box", "embedding", "created"}
    assert first["person"] == "Ann" and first["box"] == [0.5, 1.25, 100.0, 200.75]

    assert gallery.import_("dst", path) == 4
    old, new = gallery.faces("src"), gallery.faces("dst")
    assert len(new) == 4
    for a, b in zip(old, new, strict=True):
        assert (a.person, a.model, a.source, a.box, a.created) == (
            b.person,
            b.model,
            b.source,
            b.box,
            b.created,
        )
        assert a.embedding.tobytes() == b.embedding.tobytes()  # bit for bit
        assert a.id != b.id
    assert gallery.persons("dst") == gallery.persons("src")
    assert gallery.import_("dst", path) == 4  # importing adds
    assert gallery.persons("dst") == [PersonInfo("Ann", 4), PersonInfo("Ben", 4)]

    empty = tmp_path / "empty.jsonl"
    gallery.create_collection("none")
    assert gallery.export("none", empty) == 0 and empty.read_text() == ""
    with pytest.raises(GalleryError, match="does not exist"):
        gallery.export("src", tmp_path / "missing" / "x.jsonl")


def test_files_are_private(tmp_path: Path) -> None:
    """Faces are personal data: the database, its -wal and -shm files and exports are 0600
    whatever the umask lets through; part files of killed exports are cleaned up."""
    previous = os.umask(0o022)
    try:
        path = tmp_path / "faces.db"
        with open_gallery(path) as gallery:
            gallery.add_faces("c", "ann", [face(1)])
            stale = tmp_path / f".c.jsonl.{dead_pid()}.0a1b2c.part"
            live = tmp_path / f".c.jsonl.{os.getppid()}.0a1b2c.part"
            for part in (stale, live):
                part.write_text("half an export")
            gallery.export("c", tmp_path / "c.jsonl")
            modes = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()}
    finally:
        os.umask(previous)
    assert modes == {
        "faces.db": 0o600,
        "faces.db-wal": 0o600,
        "faces.db-shm": 0o600,
        "c.jsonl": 0o600,
        live.name: 0o644,  # another writer's, still running: kept
    }


GOOD = json.dumps({"person": "p", "model": MODEL, "source": "s", "embedding": unit(1).tolist()})
MALFORMED = [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "JSON object"),
    (json.dumps({"person": "p", "model": MODEL}), "missing embedding"),
    (GOOD[:-1] + ', "colour": 1}', "unknown key"),
    (GOOD.replace('"p"', '""'), "person name"),
    (json.dumps({"person": "p", "model": MODEL, "embedding": [1, 0, 0, 0]}), "8-dimensional"),
    (json.dumps({"person": "p", "model": MODEL, "embedding": [0.5, 0.5]}), "normalised"),
    (json.dumps({"person": "p", "model": MODEL, "embedding": ["1"]}), "list of numbers"),
    (json.dumps({"person": "p", "model": MODEL, "embedding": [10**400]}), "too large"),
    (GOOD[:-1] + ', "box": [1, 2]}', "box"),
    (GOOD[:-1] + ', "box": "1234"}', "box"),
    (GOOD[:-1] + ', "created": "yesterday"}', "ISO 8601"),
    # what a hostile file holds: numbers too long to convert, impossible dates, deep nesting
    (GOOD.replace("[", "[" + "1" * 5000 + ", ", 1), "too large for float32"),
    (GOOD[:-1] + ', "box": [1, 2, 3, ' + "9" * 5000 + "]}", "box must be 4 finite"),
    (GOOD.replace("[", "[NaN, ", 1), "NaN or infinity"),
    (GOOD[:-1] + ', "created": "99999-01-01T00:00:00"}', "ISO 8601"),
    (GOOD[:-1] + ', "created": "0000-01-01"}', "years 1 to 9999"),
    (GOOD[:-1] + ', "created": "9999-12-31T23:59:59-01:00"}', "years 1 to 9999"),
    (GOOD[:-1] + ', "created": "0001-01-01T00:00:00+01:00"}', "years 1 to 9999"),
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ('{"person": ' * 100_000 + "1" + "}" * 100_000, "nested too deeply"),
    ("\x00" * 100, "not valid JSON"),
]


def test_malformed_import_writes_nothing(gallery: Gallery, tmp_path: Path) -> None:
    gallery.add_faces("c", "old", [face(1)])
    revision = gallery.revision("c")
    path = tmp_path / "in.jsonl"
    for bad, message in MALFORMED:
        path.write_text(f"{GOOD}\n\n{bad}\n{GOOD}\n", encoding="utf-8")
        for collection in ("c", "new"):
            with pytest.raises(GalleryError, match=rf"in\.jsonl:3: .*{message}"):
                gallery.import_(collection, path)
    assert gallery.persons("c") == [PersonInfo("old", 1)]
    assert gallery.revision("c") == revision
    assert [c.name for c in gallery.list_collections()] == ["c"]
    path.write_text(f"{GOOD}\n\n{GOOD}\n", encoding="utf-8")
    assert gallery.import_("new", path) == 2


def test_known_models_must_have_their_dimension(gallery: Gallery, tmp_path: Path) -> None:
    """An import of 64-d "dlib_resnet_v1" vectors would make every real (128-d) enrolment of the
    collection fail afterwards: it is refused, and so is such a face given to add_faces."""
    poisoned = tmp_path / "poisoned.jsonl"
    line = {"person": "p", "model": DLIB, "source": "s", "embedding": unit(1, 64).tolist()}
    poisoned.write_text(json.dumps(line) + "\n", encoding="utf-8")
    with pytest.raises(GalleryError, match=r"poisoned\.jsonl:1: .*'dlib_resnet_v1'.*128-dim.*64"):
        gallery.import_("c", poisoned)
    with pytest.raises(GalleryError, match=r"128-dimensional.*64 values"):
        gallery.add_faces("c", "p", [face(1, 64, DLIB)])
    assert gallery.list_collections() == []
    gallery.add_faces("c", "real", [face(2, 128, DLIB)])
    assert gallery.embeddings("c", DLIB)[2].shape == (1, 128)


def test_import_errors(gallery: Gallery, tmp_path: Path) -> None:
    with pytest.raises(GalleryError, match="cannot read"):
        gallery.import_("c", tmp_path / "missing.jsonl")
    binary = tmp_path / "binary.jsonl"
    binary.write_bytes(GOOD.encode() + b"\n\xff\xfe\x00garbage")
    with pytest.raises(GalleryError, match=r"binary\.jsonl:2: not UTF-8"):
        gallery.import_("c", binary)
    endless = tmp_path / "endless.jsonl"  # one line of 3 MiB, as /dev/zero would give
    endless.write_bytes(GOOD.encode() + b"\n" + b"\x00" * (3 << 20))
    with pytest.raises(GalleryError, match=r"endless\.jsonl:2: line longer than 2097152 bytes"):
        gallery.import_("c", endless)
    with pytest.raises(GalleryError, match="/dev/zero: not a regular file"):
        gallery.import_("c", "/dev/zero")
    (tmp_path / "folder.jsonl").mkdir()
    with pytest.raises(GalleryError, match=r"folder\.jsonl: a folder"):
        gallery.import_("c", tmp_path / "folder.jsonl")
    assert gallery.list_collections() == []


def test_cli_import_refuses_a_fifo_without_waiting(tmp_path: Path) -> None:
    """A FIFO with no writer used to hang `kao db import` forever."""
    fifo = tmp_path / "faces.jsonl"
    os.mkfifo(fifo)
    db = tmp_path / "faces.db"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "kao",
            "db",
            "import",
            "--db",
            str(db),
            "--collection",
            "c",
            str(fifo),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.strip().endswith(
        "faces.jsonl: not a regular file (an export file is needed)"
    )
    assert "Traceback" not in done.stderr


def test_unknowns_are_errors(gallery: Gallery, tmp_path: Path) -> None:
    ids = gallery.add_faces("c", "ann", [face(1)])
    other = gallery.add_faces("d", "ann", [face(2)])
    calls = {
        "no collection 'x'": [
            lambda: gallery.persons("x"),
            lambda: gallery.faces("x"),
            lambda: gallery.delete_collection("x"),
            lambda: gallery.delete_person("x", "ann"),
            lambda: gallery.delete_face("x", ids[0]),
            lambda: gallery.rename_person("x", "ann", "bob"),
            lambda: gallery.embeddings("x", MODEL),
            lambda: gallery.revision("x"),
            lambda: gallery.export("x", tmp_path / "x.jsonl"),
        ],
        "no person 'bob'": [
            lambda: gallery.faces("c", "bob"),
            lambda: gallery.delete_person("c", "bob"),
            lambda: gallery.rename_person("c", "bob", "carl"),
        ],
        "no face": [
            lambda: gallery.delete_face("c", 10_000),
            lambda: gallery.delete_face("c", 2**70),
            lambda: gallery.delete_face("c", other[0]),  # a face of another collection
        ],
        "person 'ann' exists": [lambda: gallery.rename_person("c", "ann", "ann")],
    }
    for message, functions in calls.items():
        for function in functions:
            with pytest.raises(GalleryError, match=message):
                function()
    assert [c.faces for c in gallery.list_collections()] == [1, 1]
    assert not (tmp_path / "x.jsonl").exists()


def test_newer_schema_is_refused(url: str) -> None:
    open_gallery(url).close()
    sql(url, "UPDATE kao_meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(GalleryError, match="schema version 99"):
        open_gallery(url)


def test_every_database_has_its_own_id(url: str, tmp_path: Path) -> None:
    with open_gallery(url) as gallery:
        gallery.create_collection("c")
        first = gallery.version("c")
    assert len(first[0]) == 32 and first[1] == gallery_revision(url)
    with open_gallery(url) as gallery:
        assert gallery.version("c") == first
    sql(url, "DELETE FROM kao_meta WHERE key = 'database_id'")  # made before ids existed
    with open_gallery(url) as gallery:
        given = gallery.version("c")
    assert given[0] != first[0] and given[1] == first[1]
    with open_gallery(url) as gallery:
        assert gallery.version("c") == given
    with open_gallery(tmp_path / "other.db") as other:
        other.create_collection("c")
        assert other.version("c")[0] not in (first[0], given[0])


def gallery_revision(url: str) -> int:
    """Collection "c"'s revision, read behind kao's back."""
    return int(sql(url, "SELECT revision FROM kao_collections WHERE name = 'c'")[0][0])


def test_closed_gallery_and_context_manager(url: str) -> None:
    with open_gallery(url) as gallery:
        gallery.add_faces("c", "ann", [face(1)])
        gallery.ping()
    with pytest.raises(GalleryError, match="closed"):
        gallery.persons("c")
    with pytest.raises(GalleryError, match="closed"):
        gallery.ping()
    gallery.close()  # twice is harmless
    with open_gallery(url) as again:  # what was committed is there
        assert again.persons("c") == [PersonInfo("ann", 1)]


def test_threads_share_a_gallery(gallery: Gallery) -> None:
    def work(k: int) -> None:
        for i in range(10):
            gallery.add_faces("c", f"t{k}", [face(k * 100 + i)])
            gallery.persons("c")

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert gallery.persons("c") == [PersonInfo(f"t{k}", 10) for k in range(4)]


# -- opening -----------------------------------------------------------------------------------


def test_open_sqlite_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for form in [
        "bare.db",
        tmp_path / "path.db",
        "sqlite:///relative.db",
        f"sqlite:///{tmp_path}/abs.db",
    ]:
        with open_gallery(form) as gallery:
            gallery.add_faces("c", "ann", [face(1)])
    assert sorted(p.name for p in tmp_path.glob("*.db")) == [
        "abs.db",
        "bare.db",
        "path.db",
        "relative.db",
    ]
    with sqlite3.connect(tmp_path / "bare.db") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT value FROM kao_meta WHERE key = 'schema_version'").fetchone()
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_sqlite_errors(tmp_path: Path) -> None:
    with pytest.raises(GalleryError, match=r"folder .*nowhere does not exist"):
        open_gallery(tmp_path / "nowhere" / "faces.db")
    assert not (tmp_path / "nowhere").exists()
    with pytest.raises(GalleryError, match="is a folder"):
        open_gallery(tmp_path)
    text = tmp_path / "notes.db"
    text.write_text("these are not the tables you are looking for\n" * 100)
    with pytest.raises(GalleryError, match=r"notes\.db.*not an SQLite database"):
        open_gallery(text)
    assert text.read_text().startswith("these are not")  # left alone


@pytest.mark.parametrize(
    "url", ["mysql://root@localhost/faces", "sqlite://host/faces.db", "http://x", "sqlite:///"]
)
def test_unsupported_urls(url: str) -> None:
    with pytest.raises(GalleryError, match="sqlite:///") as caught:
        open_gallery(url)
    assert "postgresql://" in str(caught.value)


def test_unreachable_postgres_names_server_not_password() -> None:
    url = "postgresql://kao:pa55-secret@127.0.0.1:1/faces?connect_timeout=5"
    with pytest.raises(GalleryError) as caught:
        open_gallery(url)
    message = str(caught.value)
    assert "127.0.0.1:1" in message and "faces" in message and "kao" in message
    assert "pa55-secret" not in message
    with pytest.raises(GalleryError, match="postgres://kao:\\*\\*\\*@"):
        open_gallery("postgres://kao:pa55-secret@127.0.0.1:1/faces?connect_timeout=5&bad=1")


def test_libpq_keyword_strings_open_postgresql(url: str) -> None:
    if url.startswith("sqlite:///"):
        pytest.skip("PostgreSQL only")
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    keywords = make_conninfo(**conninfo_to_dict(url), password="pa55 secret")
    assert keywords.startswith("host=") or "dbname=" in keywords
    with open_gallery(keywords) as gallery:
        gallery.add_faces("c", "ann", [face(1)])
        assert "pa55" not in gallery.url and "pa55" not in repr(gallery)
        assert "password=***" in gallery.url
    with open_gallery(url) as gallery:
        assert gallery.persons("c") == [PersonInfo("ann", 1)]


def test_libpq_keyword_strings_are_never_file_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """They used to create an SQLite file whose name held the password."""
    monkeypatch.chdir(tmp_path)
    for keywords in [
        "host=127.0.0.1 port=1 dbname=faces user=kao password=pa55-secret connect_timeout=5",
        "host = 127.0.0.1 port=1 password = 'pa55 secret' connect_timeout=5",
    ]:
        with pytest.raises(GalleryError, match=r"cannot connect to .*127\.0\.0\.1:1") as caught:
            open_gallery(keywords)
        assert "pa55" not in str(caught.value)
    with pytest.raises(GalleryError, match="names no server or database"):
        open_gallery("sslmode=disable password=pa55-secret")
    with pytest.raises(GalleryError, match=r"invalid connection option.*sqlite:///NAME"):
        open_gallery("faces=1.db")
    assert list(tmp_path.iterdir()) == []
    with open_gallery("sqlite:///faces=1.db") as gallery:  # the way to name such a file
        gallery.create_collection("c")
    assert [p.name for p in tmp_path.iterdir()] == ["faces=1.db"]


@pytest.fixture
def own_postgres(postgres_url: str) -> Iterator[tuple[str, Callable[[str], None]]]:
    """A PostgreSQL server of this test's own, made by scripts/postgres.sh on a free port, so
    that stopping and restarting it disturbs no other test -> (its URL, a function that runs
    postgres.sh with an action on it). Stopped and deleted at the end, however the test ends."""
    if not glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"):
        pytest.skip("no PostgreSQL server installed here to start and restart")
    base = Path(tempfile.mkdtemp(prefix="kao-restart-"))
    base.chmod(0o755)  # the server may run as the postgres user
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "KAO_PG_PORT": str(port), "KAO_PG_DIR": str(base / "pg")}

    def postgres(action: str) -> str:
        done = subprocess.run(
            ["bash", str(POSTGRES_SH), action], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    url = postgres("start")
    try:
        yield f"{url}?connect_timeout=2", postgres
    finally:
        postgres("stop")
        shutil.rmtree(base, ignore_errors=True)


def test_a_gallery_reconnects_after_the_server_restarts(
    own_postgres: tuple[str, Callable[[str], None]],
) -> None:
    url, postgres = own_postgres
    with open_gallery(url) as gallery:
        gallery.add_faces("c", "ann", [face(1)])
        postgres("restart")  # every connection is cut
        gallery.ping()
        assert gallery.persons("c") == [PersonInfo("ann", 1)]
        gallery.add_faces("c", "ben", [face(2)])

        gallery._before_commit = lambda: postgres("restart")  # cut off right before COMMIT
        with pytest.raises(DatabaseError, match=r"127\.0\.0\.1"):
            gallery.add_faces("c", "cut", [face(3), face(4)])
        gallery._before_commit = None
        assert gallery.persons("c") == [PersonInfo("ann", 1), PersonInfo("ben", 1)]

        postgres("stop")  # down for a while: calls fail, /health can tell
        started = time.monotonic()
        with pytest.raises(DatabaseError):
            gallery.ping()
        assert time.monotonic() - started < 10
        postgres("start")
        gallery.ping()
        assert [p.person for p in gallery.persons("c")] == ["ann", "ben"]


# -- several processes -------------------------------------------------------------------------


def _worker(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_concurrent_processes_lose_nothing(url: str) -> None:
    """Four processes open the same new database at once and enrol 50 x 2 faces each."""
    workers = [_worker("enrol", url, "crowd", str(k), "50") for k in range(4)]
    ids: list[int] = []
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        ids += json.loads(out)
    assert len(ids) == len(set(ids)) == 400
    with open_gallery(url) as gallery:
        assert sorted(r.id for r in gallery.faces("crowd")) == sorted(ids)
        assert gallery.persons("crowd") == [
            PersonInfo(f"w{k}-{i}", 20) for k in range(4) for i in range(5)
        ]
        assert gallery.list_collections() == [CollectionInfo("crowd", 20, 400, "test_model")]
        assert gallery.embeddings("crowd", "test_model")[2].shape == (400, 8)


def _lines(process: subprocess.Popen[str]) -> queue.Queue[str]:
    """The process's stdout lines, as they come."""
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put("")

    threading.Thread(target=read, daemon=True).start()
    return lines


def test_writer_killed_inside_a_transaction_leaves_a_consistent_database(url: str) -> None:
    worker = _worker("hang", url, "kill")
    try:
        lines = _lines(worker)
        first = lines.get(timeout=60)
        assert first, worker.stderr.read() if worker.stderr else ""
        committed = json.loads(first)
        assert lines.get(timeout=60).strip() == "ready"  # paused right before COMMIT
        with open_gallery(url) as gallery:
            assert [r.id for r in gallery.faces("kill")] == committed  # nothing uncommitted
            revision = gallery.revision("kill")
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert worker.returncode == -signal.SIGKILL

    with open_gallery(url) as gallery:
        assert [r.id for r in gallery.faces("kill")] == committed
        assert gallery.persons("kill") == [PersonInfo("before", 3)]
        assert gallery.revision("kill") == revision
        gallery.add_faces("kill", "after", [face(1), face(2)])  # writable: no lock left behind
        assert gallery.persons("kill") == [PersonInfo("after", 2), PersonInfo("before", 3)]
    if url.startswith("sqlite:///"):
        assert sql(url, "PRAGMA integrity_check") == [("ok",)]
        assert sql(url, "PRAGMA foreign_key_check") == []
