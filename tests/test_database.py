"""Enrolment and identification on real photos, on SQLite and PostgreSQL, library and CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kao.cli import main
from kao.errors import ImageError
from kao.face import Face
from kao.gallery import NewFace, open_gallery
from kao.gallery.database import FaceDatabase
from kao.recognition import NoFaceError, default_embedder
from kao.recognition.embedder import DEFAULT_MODEL
from tests.conftest import lfw_photo as photo

KNOWN = ("Abdoulaye_Wade", "Adam_Sandler", "Alan_Greenspan")
STRANGER = "Aaron_Peirsol"


pytestmark = pytest.mark.usefixtures("private_cache")


@pytest.fixture
def database(url: str) -> Iterator[FaceDatabase]:
    db = FaceDatabase(url)
    for person in KNOWN:
        db.enroll("friends", person, [photo(person, 1), photo(person, 2)])
    yield db
    db.close()


def test_identify_known_and_unknown(database: FaceDatabase) -> None:
    for person in KNOWN:
        (found,) = database.identify("friends", photo(person, 3))
        assert found.person == person
        assert found.matches[0].person == person and found.matches[0].similarity > 0.5
        assert [m.similarity for m in found.matches] == sorted(
            (m.similarity for m in found.matches), reverse=True
        )
        assert len(found.matches) == 3
    (stranger,) = database.identify("friends", photo(STRANGER, 1))
    assert stranger.person is None and stranger.matches[0].similarity < 0.5


def test_index_follows_changes(database: FaceDatabase) -> None:
    assert database.identify("friends", photo("Adam_Sandler", 3))[0].person == "Adam_Sandler"
    database.gallery.delete_person("friends", "Adam_Sandler")
    after = database.identify("friends", photo("Adam_Sandler", 3))[0]
    assert after.person is None and all(m.person != "Adam_Sandler" for m in after.matches)
    database.gallery.rename_person("friends", "Alan_Greenspan", "Alan")
    assert database.identify("friends", photo("Alan_Greenspan", 3))[0].person == "Alan"
    database.enroll("friends", STRANGER, [photo(STRANGER, 1)])
    assert database.identify("friends", photo(STRANGER, 3))[0].person == STRANGER


def test_a_new_process_reuses_the_saved_index(database: FaceDatabase, url: str) -> None:
    expected = database.identify("friends", photo("Abdoulaye_Wade", 3))[0].person
    with FaceDatabase(url, database.embedder_for("friends")) as fresh:
        assert fresh.identify("friends", photo("Abdoulaye_Wade", 3))[0].person == expected


def test_two_folders_with_a_relative_faces_db_do_not_share_an_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issue's story: the same text "faces.db" names two databases in two folders."""
    embedder = default_embedder()
    for folder, person in (("one", "Adam_Sandler"), ("two", "Alan_Greenspan")):
        (tmp_path / folder).mkdir()
        monkeypatch.chdir(tmp_path / folder)
        with FaceDatabase("faces.db", embedder) as db:
            db.enroll("c", person, [photo(person, 1)])
            (found,) = db.identify("c", photo(person, 1))
            assert found.person == person
    with FaceDatabase("faces.db", embedder) as db:  # folder "two", a new process's view
        assert db.identify("c", photo("Alan_Greenspan", 1))[0].person == "Alan_Greenspan"
        (other,) = db.identify("c", photo("Adam_Sandler", 1))
        assert other.person is None and other.matches[0].similarity < 0.5


def test_a_database_made_again_at_the_same_url_gets_a_new_index(url: str) -> None:
    embedder = default_embedder()
    for person in ("Adam_Sandler", "Alan_Greenspan"):
        with FaceDatabase(url, embedder) as db:
            db.enroll("c", person, [photo(person, 1)])
            assert db.identify("c", photo(person, 1))[0].person == person
        drop_gallery(url)
    with FaceDatabase(url, embedder) as db:
        db.enroll("c", "Alan_Greenspan", [photo("Alan_Greenspan", 1)])
        assert db.identify("c", photo("Alan_Greenspan", 1))[0].person == "Alan_Greenspan"
        assert db.identify("c", photo("Adam_Sandler", 1))[0].person is None


