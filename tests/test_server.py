"""The HTTP API (`kao serve`) through FastAPI's TestClient: real models, real photos, and every
error a caller can cause answered with a JSON 4xx."""

from __future__ import annotations

import base64
import io
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("httpx")
with warnings.catch_warnings():  # Starlette prefers httpx2 for its TestClient; httpx works
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from kao.recognition.embedder import DEFAULT_MODEL
from kao.server.app import create_app
from kao.server.settings import Settings
from tests.conftest import shared_file
from tests.serving import local_client

GROUP = "data/widerface_val_subset/images/0_Parade_Parade_0_194.jpg"  # 5 faces, 416 x 416


def lfw(person: str, number: int) -> bytes:
    return shared_file(f"data/lfw/lfw-deepfunneled/{person}/{person}_{number:04d}.jpg").read_bytes()


def blank() -> bytes:
    """A grey 200 x 200 PNG: an image without a face."""
    stream = io.BytesIO()
    Image.fromarray(np.full((200, 200, 3), 128, np.uint8)).save(stream, "PNG")
    return stream.getvalue()


def upload(field: str, name: str, data: bytes) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [(field, (name, data, "image/jpeg"))]


def check_error(response, status: int, *words: str) -> None:  # type: ignore[no-untyped-def]
    """`response` is a JSON error of `status` whose message contains each of `words`."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == status and isinstance(body["error"], str)
    for word in words:
        assert word in body["error"], body["error"]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """One app for the module (models load once), on a fresh SQLite file, no keys (loopback)."""
    db = tmp_path_factory.mktemp("server") / "faces.db"
    with local_client(create_app(Settings(db=str(db)))) as test_client:
        yield test_client


def test_detect_multipart_and_base64_json(client: TestClient) -> None:
    data = shared_file(GROUP).read_bytes()
    by_file = client.post("/v1/detect", files=upload("image", "parade.jpg", data))
    assert by_file.status_code == 200
    record = by_file.json()
    assert (record["image"], record["width"], record["height"]) == ("parade.jpg", 416, 416)
    assert len(record["faces"]) == 5
    face = record["faces"][0]
    assert len(face["box"]) == 4 and 0.6 <= face["score"] <= 1 and len(face["keypoints"]) == 5
    as_url = "data:image/jpeg;base64," + base64.b64encode(data).decode()
    by_json = client.post("/v1/detect", json={"image": as_url})
    assert by_json.status_code == 200
    assert by_json.json()["faces"] == record["faces"] and by_json.json()["image"] == "image"
    nobody = client.post("/v1/detect", files=upload("image", "grey.png", blank()))
    assert nobody.status_code == 200 and nobody.json()["faces"] == []


def test_bad_images_and_bodies_are_4xx_json(client: TestClient) -> None:
    data = shared_file(GROUP).read_bytes()
    truncated = client.post("/v1/detect", files=upload("image", "cut.jpg", data[:3000]))
    check_error(truncated, 422, "cut.jpg", "truncated or corrupt")
    text = client.post("/v1/detect", files=upload("image", "notes.txt", b"hello, not an image"))
    check_error(text, 422, "notes.txt", "not an image")
    check_error(client.post("/v1/detect", json={"image": "@@not base64@@"}), 400, "base64")
    check_error(client.post("/v1/detect", json={"picture": "AAAA"}), 400, "missing", "'image'")
    check_error(client.post("/v1/detect", json=["image"]), 400, "object")
    check_error(
        client.post("/v1/detect", content=b"{", headers={"content-type": "application/json"}),
        400,
        "not valid JSON",
    )
    check_error(client.post("/v1/detect", content=data), 415, "multipart/form-data")
    check_error(
        client.post("/v1/detect", data={"image": "text"}, files=upload("x", "x", b"x")),
        400,
        "file part",
    )
    check_error(client.post("/v1/verify?face_a=-1", json={}), 422, "face_a")
    check_error(client.post("/v1/verify?face_a=0", json={}), 422, "face_a")  # numbered from 1
    check_error(client.get("/v1/nothing-here"), 404)


def test_pixel_limit_is_413(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAO_MAX_PIXELS", "10000")
    response = client.post(
        "/v1/detect", files=upload("image", "big.jpg", shared_file(GROUP).read_bytes())
    )
    check_error(response, 413, "big.jpg", "416x416", "exceeds the limit of 10000")


def test_upload_limit_is_413_announced_or_streamed(tmp_path: Path) -> None:
    data = shared_file(GROUP).read_bytes()
    settings = Settings(db=str(tmp_path / "faces.db"), max_upload=len(data) // 2, analysis=False)
    with local_client(create_app(settings)) as small:
        announced = small.post("/v1/detect", files=upload("image", "g.jpg", data))
        check_error(announced, 413, f"limit of {len(data) // 2} bytes")

        def chunks() -> Iterator[bytes]:  # no Content-Length: the limit counts what arrives
            for start in range(0, len(data), 4096):
                yield data[start : start + 4096]

        streamed = small.post(
            "/v1/detect",
            content=chunks(),
            headers={"content-type": "multipart/form-data; boundary=x"},
        )
        check_error(streamed, 413, "limit")
        assert (
            small.post(
                "/v1/detect", files=upload("image", "g.jpg", lfw("Adam_Sandler", 1))
            ).status_code
            == 200
        )


def test_slow_request_gets_503_not_a_hung_worker(tmp_path: Path) -> None:
    settings = Settings(db=str(tmp_path / "faces.db"), timeout=0.05, analysis=False)
    images = [
        ("images", (f"{i}.jpg", shared_file(GROUP).read_bytes(), "image/jpeg")) for i in range(4)
    ]
    with local_client(create_app(settings)) as hurried:
        response = hurried.post("/v1/group", files=images)
        check_error(response, 503, "longer than", "0.05 s")
        assert response.headers["retry-after"] == "5"
        # The server still answers: the abandoned work may hold the 0.05 s budget for a moment.
        assert any(hurried.get("/health").status_code == 200 for _ in range(50))


def test_verify_same_and_different(client: TestClient) -> None:
    same = client.post(
        "/v1/verify",
        files=upload("a", "wade1.jpg", lfw("Abdoulaye_Wade", 1))
        + upload("b", "wade4.jpg", lfw("Abdoulaye_Wade", 4)),
    )
    assert same.status_code == 200
    result = same.json()
    assert result["same"] is True and result["similarity"] > 0.5
    assert result["distance"] < result["threshold"] and result["a"]["faces"] == 1
    encoded = {
        "a": base64.b64encode(lfw("Abdoulaye_Wade", 1)).decode(),
        "b": base64.b64encode(lfw("Alan_Greenspan", 2)).decode(),
    }
    different = client.post("/v1/verify", json=encoded)
    assert different.status_code == 200 and different.json()["same"] is False


def test_verify_errors_name_the_image(client: TestClient) -> None:
    face = lfw("Adam_Sandler", 1)
    no_face = client.post(
        "/v1/verify", files=upload("a", "me.jpg", face) + upload("b", "grey.png", blank())
    )
    check_error(no_face, 422, "'b' (grey.png)", "no face found")
    no_face_a = client.post(
        "/v1/verify", files=upload("a", "grey.png", blank()) + upload("b", "me.jpg", face)
    )
    check_error(no_face_a, 422, "'a' (grey.png)", "no face found")
    missing = client.post("/v1/verify", files=upload("a", "me.jpg", face))
    check_error(missing, 400, "missing image field 'b'")
    group = shared_file(GROUP).read_bytes()
    out_of_range = client.post(
        "/v1/verify?face_b=7", files=upload("a", "me.jpg", face) + upload("b", "parade.jpg", group)
    )
    check_error(out_of_range, 422, "'b' (parade.jpg)", "face 7 asked for, but 5 found")


def test_group_sorts_faces_by_person(client: TestClient) -> None:
    people = ("Abdoulaye_Wade", "Adam_Sandler", "Alan_Greenspan")
    images = [
        ("images", (f"{person}_{n}.jpg", lfw(person, n), "image/jpeg"))
        for person in people
        for n in (1, 2)
    ]
    images.append(("images", ("broken.jpg", b"not an image", "image/jpeg")))
    response = client.post("/v1/group", files=images)
    assert response.status_code == 200
    report = response.json()
    assert (report["people"], report["faces"], report["images"]) == (3, 6, 7)
    for group in report["groups"]:
        names = {f["image"].rsplit("_", 1)[0] for f in group["faces"]}
        assert len(names) == 1 and len(group["faces"]) == 2
    assert report["errors"] == [
        {"image": "broken.jpg", "error": "not an image or unsupported format"}
    ]


def test_analyze(client: TestClient) -> None:
    face = upload("image", "sandler.jpg", lfw("Adam_Sandler", 1))
    assert client.get("/health").json()["analysis"]
    response = client.post("/v1/analyze", files=face)
    assert response.status_code == 200, response.text
    (result,) = response.json()["faces"]
    assert 0 < result["age"] < 100 and result["gender"]["label"] in ("male", "female")
    assert abs(sum(result["emotion"].values()) - 1) < 1e-3 and "pose" in result
    assert "mesh" not in result
    cropped = client.post("/v1/analyze?cropped=true&mesh=true", files=face)
    assert cropped.status_code == 200 and len(cropped.json()["faces"][0]["mesh"]) == 468


def test_collections_enroll_identify_delete(url: str) -> None:
    """The face database through the API, on SQLite and PostgreSQL."""
    with local_client(create_app(Settings(db=url, analysis=False))) as api:
        assert api.get("/v1/collections").json() == []
        assert api.post("/v1/collections", json={"name": "family"}).status_code == 201
        check_error(api.post("/v1/collections", json={"name": "family"}), 409, "already exists")
        check_error(api.post("/v1/collections", json={"name": " "}), 400, "empty")
        check_error(api.post("/v1/collections", json={}), 400, "name")

        enrolled = api.post(
            "/v1/collections/family/enroll",
            files=upload("images", "w1.jpg", lfw("Abdoulaye_Wade", 1))
            + upload("images", "w2.jpg", lfw("Abdoulaye_Wade", 2)),
            data={"person": "wade"},
        )
        assert enrolled.status_code == 201, enrolled.text
        document = enrolled.json()
        assert document["person"] == "wade" and document["faces"] == 2
        assert len(document["added"]) == 2
        by_json = api.post(
            "/v1/collections/family/enroll",
            json={
                "person": "adam/sandler",
                "images": [base64.b64encode(lfw("Adam_Sandler", 1)).decode()],
            },
        )
        assert by_json.status_code == 201 and by_json.json()["faces"] == 1

        nothing = api.post(
            "/v1/collections/family/enroll",
            files=upload("images", "a2.jpg", lfw("Adam_Sandler", 2))
            + upload("images", "grey.png", blank()),
            data={"person": "adam/sandler"},
        )
        check_error(nothing, 422, "grey.png", "no face", "nothing was enrolled")
        check_error(
            api.post(
                "/v1/collections/family/enroll",
                files=upload("images", "a.jpg", lfw("Adam_Sandler", 2)),
            ),
            400,
            "person",
        )
        check_error(
            api.post(
                "/v1/collections/nobody/enroll",
                files=upload("images", "a.jpg", lfw("Adam_Sandler", 2)),
                data={"person": "x"},
            ),
            404,
            "no collection 'nobody'",
        )
        assert api.get("/v1/collections").json() == [
            {"collection": "family", "persons": 2, "faces": 3, "model": DEFAULT_MODEL}
        ]
        persons = api.get("/v1/collections/family/persons").json()
        assert persons == [{"person": "adam/sandler", "faces": 1}, {"person": "wade", "faces": 2}]

        found = api.post(
            "/v1/collections/family/identify?top=2",
            files=upload("image", "q.jpg", lfw("Abdoulaye_Wade", 3)),
        )
        assert found.status_code == 200
        (face,) = found.json()["faces"]
        assert face["person"] == "wade" and face["matches"][0]["similarity"] > 0.5
        stranger = api.post(
            "/v1/collections/family/identify",
            files=upload("image", "q.jpg", lfw("Alan_Greenspan", 1)),
        )
        assert stranger.json()["faces"][0]["person"] is None
        check_error(
            api.post("/v1/collections/nobody/identify", files=upload("image", "grey.png", blank())),
            404,
            "no collection 'nobody'",
        )
        check_error(
            api.post(
                "/v1/collections/family/identify?top=0", files=upload("image", "q.jpg", blank())
            ),
            422,
            "top",
        )

        faces = api.get("/v1/collections/family/faces").json()
        assert sorted(f["id"] for f in faces) == sorted(document["added"] + by_json.json()["added"])
        first = document["added"][0]
        assert api.delete(f"/v1/collections/family/faces/{first}").json() == {"deleted": first}
        check_error(api.delete(f"/v1/collections/family/faces/{first}"), 404, f"no face {first}")
        assert api.delete("/v1/collections/family/persons/adam/sandler").json() == {
            "deleted": "adam/sandler",
            "faces": 1,
        }
        check_error(api.delete("/v1/collections/family/persons/adam/sandler"), 404, "no person")
        assert api.get("/v1/collections/family/persons").json() == [{"person": "wade", "faces": 1}]
        assert api.delete("/v1/collections/family").json() == {"deleted": "family"}
        check_error(api.delete("/v1/collections/family"), 404, "no collection")
        check_error(api.get("/v1/collections/family/persons"), 404, "no collection")


def test_openapi_docs(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert {"/v1/detect", "/v1/verify", "/v1/group", "/v1/collections/{collection}/enroll"} <= set(
        schema["paths"]
    )
    body = schema["paths"]["/v1/detect"]["post"]["requestBody"]["content"]
    assert {"multipart/form-data", "application/json"} <= set(body)
    assert client.get("/docs").status_code == 200
