"""Grouping in batches over the HTTP API: faces embedded photo by photo with /v1/embed, then
grouped by /v1/group/embeddings, give the answer /v1/group gives for the same photos (real
models, real LFW and WIDER FACE photos); and every malformed body is a 4xx naming the field."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("httpx")

from kao.recognition.dlib_resnet import MODEL_NAME as DLIB_MODEL
from kao.recognition.embedder import DEFAULT_MODEL
from kao.server import routes_images
from kao.server.app import create_app
from kao.server.settings import Settings
from tests.conftest import shared_file
from tests.serving import local_client

PHOTOS = [
    *(f"{person}_{n}.jpg" for person, n in [("Abdoulaye_Wade", 1), ("Adam_Sandler", 1)]),
    *(f"{person}_{n}.jpg" for person, n in [("Alan_Greenspan", 1), ("Abdoulaye_Wade", 2)]),
    *(f"{person}_{n}.jpg" for person, n in [("Adam_Sandler", 2), ("Alan_Greenspan", 2)]),
    *(f"{person}_{n}.jpg" for person, n in [("Adam_Sandler", 3), ("Alan_Greenspan", 3)]),
]
"""Eight LFW photos of three people, mixed."""
PARADE = "data/widerface_val_subset/images/0_Parade_Parade_0_194.jpg"  # 5 faces


def photo_bytes(name: str) -> bytes:
    """The bytes of `name`: an LFW photo "Person_N.jpg", the WIDER parade, or a broken file."""
    if name == "parade.jpg":
        return shared_file(PARADE).read_bytes()
    if name == "broken.jpg":
        return b"not an image"
    person, number = name[: -len(".jpg")].rsplit("_", 1)
    path = f"data/lfw/lfw-deepfunneled/{person}/{person}_{int(number):04d}.jpg"
    return shared_file(path).read_bytes()


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One app for the module (models load once), no analysis models, no keys (loopback)."""
    db = tmp_path_factory.mktemp("batches") / "faces.db"
    with local_client(create_app(Settings(db=str(db), analysis=False))) as test_client:
        yield test_client


def in_batches(client: Any, names: list[str], query: dict[str, Any]) -> dict[str, Any]:
    """What the web page does: each photo to /v1/embed, then all faces to /v1/group/embeddings
    with `query` (model, threshold or far) in the body."""
    faces: list[dict[str, Any]] = []
    errors: list[dict[str, str]] = []
    model = query.get("model", DEFAULT_MODEL)
    for name in names:
        files = [("image", (name, photo_bytes(name), "image/jpeg"))]
        answer = client.post("/v1/embed", params={"model": model}, files=files)
        if answer.status_code == 422:
            prefix = f"'image' ({name}): "
            errors.append({"image": name, "error": answer.json()["error"].removeprefix(prefix)})
            continue
        assert answer.status_code == 200, answer.text
        faces += [face | {"image": name} for face in answer.json()["faces"]]
    body = {**query, "images": len(names), "faces": faces, "errors": errors}
    response = client.post("/v1/group/embeddings", json=body)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize(
    "query",
    [{}, {"far": 1e-3}, {"model": DLIB_MODEL}, {"model": DLIB_MODEL, "threshold": 0.5}],
    ids=["default", "far", "dlib", "dlib-threshold"],
)
def test_batches_group_as_one_request(client: Any, query: dict[str, Any]) -> None:
    names = [*PHOTOS, "parade.jpg", "broken.jpg"]
    files = [("images", (name, photo_bytes(name), "image/jpeg")) for name in names]
    whole = client.post("/v1/group", params=query, files=files)
    assert whole.status_code == 200, whole.text
    expected = whole.json()
    assert expected["faces"] == 8 + 5 and expected["images"] == 10
    assert expected["errors"] == [
        {"image": "broken.jpg", "error": "not an image or unsupported format"}
    ]
    assert in_batches(client, names, query) == expected
    if not query:  # the default cut: the three LFW people each in one group of their own
        lfw = [g for g in expected["groups"] if any(f["image"] != "parade.jpg" for f in g["faces"])]
        people = [{f["image"].rsplit("_", 1)[0] for f in g["faces"]} for g in lfw]
        assert sorted(map(sorted, people)) == [
            ["Abdoulaye_Wade"],
            ["Adam_Sandler"],
            ["Alan_Greenspan"],
        ]


