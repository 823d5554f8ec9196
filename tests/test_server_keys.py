"""API keys of `kao serve` (store, CLI, enforcement beyond loopback) and a real
`kao serve --workers 2` process taking concurrent enrolments without losing one."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from kao.cli import main
from kao.server.keys import KeyStore, KeyStoreError, hash_key
from kao.server.settings import Settings, is_loopback
from tests.conftest import shared_file
from tests.serving import kao_serve, local_client

httpx = pytest.importorskip("httpx")
from kao.server.app import create_app  # noqa: E402

PHOTO = "data/lfw/lfw-deepfunneled/Abdoulaye_Wade/Abdoulaye_Wade_0001.jpg"


def test_key_store(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "conf" / "keys.db")
    assert store.list() == [] and store.check("kao_anything") is None
    info, key = store.create("ci")
    assert key.startswith("kao_") and len(key) == 47 and key.startswith(info.shown)
    assert (store.path.stat().st_mode & 0o777) == 0o600
    assert hash_key(key).encode() in store.path.read_bytes()
    assert key.encode() not in store.path.read_bytes()  # only the hash is stored
    assert store.check(key) == "ci" and store.check(key + "x") is None
    with pytest.raises(KeyStoreError, match="already named 'ci'"):
        store.create("ci")
    store.revoke("ci")
    assert store.check(key) is None and store.active() == 0
    with pytest.raises(KeyStoreError, match="no active key named 'ci'"):
        store.revoke("ci")
    _, again = store.create("ci")  # the name is free again once revoked
    assert store.check(again) == "ci" and [k.revoked is None for k in store.list()] == [False, True]


def test_keys_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    keys = str(tmp_path / "keys.db")
    assert main(["keys", "create", "--name", "laptop", "--keys", keys]) == 0
    key = capsys.readouterr().out.strip()
    assert KeyStore(keys).check(key) == "laptop"
    assert main(["keys", "list", "--keys", keys]) == 0
    listed = capsys.readouterr().out
    assert "laptop" in listed and key[:12] in listed and key not in listed
    assert main(["keys", "revoke", "laptop", "--keys", keys]) == 0
    assert KeyStore(keys).check(key) is None
    assert main(["keys", "revoke", "laptop", "--keys", keys]) == 1
    assert "no active key" in capsys.readouterr().err
    # Beyond loopback without an active key, the server refuses to start.
    assert main(["serve", "--host", "0.0.0.0", "--keys", keys]) == 1
    assert "requires API keys" in capsys.readouterr().err


def test_where_keys_are_required() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("::") and not is_loopback("10.1.2.3")
    assert not is_loopback("example.org")
    assert not Settings(host="127.0.0.1").keys_required
    assert Settings(host="0.0.0.0").keys_required
    assert Settings(host="127.0.0.1", require_keys=True).keys_required


def test_keys_enforced_beyond_loopback(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys.db")
    _, key = store.create("client")
    _, other = store.create("other")
    settings = Settings(
        db=str(tmp_path / "faces.db"), host="0.0.0.0", keys=str(store.path), analysis=False
    )
    with local_client(create_app(settings)) as api:
        missing = api.get("/v1/collections")
        assert missing.status_code == 401 and "API key is required" in missing.json()["error"]
        assert missing.headers["www-authenticate"] == "Bearer"
        wrong = api.get("/v1/collections", headers={"Authorization": "Bearer kao_wrong"})
        assert wrong.status_code == 401 and "unknown or has been revoked" in wrong.json()["error"]
        image = shared_file(PHOTO).read_bytes()
        refused = api.post("/v1/detect", files=[("image", ("a.jpg", image, "image/jpeg"))])
        assert refused.status_code == 401
        assert api.get("/v1/collections", headers={"Authorization": f"Bearer {key}"}).json() == []
        detected = api.post(
            "/v1/detect",
            files=[("image", ("a.jpg", image, "image/jpeg"))],
            headers={"X-API-Key": other},
        )
        assert detected.status_code == 200 and len(detected.json()["faces"]) == 1
        store.revoke("client")  # takes effect at once, no restart
        assert api.get("/v1/collections", headers={"X-API-Key": key}).status_code == 401
        assert api.get("/v1/collections", headers={"X-API-Key": other}).status_code == 200
        health = api.get("/health")  # up or not, without a key; no version or details
        assert health.status_code == 200
        assert health.json() == {"status": "ok", "keys_required": True}
        keyed = api.get("/health", headers={"X-API-Key": other}).json()
        assert keyed["version"] and keyed["database"] == "ok"
        for path in ("/docs", "/openapi.json"):  # closed beyond loopback, open with a key
            assert api.get(path).status_code == 401
            assert api.get(path, headers={"X-API-Key": other}).status_code == 200
    public = dataclasses.replace(settings, public_docs=True)
    with local_client(create_app(public)) as api:
        assert api.get("/openapi.json").status_code == 200 and api.get("/docs").status_code == 200
        assert api.get("/health").json()["version"]
        assert api.get("/v1/collections").status_code == 401


def test_two_workers_share_the_database(url: str, tmp_path: Path) -> None:
    """A real `kao serve --workers 2` on 127.0.0.1: 4 threads enrol 12 faces at once; every
    one is stored, with distinct ids."""
    image = shared_file(PHOTO).read_bytes()
    options = ("--workers", "2", "--threads", "1", "--no-analysis")
    with (
        kao_serve(tmp_path, *options, db=url, env={"KAO_THREADS": "1"}) as base,
        httpx.Client(base_url=base, timeout=30, trust_env=False) as client,
    ):
        assert client.post("/v1/collections", json={"name": "crowd"}).status_code == 201

        def enroll(number: int) -> list[int]:
            response = client.post(
                "/v1/collections/crowd/enroll",
                files=[("images", (f"{number}.jpg", image, "image/jpeg"))],
                data={"person": f"person{number % 3}"},
            )
            assert response.status_code == 201, response.text
            return response.json()["added"]

        with ThreadPoolExecutor(4) as pool:
            added = [i for ids in pool.map(enroll, range(12)) for i in ids]
        faces = client.get("/v1/collections/crowd/faces").json()
        assert len(added) == len(set(added)) == 12
        assert sorted(f["id"] for f in faces) == sorted(added)
        persons = client.get("/v1/collections/crowd/persons").json()
        assert [p["faces"] for p in persons] == [4, 4, 4]
    assert (tmp_path / "serve.log").read_text().count("Started server process") == 2
