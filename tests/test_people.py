"""The HTTP API behind the page's people view, on SQLite and PostgreSQL: renaming a person
(POST /v1/collections/{c}/persons/{person} with {"name"}), with the listing, deletions and
errors the view relies on."""

from __future__ import annotations

import pytest

from kao.server.app import create_app
from kao.server.settings import Settings
from tests.conftest import lfw_photo
from tests.serving import local_client

pytest.importorskip("httpx")


def photos(person: str, *numbers: int) -> list[tuple[str, tuple[str, bytes, str]]]:
    """Multipart "images" parts: LFW's photos `numbers` of `person`."""
    return [
        ("images", (f"{person}_{n}.jpg", lfw_photo(person, n).read_bytes(), "image/jpeg"))
        for n in numbers
    ]


def test_rename_delete_and_list_persons(url: str) -> None:
    with local_client(create_app(Settings(db=url, analysis=False))) as api:
        assert api.post("/v1/collections", json={"name": "team"}).status_code == 201
        for person, folder in (("a/b", "Abdoulaye_Wade"), ("Alan", "Alan_Greenspan")):
            enrolled = api.post(
                "/v1/collections/team/enroll", files=photos(folder, 1, 2), data={"person": person}
            )
            assert enrolled.status_code == 201, enrolled.text

        renamed = api.post("/v1/collections/team/persons/a/b", json={"name": "Abdoulaye Wade"})
        assert renamed.status_code == 200, renamed.text
        assert renamed.json() == {"renamed": "a/b", "to": "Abdoulaye Wade"}
        assert api.get("/v1/collections/team/persons").json() == [
            {"person": "Abdoulaye Wade", "faces": 2},
            {"person": "Alan", "faces": 2},
        ]
        faces = api.get("/v1/collections/team/faces").json()
        assert {f["person"] for f in faces} == {"Abdoulaye Wade", "Alan"}
        assert all(len(f["box"]) == 4 for f in faces)  # what the page crops its thumbnails at

        taken = api.post("/v1/collections/team/persons/Alan", json={"name": "Abdoulaye Wade"})
        assert taken.status_code == 409 and "exists" in taken.json()["error"]
        gone = api.post("/v1/collections/team/persons/a/b", json={"name": "x"})
        assert gone.status_code == 404 and "no person" in gone.json()["error"]
        nowhere = api.post("/v1/collections/nobody/persons/Alan", json={"name": "x"})
        assert nowhere.status_code == 404 and "no collection" in nowhere.json()["error"]
        for body in ({}, {"name": 3}):
            wrong = api.post("/v1/collections/team/persons/Alan", json=body)
            assert wrong.status_code == 400 and "name" in wrong.json()["error"]
        empty = api.post("/v1/collections/team/persons/Alan", json={"name": " "})
        assert empty.status_code == 400 and "empty" in empty.json()["error"]

        # the view deletes a face (the person stays while they have another), then a person
        alan = [f["id"] for f in faces if f["person"] == "Alan"]
        assert api.delete(f"/v1/collections/team/faces/{alan[0]}").json() == {"deleted": alan[0]}
        assert {"person": "Alan", "faces": 1} in api.get("/v1/collections/team/persons").json()
        assert api.delete(f"/v1/collections/team/faces/{alan[1]}").status_code == 200
        assert api.get("/v1/collections/team/persons").json() == [
            {"person": "Abdoulaye Wade", "faces": 2}
        ]
        assert api.delete("/v1/collections/team").json() == {"deleted": "team"}
        assert api.get("/v1/collections").json() == []
