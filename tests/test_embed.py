"""`kao embed`, `POST /v1/embed` and `kao.FaceEmbedder` give the same embeddings; `kao models
list` and `GET /v1/models` show the recognition models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kao.cli import main
from kao.recognition import FaceEmbedder
from kao.recognition.embedder import DEFAULT_MODEL, RECOGNITION_MODELS
from tests.conftest import shared_file

COLIN = shared_file("data/lfw/lfw-deepfunneled/Colin_Powell/Colin_Powell_0040.jpg")


def test_cli_http_and_python_embed_alike(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One face, its unit vector of the chosen model's length, equal in the three interfaces; a
    broken file is reported (exit 1) while the other inputs are still embedded."""
    pytest.importorskip("httpx")
    from kao.server.app import create_app
    from kao.server.settings import Settings
    from tests.serving import local_client

    broken = tmp_path / "broken.jpg"
    broken.write_bytes(COLIN.read_bytes()[:300])
    (face,) = FaceEmbedder(model="edgeface_xxs").embed(COLIN)
    assert main(["embed", str(COLIN), str(broken), "--json", "--model", "edgeface_xxs"]) == 1
    good, bad = json.loads(capsys.readouterr().out)
    assert bad["image"] == str(broken) and "error" in bad
    assert good["model"] == "edgeface_xxs" and len(good["faces"]) == 1
    vector = np.array(good["faces"][0]["embedding"], np.float32)
    assert vector.shape == (512,) and np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(vector, face.embedding, atol=1e-6)
    with local_client(create_app(Settings(db=str(tmp_path / "f.db"), analysis=False))) as api:
        upload = {"image": (COLIN.name, COLIN.read_bytes(), "image/jpeg")}
        answer = api.post("/v1/embed?model=edgeface_xxs", files=upload).json()
        assert answer["model"] == "edgeface_xxs"
        np.testing.assert_allclose(answer["faces"][0]["embedding"], face.embedding, atol=1e-6)
        assert answer["faces"][0]["box"] == good["faces"][0]["box"]
        default = api.post("/v1/embed", files=upload).json()
        assert default["model"] == DEFAULT_MODEL
        unknown = api.post("/v1/embed?model=arcface", files=upload)
        assert unknown.status_code == 422 and "'arcface'" in unknown.json()["error"]
        listed = api.get("/v1/models").json()
    assert main(["models", "list", "--json"]) == 0
    recognition = json.loads(capsys.readouterr().out)["recognition"]
    assert recognition == listed["recognition"]
    assert [m["name"] for m in recognition] == list(RECOGNITION_MODELS)
    assert [m["name"] for m in recognition if m["default"]] == [DEFAULT_MODEL]
    assert main(["models", "list"]) == 0
    assert f"{DEFAULT_MODEL}     512-d" in capsys.readouterr().out
