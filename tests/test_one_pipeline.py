"""One pipeline: the Python API, the command line, the HTTP API and the web page (the requests
its script sends, in a real browser) give the same faces, the same attributes and the same face
numbers for the same photo."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import kao
from kao.cli import main
from kao.server.app import create_app
from kao.server.settings import Settings
from tests.conftest import LFW, shared_file
from tests.serving import local_client
from tests.test_web import browser, open_page, playwright, server  # noqa: F401 (fixtures)

PHOTOS = (
    "data/widerface_val_subset/images/0_Parade_Parade_0_194.jpg",  # 5 faces
    "data/mask/with_mask/0803.jpg",  # a masked face only the masked-face pass finds
    "data/widerface_val_subset/images/1_Handshaking_Handshaking_1_313.jpg",  # FaceMesh rejects
)


@pytest.fixture(scope="module")
def photos() -> list[Path]:
    return [shared_file(relative) for relative in PHOTOS]


@pytest.fixture(scope="module")
def python_records(photos: list[Path]) -> list[list[dict[str, Any]]]:
    """Each photo's faces from `kao.analyze`, as records."""
    records = [[face.to_dict() for face in kao.analyze(photo)] for photo in photos]
    assert all(records), "every photo has faces"
    assert any(face["missing"] for face in records[-1]), "a face with null keys and reasons"
    return records


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    folder = tmp_path_factory.mktemp("one-pipeline")
    with local_client(create_app(Settings(db=str(folder / "faces.db")))) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, int]:
    """(a photo of two people side by side, another photo of the one on the right, the number
    of that person's face in the first photo, as people see faces numbered)."""
    left = kao.load_image(LFW / "Abdoulaye_Wade" / "Abdoulaye_Wade_0001.jpg")
    right = kao.load_image(LFW / "Alan_Greenspan" / "Alan_Greenspan_0002.jpg")
    path = tmp_path_factory.mktemp("pair") / "pair.png"
    Image.fromarray(np.concatenate([left, right], axis=1)).save(path)
    faces = kao.detect(path)
    assert len(faces) >= 2
    on_right = [i for i, face in enumerate(faces) if face.box[0] > left.shape[1]]
    index = max(on_right, key=lambda i: faces[i].area)
    assert index != max(range(len(faces)), key=lambda i: faces[i].area), "not the default face"
    return path, LFW / "Alan_Greenspan" / "Alan_Greenspan_0004.jpg", index + 1


def test_python_cli_and_http_give_the_same_analysis(
    photos: list[Path],
    python_records: list[list[dict[str, Any]]],
    client: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["analyze", "--json", *map(str, photos)]) == 0
    cli = [record["faces"] for record in json.loads(capsys.readouterr().out)]
    assert main(["analyze", "--jsonl", *map(str, photos)]) == 0
    lines = [json.loads(line)["faces"] for line in capsys.readouterr().out.splitlines()]

    http = []
    for photo in photos:
        response = client.post("/v1/analyze", files={"image": (photo.name, photo.read_bytes())})
        assert response.status_code == 200, response.text
        http.append(response.json()["faces"])

    assert cli == python_records
    assert lines == python_records
    assert http == python_records


@pytest.mark.parametrize(
    ("photo", "option", "query"),
    [
        (PHOTOS[2], "--mesh", "mesh=true"),
        ("data/utkface/100_1_0_20170112213001988.jpg.chip.jpg", "--cropped", "cropped=true"),
    ],
)
def test_the_options_give_the_same_analysis(
    photo: str,
    option: str,
    query: str,
    client: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The mesh points (`--mesh`, ``?mesh=true``) and face crops (`--cropped`,
    ``?cropped=true``) too."""
    path = shared_file(photo)
    cropped = option == "--cropped"
    python = [face.to_dict(mesh=not cropped) for face in kao.analyze(path, cropped=cropped)]
    assert main(["analyze", "--json", option, str(path)]) == 0
    (cli,) = json.loads(capsys.readouterr().out)
    response = client.post(f"/v1/analyze?{query}", files={"image": (path.name, path.read_bytes())})
    assert response.status_code == 200, response.text
    assert cli["faces"] == response.json()["faces"] == python


def test_python_cli_and_http_give_the_same_detections(
    photos: list[Path], client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    python = [[face.to_dict() for face in kao.detect(photo)] for photo in photos]
    assert main(["detect", "--json", *map(str, photos)]) == 0
    cli = [record["faces"] for record in json.loads(capsys.readouterr().out)]
    http = []
    for photo in photos:
        response = client.post("/v1/detect", files={"image": (photo.name, photo.read_bytes())})
        assert response.status_code == 200, response.text
        http.append(response.json()["faces"])
    assert cli == python and http == python
    qualities = [face["quality"] for faces in python for face in faces]
    assert qualities and all(0 <= q["score"] <= 1 and q["landmarks"] is None for q in qualities)


def test_one_face_number_in_python_cli_and_http(
    pair: tuple[Path, Path, int], client: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Face N is the N-th face `kao detect` prints, numbered from 1, whichever way it is asked
    for and reported."""
    a, b, number = pair
    box = kao.detect(a)[number - 1].to_dict()["box"]

    python = kao.verify(a, b, index_a=number - 1)
    assert python.same and python.a.number == number
    assert python.to_dict()["a"] == {"faces": python.a.faces, "face": number, "box": box}

    assert main(["detect", "--json", str(a)]) == 0
    (detected,) = json.loads(capsys.readouterr().out)
    assert detected["faces"][number - 1]["box"] == box
    assert main(["verify", str(a), str(b), "--face-a", str(number), "--json"]) == 0
    cli = json.loads(capsys.readouterr().out)
    assert main(["verify", str(a), str(b), "--face-a", str(number)]) == 0
    text = capsys.readouterr().out

    files = {"a": (a.name, a.read_bytes()), "b": (b.name, b.read_bytes())}
    response = client.post(f"/v1/verify?face_a={number}", files=files)
    assert response.status_code == 200, response.text
    http = response.json()

    assert cli == http == python.to_dict()
    assert f"A: {a}: face {number} of {python.a.faces}, box" in text
    beyond = client.post(f"/v1/verify?face_a={python.a.faces + 1}", files=files)
    assert beyond.status_code == 422
    assert f"face {python.a.faces + 1} asked for, but {python.a.faces} found" in beyond.text


def test_the_page_gets_what_python_gives(
    browser: Any,  # noqa: F811
    server: str,  # noqa: F811
    photos: list[Path],
    python_records: list[list[dict[str, Any]]],
    pair: tuple[Path, Path, int],
) -> None:
    """The JSON the page's own script receives when a person picks each photo (and the face
    number it shows for a comparison) is what Python gives."""
    with open_page(browser, server) as page:
        for photo, expected in zip(photos, python_records, strict=True):
            with page.expect_response("**/v1/analyze") as answer:
                page.set_input_files("#analyze-file", photo)
            assert answer.value.json()["faces"] == expected
            page.wait_for_selector("#analyze .status:not(.working)", state="attached")
        reasons = page.locator("#analyze-faces .missing").all_inner_texts()
        assert reasons and all(line.startswith("no ") for line in reasons)
        assert "FaceMesh does not see a face" in " ".join(reasons)

        a, b, _ = pair
        page.click("nav a[data-tab=compare]")
        with page.expect_response(lambda r: "/v1/verify" in r.url) as answer:
            page.set_input_files("#compare-a", a)
            page.set_input_files("#compare-b", b)
        assert answer.value.json() == kao.verify(a, b).to_dict()