def test_order_of_faces_is_kept(client: Any) -> None:
    """The groups list the faces in the order sent, so the photos' order changes the answer's
    order only: the same people with the same faces."""
    forward = in_batches(client, PHOTOS, {})
    backward = in_batches(client, PHOTOS[::-1], {})
    as_sets = [sorted(f["image"] for f in g["faces"]) for g in forward["groups"]]
    assert sorted(as_sets) == sorted(
        sorted(f["image"] for f in g["faces"]) for g in backward["groups"]
    )
    assert forward["people"] == 3 and forward["faces"] == 8


def unit(dimension: int, axis: int = 0) -> list[float]:
    return [1.0 if i == axis else 0.0 for i in range(dimension)]


def face(image: str = "a.jpg", box: Any = (1, 2, 30, 40), embedding: Any = None) -> dict:
    return {
        "image": image,
        "box": list(box),
        "embedding": unit(512) if embedding is None else embedding,
    }


def test_given_embeddings_are_grouped(client: Any) -> None:
    """Two faces at the same point and one far away: two people, boxes as sent."""
    body = {
        "images": 3,
        "faces": [
            face("a.jpg"),
            face("b.jpg", (5, 5, 9, 9.25)),
            face("c.jpg", embedding=unit(512, 1)),
        ],
    }
    answer = client.post("/v1/group/embeddings", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "people": 2,
        "faces": 3,
        "images": 3,
        "groups": [
            {
                "person": 1,
                "faces": [
                    {"image": "a.jpg", "box": [1.0, 2.0, 30.0, 40.0]},
                    {"image": "b.jpg", "box": [5.0, 5.0, 9.0, 9.2]},
                ],
            },
            {"person": 2, "faces": [{"image": "c.jpg", "box": [1.0, 2.0, 30.0, 40.0]}]},
        ],
        "errors": [],
    }
    empty = client.post("/v1/group/embeddings", json={"images": 4, "faces": []})
    assert empty.json() == {"people": 0, "faces": 0, "images": 4, "groups": [], "errors": []}


