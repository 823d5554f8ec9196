"""The HTTP API behind the page's people view and its enrolment of a group, on SQLite and
PostgreSQL: renaming a person (POST /v1/collections/{c}/persons/{person} with {"name"}), with
the listing, deletions and errors the view relies on; enrolling the face at a box of a photo
(enroll?box=x1,y1,x2,y2)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from kao.detection.boxes import iou_matrix
from kao.server.app import create_app
from kao.server.settings import Settings
from tests.conftest import lfw_photo, shared_file
from tests.serving import local_client

GROUP = "data/widerface_val_subset/images/0_Parade_Parade_0_194.jpg"  # 5 faces, 416 x 416

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


def test_enrol_the_face_at_a_box(url: str) -> None:
    """A face that Group found in a group photo, not the largest, is enrolled by its box."""
    crowd = shared_file(GROUP).read_bytes()
    with local_client(create_app(Settings(db=url, analysis=False))) as api:
        assert api.post("/v1/collections", json={"name": "party"}).status_code == 201
        grouped = api.post("/v1/group", files=[("images", ("crowd.jpg", crowd, "image/jpeg"))])
        boxes = [face["box"] for group in grouped.json()["groups"] for face in group["faces"]]
        assert len(boxes) == 5
        smallest = min(boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))
        largest = max(boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))

        def enrol(person: str, *boxes: list[float], photos: int = 1) -> Any:
            query = "&".join(f"box={','.join(f'{v:.1f}' for v in box)}" for box in boxes)
            return api.post(
                f"/v1/collections/party/enroll?force=true&{query}",
                files=[("images", ("crowd.jpg", crowd, "image/jpeg"))] * photos,
                data={"person": person},
            )

        assert enrol("small", smallest).status_code == 201
        assert enrol("large").status_code == 201  # no box: the largest face
        stored = {f["person"]: f["box"] for f in api.get("/v1/collections/party/faces").json()}
        assert iou(stored["small"], smallest) > 0.9 and iou(stored["large"], largest) > 0.9

        nowhere = enrol("x", [0, 0, 5, 5])
        assert nowhere.status_code == 422
        assert "no face at box 0.0,0.0,5.0,5.0; nothing was enrolled" in nowhere.json()["error"]
        assert enrol("x", smallest, smallest).status_code == 400  # two boxes, one photo
        assert enrol("x", smallest, photos=2).status_code == 400  # one box, two photos
        bad = api.post(
            "/v1/collections/party/enroll?box=1,2,three,4",
            files=[("images", ("crowd.jpg", crowd, "image/jpeg"))],
            data={"person": "x"},
        )
        assert bad.status_code == 400 and "not 4 numbers" in bad.json()["error"]
        assert [p["person"] for p in api.get("/v1/collections/party/persons").json()] == [
            "large",
            "small",
        ]


def iou(a: list[float], b: list[float]) -> float:
    """Intersection over union of two boxes (x1, y1, x2, y2)."""
    return float(iou_matrix(np.array([a]), np.array([b]))[0, 0])
