"""Enrolment refuses a face too poor to recognise later (`kao.quality.enrolment_problem`), in
Python, the CLI and over HTTP, unless forced; the refusal names the photo and the weakest part."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from kao.cli import main
from kao.gallery.database import FaceDatabase, PoorFaceError
from kao.quality import MIN_ENROL_QUALITY, enrolment_quality, face_quality
from kao.recognition import default_embedder
from tests.conftest import shared_file

COLIN = shared_file("data/lfw/lfw-deepfunneled/Colin_Powell/Colin_Powell_0040.jpg")


pytestmark = pytest.mark.usefixtures("private_cache")


@pytest.fixture
def small(tmp_path: Path) -> Path:
    """Colin Powell's photo shrunk to 30 x 30 px: the face is found, about 20 px wide."""
    rgb = np.asarray(Image.open(COLIN).convert("RGB"))
    path = tmp_path / "small.png"
    Image.fromarray(cv2.resize(rgb, (30, 30), interpolation=cv2.INTER_AREA)).save(path)
    return path


def test_quality_of_large_small_and_blurred_faces(small: Path) -> None:
    """The photo as it is passes the enrolment gate; shrunk, it fails on size; blurred with a
    Gaussian of 7 px, on sharpness."""
    rgb = np.asarray(Image.open(COLIN).convert("RGB"))
    for image, weakest in (
        (rgb, None),
        (np.asarray(Image.open(small)), "size"),
        (cv2.GaussianBlur(rgb, (0, 0), 7.0), "sharpness"),
    ):
        (face,) = default_embedder().detector.detect(image)
        quality = face_quality(image, face)
        assert (enrolment_quality(quality) >= MIN_ENROL_QUALITY) is (weakest is None)
        assert weakest is None or quality.weakest == weakest


def test_python_and_cli_refuse_a_poor_face_unless_forced(
    url: str, small: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with FaceDatabase(url) as db:
        with pytest.raises(PoorFaceError, match=r"small\.png: face quality 0\.\d+ is under"):
            db.enroll("c", "colin", [COLIN, small])
        assert db.list_collections() == []  # all or nothing: the sharp photo is not stored
    args = ["enroll", "--db", url, "--collection", "c", "--person", "colin", str(small)]
    assert main(args) == 1
    error = capsys.readouterr().err
    assert "weakest part: size" in error and "--force" in error
    assert main([*args, "--force"]) == 0
    with FaceDatabase(url) as db:
        assert [p.person for p in db.persons("c")] == ["colin"]


def test_http_refuses_a_poor_face_unless_forced(tmp_path: Path, small: Path) -> None:
    pytest.importorskip("httpx")
    from kao.server.app import create_app
    from kao.server.settings import Settings
    from tests.serving import local_client

    upload = [("images", ("small.png", small.read_bytes(), "image/png"))]
    with local_client(create_app(Settings(db=str(tmp_path / "f.db"), analysis=False))) as api:
        assert api.post("/v1/collections", json={"name": "c"}).status_code == 201
        enrol = "/v1/collections/c/enroll"
        refused = api.post(enrol, files=upload, data={"person": "colin"})
        assert refused.status_code == 422, refused.text
        message = refused.json()["error"]
        assert message.startswith("'images' (small.png): face quality")
        assert "nothing was enrolled (force=true enrols it anyway)" in message
        forced = api.post(f"{enrol}?force=true", files=upload, data={"person": "colin"})
        assert forced.status_code == 201, forced.text