def test_tables_made_again_under_an_open_database_are_not_confused(url: str) -> None:
    """PostgreSQL: another process drops and re-creates the tables while this one holds the
    collection's index in memory; the new collection reaches the same revision."""
    if url.startswith("sqlite:///"):
        pytest.skip("an open SQLite connection keeps reading the deleted file")
    with FaceDatabase(url, default_embedder()) as db:
        model = db.embedder_for("c").model_name
        db.gallery.add_faces("c", "ann", [NewFace(vector(1), model, "ann.jpg")])
        assert db.identify_faces("c", [probe(vector(1))])[0].person == "ann"
        revision = db.gallery.revision("c")
        drop_gallery(url)
        with open_gallery(url) as other:
            other.add_faces("c", "bob", [NewFace(vector(2), model, "bob.jpg")])
        assert db.gallery.revision("c") == revision
        assert db.identify_faces("c", [probe(vector(1))])[0].person is None
        assert db.identify_faces("c", [probe(vector(2))])[0].person == "bob"


def test_the_url_kept_holds_no_password(url: str) -> None:
    if url.startswith("sqlite:///"):
        pytest.skip("PostgreSQL only")
    from psycopg.conninfo import make_conninfo

    with FaceDatabase(make_conninfo(url, password="pa55"), default_embedder()) as db:
        assert "pa55" not in db.url and "pa55" not in db.gallery.url
        assert "password=***" in db.url


def vector(seed: int, dim: int = 512) -> np.ndarray:
    """A random float32 unit vector, the same for the same seed."""
    values = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return values / np.linalg.norm(values)


def probe(embedding: np.ndarray) -> Face:
    """A face of a photo, already embedded."""
    return Face(np.array([0, 0, 50, 50], np.float32), 1.0, np.zeros((5, 2), np.float32), embedding)


def drop_gallery(url: str) -> None:
    """Delete the gallery at `url`: the SQLite file, or the tables of the PostgreSQL schema."""
    if url.startswith("sqlite:///"):
        for path in Path(url[len("sqlite:///") :]).parent.glob("gallery.db*"):
            path.unlink()
        return
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE kao_faces, kao_persons, kao_collections, kao_meta")
        conn.execute("DROP SEQUENCE IF EXISTS kao_revision")


def test_enrolment_is_all_or_nothing(database: FaceDatabase, tmp_path: Path) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(photo(STRANGER, 1).read_bytes()[:500])
    with pytest.raises(ImageError, match=r"broken\.jpg: truncated or corrupt"):
        database.enroll("friends", STRANGER, [photo(STRANGER, 1), broken])
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((200, 200, 3), 128, np.uint8)).save(blank)
    with pytest.raises(NoFaceError, match=r"blank\.png: no face found"):
        database.enroll("friends", STRANGER, [photo(STRANGER, 1), blank])
    assert STRANGER not in {p.person for p in database.gallery.persons("friends")}


def test_cli_enroll_identify_and_manage(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = ["--db", url, "--collection", "team"]
    for person in KNOWN[:2]:
        args = ["enroll", *db, "--person", person, str(photo(person, 1)), str(photo(person, 2))]
        assert main(args) == 0
    assert "enrolled 2 photos of Adam_Sandler" in capsys.readouterr().out
    probe = str(photo("Adam_Sandler", 3))
    assert main(["identify", *db, probe, "--json", "--top", "2"]) == 0
    (record,) = json.loads(capsys.readouterr().out)
    (face,) = record["faces"]
    assert face["person"] == "Adam_Sandler" and len(face["matches"]) == 2
    assert set(face) == {"box", "matches", "person"}
    assert main(["db", "list", "--db", url, "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed == [{"collection": "team", "persons": 2, "faces": 4, "model": DEFAULT_MODEL}]
    exported = tmp_path / "team.jsonl"
    assert main(["db", "export", *db, str(exported)]) == 0
    assert len(exported.read_text().splitlines()) == 4
    assert main(["db", "rename", *db, "Adam_Sandler", "Adam"]) == 0
    assert main(["db", "delete-person", *db, "Abdoulaye_Wade"]) == 0
    assert main(["db", "import", "--db", url, "--collection", "copy", str(exported)]) == 0
    capsys.readouterr()
    assert main(["db", "list", "--db", url, "--collection", "team", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"person": "Adam", "faces": 2}]
    assert main(["db", "delete-person", *db, "Nobody"]) == 1
    assert "Nobody" in capsys.readouterr().err
