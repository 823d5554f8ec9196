"""Choosing the recognition model: `--model` in the CLI, and a collection pinned to its model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kao.cli import main
from kao.errors import ConflictError
from kao.gallery.database import FaceDatabase
from kao.gallery.records import NewFace
from kao.recognition import FaceEmbedder
from kao.recognition.embedder import DEFAULT_MODEL
from kao.recognition.verify import CALIBRATIONS
from tests.conftest import shared_file

COLIN = [
    shared_file(f"data/lfw/lfw-deepfunneled/Colin_Powell/Colin_Powell_{n:04d}.jpg")
    for n in (40, 49)
]
TONY = shared_file("data/lfw/lfw-deepfunneled/Tony_Blair/Tony_Blair_0018.jpg")
TWO_PEOPLE = [
    shared_file(f"data/lfw/lfw-deepfunneled/{name}/{name}_{n:04d}.jpg")
    for name, *numbers in (("Tony_Blair", 48, 53), ("Gerhard_Schroeder", 17, 25))
    for n in numbers
]
"""Two one-face photos each of two people."""


def test_cli_verify_uses_the_chosen_model_and_its_threshold(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`kao verify --model edgeface_xxs` embeds with EdgeFace and decides at its calibrated
    threshold (dlib's 0.4159 would call every EdgeFace pair different people)."""
    assert main(["verify", *map(str, COLIN), "--model", "edgeface_xxs", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["threshold"] == CALIBRATIONS["edgeface_xxs"].threshold
    assert result["same"] is True and result["distance"] > CALIBRATIONS["dlib_resnet_v1"].threshold
    with pytest.raises(SystemExit, match="2"):
        main(["verify", "a.jpg", "b.jpg", "--model", "arcface"])
    assert "invalid choice: 'arcface'" in capsys.readouterr().err


def test_cli_refuses_another_model_on_a_pinned_collection(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A collection enrolled with dlib refuses identifying and enrolling with EdgeFace, with a
    message naming the collection, its model and the model asked for; without --model, the
    collection's own model (dlib) is used."""
    db = ["--db", str(tmp_path / "faces.db"), "--collection", "family"]
    assert (
        main(["enroll", *db, "--person", "colin", str(COLIN[0]), "--model", "dlib_resnet_v1"]) == 0
    )
    capsys.readouterr()
    for command in (["identify", str(COLIN[1])], ["enroll", "--person", "tony", str(TONY)]):
        assert main([*command[:1], *db, *command[1:], "--model", "edgeface_xxs"]) == 1
        error = capsys.readouterr().err
        assert "collection 'family' holds dlib_resnet_v1 embeddings, not edgeface_xxs" in error
        assert "--model dlib_resnet_v1" in error
    assert main(["identify", *db, str(COLIN[1]), "--json"]) == 0
    (record,) = json.loads(capsys.readouterr().out)
    assert "colin" in [face["person"] for face in record["faces"]]  # one of its 3 faces


def test_a_collection_is_pinned_to_its_first_model(url: str, tmp_path: Path) -> None:
    """`FaceDatabase` (SQLite and PostgreSQL): an EdgeFace collection refuses a dlib enrolment
    (also inside the storing transaction) and identification, a dlib collection refuses an
    import of EdgeFace faces, and an empty collection takes any model."""
    with FaceDatabase(url, FaceEmbedder(model="edgeface_xxs")) as edge:
        edge.enroll("c", "colin", [COLIN[0]])
        with FaceDatabase(url, FaceEmbedder(model="dlib_resnet_v1")) as dlib:
            with pytest.raises(ConflictError, match="'c' holds edgeface_xxs embeddings, not dlib"):
                dlib.enroll("c", "tony", [TONY])
            with pytest.raises(ConflictError, match="identify with --model edgeface_xxs"):
                dlib.identify("c", COLIN[1])
            assert [p.person for p in dlib.persons("c")] == ["colin"]
            tony = NewFace(
                dlib.embedder_for("c").embed_one(TONY)[0].embedding, "dlib_resnet_v1", "t"
            )
            with pytest.raises(ConflictError, match=r"faces\[0\]: collection 'c' holds edgeface"):
                dlib.gallery.add_faces("c", "tony", [tony], pinned=True)  # in the transaction
            dlib.gallery.add_faces("d", "tony", [tony])
            edge_tony = edge.embedder_for("c").embed_one(TONY)[0].embedding
            mixed = [tony, NewFace(edge_tony, "edgeface_xxs", "t")]
            with pytest.raises(ConflictError, match=r"faces\[1\]: collection 'e' holds dlib"):
                dlib.gallery.add_faces("e", "tony", mixed, pinned=True)  # one model per batch too
            assert "e" not in [c.name for c in dlib.list_collections()]
            edge.export("c", tmp_path / "c.jsonl")
            with pytest.raises(ConflictError, match=r"c\.jsonl:1: collection 'd' holds dlib"):
                dlib.import_("d", tmp_path / "c.jsonl")
            assert edge.import_("copy", tmp_path / "c.jsonl") == 1
            dlib.create_collection("empty")
            assert dlib.identify("empty", COLIN[1])[0].person is None
        assert "colin" in [found.person for found in edge.identify("c", COLIN[1])]


def test_without_a_model_each_collection_uses_its_own(url: str) -> None:
    """A `FaceDatabase` given no embedder enrols and identifies in each collection with the
    model of the faces it holds (a dlib collection made by an older kao keeps working), and
    in a new or empty collection with the default model."""
    with FaceDatabase(url, FaceEmbedder(model="dlib_resnet_v1")) as dlib:
        dlib.enroll("old", "colin", [COLIN[0]])
    with FaceDatabase(url) as db:
        db.enroll("old", "tony", [TONY])
        db.enroll("new", "tony", [TONY])
        assert {c.name: c.model for c in db.list_collections()} == {
            "old": "dlib_resnet_v1",
            "new": DEFAULT_MODEL,
        }
        assert {face.model for face in db.faces("old")} == {"dlib_resnet_v1"}
        assert db.embedder_for("old").model_name == "dlib_resnet_v1"
        assert "colin" in [found.person for found in db.identify("old", COLIN[1])]
        db.gallery.add_faces("odd", "x", [NewFace(np.ones(8, np.float32) / 8**0.5, "other", "x")])
        with pytest.raises(ConflictError, match="'odd' holds other embeddings, which kao does not"):
            db.identify("odd", COLIN[1])


def test_cli_group_cuts_at_the_chosen_models_own_distance(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`kao group --model edgeface_xxs` without --threshold cuts at EdgeFace's distance: two
    one-face photos each of two people make 2 people (dlib's 0.35 would leave 4)."""
    photos = list(map(str, TWO_PEOPLE))
    assert main(["group", *photos, "--model", "edgeface_xxs", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["faces"], report["people"]) == (4, 2)
    assert main(["group", *photos, "--model", "edgeface_xxs", "--threshold", "0.35"]) == 0
    assert capsys.readouterr().out.startswith("4 persons in 4 faces")


def test_http_model_parameter(url: str) -> None:
    """`model` on /v1/verify, /v1/group, enroll and identify (SQLite and PostgreSQL): EdgeFace's
    threshold and cut, 422 for an unknown model, 409 for a collection of another model, the
    collection's own model when none is given; /v1/models lists them."""
    pytest.importorskip("httpx")
    from kao.server.app import create_app
    from kao.server.settings import Settings
    from tests.serving import local_client

    def files(field: str, *paths: Path) -> list[tuple[str, tuple[str, bytes, str]]]:
        return [(field, (p.name, p.read_bytes(), "image/jpeg")) for p in paths]

    with local_client(create_app(Settings(db=url, analysis=False))) as api:
        pair = files("a", COLIN[0]) + files("b", COLIN[1])
        verified = api.post("/v1/verify?model=edgeface_xxs", files=pair).json()
        assert verified["threshold"] == CALIBRATIONS["edgeface_xxs"].threshold
        assert verified["model"] == "edgeface_xxs" and verified["same"] is True
        unknown = api.post("/v1/verify?model=arcface", files=pair)
        assert unknown.status_code == 422 and "'arcface'" in unknown.json()["error"]
        grouped = api.post("/v1/group?model=edgeface_xxs", files=files("images", *TWO_PEOPLE))
        assert (grouped.json()["faces"], grouped.json()["people"]) == (4, 2)

        assert api.post("/v1/collections", json={"name": "family"}).status_code == 201
        enrol = "/v1/collections/family/enroll"
        done = api.post(
            f"{enrol}?model=dlib_resnet_v1",
            files=files("images", COLIN[0]),
            data={"person": "colin"},
        )
        assert done.status_code == 201, done.text
        assert (
            api.post(enrol, files=files("images", TONY), data={"person": "tony"}).status_code == 201
        )
        listed = api.get("/v1/collections").json()
        assert listed == [
            {"collection": "family", "persons": 2, "faces": 2, "model": "dlib_resnet_v1"}
        ]
        models = api.get("/v1/models").json()
        assert models["default"] == DEFAULT_MODEL
        assert [m["name"] for m in models["recognition"] if m["default"]] == [DEFAULT_MODEL]
        assert {m["name"]: m["dimension"] for m in models["recognition"]}["dlib_resnet_v1"] == 128
        refused = api.post(
            f"{enrol}?model=edgeface_xxs", files=files("images", TONY), data={"person": "tony"}
        )
        identify = "/v1/collections/family/identify"
        mismatch = api.post(f"{identify}?model=edgeface_xxs", files=files("image", COLIN[1]))
        for response in (refused, mismatch):
            assert response.status_code == 409, response.text
            assert "'family' holds dlib_resnet_v1 embeddings, not edgeface_xxs" in response.text
        known = api.post(identify, files=files("image", COLIN[1])).json()
        assert "colin" in [face["person"] for face in known["faces"]]
        svc = api.app.state.service  # EdgeFace was loaded once, on the shared detector
        embedder, database = svc.recognition("edgeface_xxs")
        assert svc.recognition("edgeface_xxs") == (embedder, database)
        assert (
            embedder.detector is svc.embedder.detector and database.gallery is svc.database.gallery
        )