HOSTILE: list[tuple[Any, int, str]] = [
    ([1, 2], 400, "must be an object"),
    ({"images": 1}, 400, "'faces' must be a list"),
    ({"images": 1, "faces": {"a": 1}}, 400, "'faces' must be a list"),
    ({"images": 1, "faces": [7]}, 400, "'faces[0]' must be an object"),
    ({"images": 1, "faces": [face(image="")]}, 400, "'faces[0].image'"),
    ({"images": 1, "faces": [face(image=3)]}, 400, "'faces[0].image'"),
    ({"images": 1, "faces": [face(image="x" * 1001)]}, 400, "'faces[0].image'"),
    ({"images": 1, "faces": [face(box=[1, 2, 3])]}, 400, "'faces[0].box' must be 4 finite"),
    ({"images": 1, "faces": [face(box=[1, 2, "3", 4])]}, 400, "'faces[0].box'"),
    ({"images": 1, "faces": [face(box=[1, 2, True, 4])]}, 400, "'faces[0].box'"),
    ({"images": 1, "faces": [face(box=[9, 2, 3, 4])]}, 400, "x1 < x2"),
    (
        {"images": 1, "faces": [face(), face(embedding=unit(128))]},
        400,
        "'faces[1].embedding' must be 512",
    ),
    ({"images": 1, "faces": [face(embedding=[0.5] * 512)]}, 400, "must have length 1"),
    (
        {"images": 1, "faces": [face(embedding=None) | {"embedding": None}]},
        400,
        "'faces[0].embedding'",
    ),
    ({"images": 1, "faces": [face(embedding=[*unit(511), 1e400])]}, 400, "'faces[0].embedding'"),
    ({"images": 1, "model": DLIB_MODEL, "faces": [face()]}, 400, "must be 128 finite"),
    ({"images": 1, "model": "nope", "faces": [face()]}, 422, "'model' must be one of"),
    ({"images": 1, "model": 5, "faces": [face()]}, 422, "'model'"),
    ({"images": 1, "threshold": 0.9, "far": 1e-3, "faces": [face()]}, 422, "not both"),
    ({"images": 1, "threshold": 3, "faces": [face()]}, 422, "(0, 2]"),
    ({"images": 1, "threshold": "0.9", "faces": [face()]}, 400, "'threshold' must be a finite"),
    ({"images": 1, "far": 0.9, "faces": [face()]}, 422, "far"),
    ({"faces": [face()]}, 400, "'images'"),
    ({"images": 0, "faces": [face()]}, 400, "'images' must be the number of photos tried"),
    ({"images": 1.5, "faces": [face()]}, 400, "'images'"),
    ({"images": 1, "faces": [face("a.jpg"), face("b.jpg")]}, 400, "an integer from 2"),
    ({"images": 10**9, "faces": [face()]}, 400, "'images'"),
    ({"images": 1, "faces": [], "errors": "x"}, 400, "'errors' must be a list"),
    ({"images": 1, "faces": [], "errors": [{"image": "a.jpg"}]}, 400, "'errors[0].error'"),
    ({"images": 1, "faces": [], "errors": ["a.jpg"]}, 400, "'errors[0]' must be an object"),
    (
        {"images": 1, "faces": [face("a.jpg")], "errors": [{"image": "b.jpg", "error": "x"}]},
        400,
        "'images'",
    ),
]


@pytest.mark.parametrize(("body", "status", "words"), HOSTILE)
def test_hostile_bodies_are_4xx_naming_the_field(
    client: Any, body: Any, status: int, words: str
) -> None:
    text = json.dumps(body)
    response = client.post(
        "/v1/group/embeddings", content=text, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == status, response.text
    assert words in response.json()["error"], response.json()["error"]


def test_not_json_and_nan(client: Any) -> None:
    """A body that is not JSON, and NaN (which Python's parser accepts) in an embedding."""
    headers = {"Content-Type": "application/json"}
    broken = client.post("/v1/group/embeddings", content=b"{", headers=headers)
    assert broken.status_code == 400 and "not valid JSON" in broken.json()["error"]
    nan = '{"images": 1, "faces": [{"image": "a", "box": [1, 2, 3, 4], "embedding": [NaN]}]}'
    answer = client.post("/v1/group/embeddings", content=nan, headers=headers)
    assert answer.status_code == 400 and "'faces[0].embedding'" in answer.json()["error"]


def test_too_many_faces(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(routes_images, "MAX_GROUP_FACES", 2)
    body = {"images": 2, "faces": [face("a"), face("b"), face("c")]}
    answer = client.post("/v1/group/embeddings", json=body)
    assert answer.status_code == 400 and "at most 2 faces" in answer.json()["error"]


def test_body_over_the_upload_limit(tmp_path: Any) -> None:
    """The server's upload limit bounds this body too: 413 before it is read."""
    settings = Settings(db=str(tmp_path / "faces.db"), analysis=False, max_upload=5_000)
    with local_client(create_app(settings)) as small:
        body = {"images": 3, "faces": [face("a"), face("b"), face("c")]}  # about 8 KB
        answer = small.post("/v1/group/embeddings", json=body)
        assert answer.status_code == 413 and "larger than the limit" in answer.json()["error"]
