"""The mixed load of `kao bench serve --mixed-seconds`, short, against a real `kao serve`: good
requests among bad, face-less and oversized uploads and idle connections."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kao.evaluation.loadtest import Server, bad_requests, mixed
from tests.conftest import shared_file

pytest.importorskip("httpx")

PORTRAIT = "data/lfw/lfw-deepfunneled/Aaron_Peirsol/Aaron_Peirsol_0001.jpg"
MAX_UPLOAD = 2**20
MEMORY_CEILING_MIB = 1024
"""One worker without the analysis models (about 250 MiB) decoding a 79-megapixel upload (about
700 MiB at the peak; 1,480 before images were decoded in strips)."""


def test_mixed_load_answers_every_good_request(tmp_path: Path) -> None:
    photo = shared_file(PORTRAIT).read_bytes()

    def good(client: Any) -> Any:
        return client.post("/v1/detect", files=[("image", ("p.jpg", photo, "image/jpeg"))])

    options = ["--threads", "1", "--no-analysis", "--header-timeout", "1"]
    options += ["--max-upload-mb", str(MAX_UPLOAD / 2**20)]
    with Server(str(tmp_path / "faces.db"), tmp_path / "serve.log", *options) as server:
        bad = bad_requests(["/v1/detect"], MAX_UPLOAD)
        report = mixed(server, good, bad, 8, (2, 2, 6), MEMORY_CEILING_MIB, 10_000)
    assert report["problems"] == [], report
    assert report["good"]["requests"] >= 10, report
    statuses = report["bad"]["by_status"]
    assert "413" in statuses and "422" in statuses, report  # oversized; not an image
    assert report["bad"]["no_answer"] == 0, report
    # A connection that has not sent its request head within a second is closed.
    assert report["idle"]["ended_by_server"] >= 6, report
