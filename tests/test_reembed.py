"""`kao db reembed` / `FaceDatabase.reembed`: a collection re-computed with another recognition
model from the photos its faces were enrolled from (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kao.cli import main
from kao.errors import ConflictError
from kao.gallery.database import FaceDatabase
from kao.gallery.records import NewFace
from kao.recognition import FaceEmbedder
from tests.conftest import lfw_photo as photo

pytestmark = pytest.mark.usefixtures("private_cache")


@pytest.fixture
def photos(tmp_path: Path) -> dict[str, Path]:
    """Copies of two photos each of two people, under tmp_path/photos."""
    folder = tmp_path / "photos"
    folder.mkdir()
    copies = {}
    for person, numbers in (("Colin_Powell", (40, 49)), ("Tony_Blair", (18, 48))):
        for number in numbers:
            copies[f"{person}{number}"] = Path(shutil.copy(photo(person, number), folder))
    return copies


def test_reembed_moves_a_dlib_collection_to_edgeface(url: str, photos: dict[str, Path]) -> None:
    """Every face is computed again with the new model (new ids, same persons, sources and
    times); the collection then identifies with EdgeFace by default."""
    with FaceDatabase(url, FaceEmbedder(model="dlib_resnet_v1")) as dlib:
        dlib.enroll("c", "colin", [photos["Colin_Powell40"]])
        dlib.enroll("c", "tony", [photos["Tony_Blair18"]])
    with FaceDatabase(url) as db:
        before = db.faces("c")
        result = db.reembed("c", "edgeface_xs")
        after = db.faces("c")
        assert result.written and not result.unreadable
        assert sorted(result.ids) == [f.id for f in before]
        assert [f.id for f in after] == [result.ids[f.id] for f in before]
        assert {f.model for f in after} == {"edgeface_xs"}
        assert [(f.person, f.source, f.created) for f in after] == [
            (f.person, f.source, f.created) for f in before
        ]
        assert all(f.embedding.shape == (512,) for f in after)
        for old, new in zip(before, after, strict=True):
            assert np.abs(np.array(old.box) - np.array(new.box)).max() < 2.0
        (found,) = db.identify("c", photos["Tony_Blair48"])
        assert found.person == "tony" and db.list_collections()[0].model == "edgeface_xs"


def test_unreadable_photos_change_nothing_unless_dropped(
    url: str, photos: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """A deleted photo, a photo overwritten by one without a face and a face sent as an array
    (kao kept no copy) are each named with the reason; nothing changes (exit 1) until
    --drop-unreadable deletes them, and a person left without faces with them."""
    with FaceDatabase(url, FaceEmbedder(model="dlib_resnet_v1")) as db:
        db.enroll("c", "colin", [photos["Colin_Powell40"], photos["Colin_Powell49"]])
        db.enroll("c", "tony", [photos["Tony_Blair18"]])
        db.enroll("c", "tony", [np.asarray(Image.open(photos["Tony_Blair48"]).convert("RGB"))])
        ids = [f.id for f in db.faces("c")]
    photos["Colin_Powell49"].unlink()
    Image.new("RGB", (250, 250), (128, 128, 128)).save(photos["Tony_Blair18"])
    args = ["db", "reembed", "--db", url, "--collection", "c", "--model", "edgeface_xs"]
    assert main([*args, "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["written"] is False and report["reembedded"] == 0
    reasons = {item["id"]: item["reason"] for item in report["unreadable"]}
    assert set(reasons) == set(ids[1:])
    assert "no such file" in reasons[ids[1]]
    assert "no face found" in reasons[ids[2]]
    assert "kept no copy" in reasons[ids[3]]
    with FaceDatabase(url) as db:
        assert {f.model for f in db.faces("c")} == {"dlib_resnet_v1"}
    assert main([*args, "--drop-unreadable"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("re-embedded 1 face of c with edgeface_xs; deleted 3 faces")
    with FaceDatabase(url) as db:
        (face,) = db.faces("c")
        assert (face.person, face.model) == ("colin", "edgeface_xs")
        assert [p.person for p in db.persons("c")] == ["colin"]


def test_a_face_no_longer_at_its_box_or_a_relative_path(url: str, photos: dict[str, Path]) -> None:
    """A photo replaced by another whose face is elsewhere is refused (the file changed); a
    relative source needs `root`, under which it is read (its largest face: no box stored)."""
    with FaceDatabase(url, FaceEmbedder(model="dlib_resnet_v1")) as db:
        db.enroll("c", "colin", [photos["Colin_Powell40"]])
        (face,) = db.faces("c")
        db.gallery.add_faces(
            "c",
            "tony",
            [NewFace(face.embedding, "dlib_resnet_v1", "photos/Tony_Blair_0018.jpg")],
        )
    moved = Image.new("RGB", (600, 400), (90, 90, 90))
    moved.paste(Image.open(photos["Colin_Powell40"]), (340, 140))
    moved.save(photos["Colin_Powell40"])
    with FaceDatabase(url) as db:
        result = db.reembed("c", "edgeface_xs")
        reasons = [item.reason for item in result.unreadable]
        assert not result.written and len(reasons) == 2
        assert "no face at the enrolled box" in reasons[0]
        assert "relative path" in reasons[1]
        root = photos["Colin_Powell40"].parent.parent
        result = db.reembed("c", "edgeface_xs", root=root, drop_unreadable=True)
        assert result.written and [u.person for u in result.unreadable] == ["colin"]
        (tony,) = db.faces("c")
        assert tony.person == "tony" and tony.source == str(root / "photos/Tony_Blair_0018.jpg")


def test_a_collection_changed_meanwhile_is_not_overwritten(url: str) -> None:
    """`replace_faces` at a revision the collection has left is refused, nothing written."""
    with FaceDatabase(url) as db:
        vector = np.full(512, 1 / np.sqrt(512), np.float32)
        db.gallery.add_faces("c", "ann", [NewFace(vector, "edgeface_xs", "a.jpg")])
        revision = db.revision("c")
        (face,) = db.faces("c")
        db.gallery.add_faces("c", "bob", [NewFace(vector, "edgeface_xs", "b.jpg")])
        with pytest.raises(ConflictError, match="changed while its faces were re-computed"):
            db.gallery.replace_faces("c", revision, {face.id: NewFace(vector, "edgeface_xs", "a")})
        assert len(db.faces("c")) == 2
