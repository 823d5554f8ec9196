"""One pipeline: the Python API, the command line and the HTTP API (whose answers the web page
draws) give the same faces and the same attributes for the same photo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import kao
from kao.cli import main
from kao.server.app import create_app
from kao.server.settings import Settings
from tests.conftest import shared_file
from tests.serving import local_client

PHOTOS = (
    "data/widerface_val_subset/images/0_Parade_Parade_0_194.jpg",  # 5 faces
    "data/mask/with_mask/0803.jpg",  # a masked face only the masked-face pass finds
)


def test_python_cli_and_http_give_the_same_analysis(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photos = [shared_file(relative) for relative in PHOTOS]
    python = [[face.to_dict() for face in kao.analyze(photo)] for photo in photos]
    assert all(python), "every photo has faces"

    assert main(["analyze", "--json", *map(str, photos)]) == 0
    cli = [record["faces"] for record in json.loads(capsys.readouterr().out)]

    with local_client(create_app(Settings(db=str(tmp_path / "faces.db")))) as client:
        http = []
        for photo in photos:
            response = client.post("/v1/analyze", files={"image": (photo.name, photo.read_bytes())})
            assert response.status_code == 200, response.text
            http.append(response.json()["faces"])

    assert cli == python
    assert http == python
