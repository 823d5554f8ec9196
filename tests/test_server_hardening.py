"""`kao serve` against hostile but fair clients, in-process (TestClient, real models, real
databases): deep JSON, requests beyond the threads and the queue, work that outlives its
request, cross-site requests and foreign Host names, error bodies that would show server paths,
a broken key file, photos without a face, and collection names that cannot be reached."""

from __future__ import annotations

import io
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from kao.errors import DatabaseError
from kao.gallery.database import FaceDatabase
from kao.server.app import create_app
from kao.server.errors import from_kao_error
from kao.server.keys import KeyStore
from kao.server.settings import Settings
from tests.conftest import shared_file
from tests.serving import local_client

pytest.importorskip("httpx")

PHOTO = "data/lfw/lfw-deepfunneled/Abdoulaye_Wade/Abdoulaye_Wade_0001.jpg"
OTHER = "data/lfw/lfw-deepfunneled/Adam_Sandler/Adam_Sandler_0001.jpg"


def photo(relative: str = PHOTO) -> bytes:
    return shared_file(relative).read_bytes()


def blank() -> bytes:
    """A grey 120 x 120 PNG: an image without a face."""
    stream = io.BytesIO()
    Image.fromarray(np.full((120, 120, 3), 128, np.uint8)).save(stream, "PNG")
    return stream.getvalue()


def files(field: str, *images: tuple[str, bytes]) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [(field, (name, data, "image/jpeg")) for name, data in images]


def error_of(response: Any, status: int) -> str:
    """The message of a JSON error answer of `status`."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == status
    return body["error"]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One loopback app without keys (models load once), on a fresh SQLite file."""
    db = tmp_path_factory.mktemp("hardening") / "faces.db"
    with local_client(create_app(Settings(db=str(db)))) as client:
        yield client


# -- bodies -----------------------------------------------------------------------------------


def test_deeply_nested_json_is_400(api: Any) -> None:
    deep = b'{"image": ' + b"[" * 1000 + b"]" * 1000 + b"}"  # 2 KB, 1,000 levels
    for body in (deep, b"[" * 100_000):
        response = api.post(
            "/v1/detect", content=body, headers={"content-type": "application/json"}
        )
        assert "nested too deeply" in error_of(response, 400)
    create = api.post("/v1/collections", content=deep, headers={"content-type": "application/json"})
    assert "nested too deeply" in error_of(create, 400)


# -- work bounded by threads and queue, stopped with its request ----------------------------


class SlowCalls:
    """A stand-in for a model method that takes `seconds` a call, counting the calls and the
    most that ran at once, around the real method `real`."""

    def __init__(self, real: Callable[..., Any], seconds: float) -> None:
        self.real, self.seconds = real, seconds
        self.calls = self.running = self.peak = 0
        self.started = threading.Event()
        self._lock = threading.Lock()

    def __call__(self, *args: Any, **options: Any) -> Any:
        with self._lock:
            self.calls += 1
            self.running += 1
            self.peak = max(self.peak, self.running)
        self.started.set()
        try:
            time.sleep(self.seconds)
            return self.real(*args, **options)
        finally:
            with self._lock:
                self.running -= 1


def slow_app(tmp_path: Path, **settings: Any) -> Any:
    options = {"analysis": False, **settings}
    return local_client(create_app(Settings(db=str(tmp_path / "faces.db"), **options)))


def test_timed_out_work_stops_and_threads_bound_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Six requests, one thread, 0.3 s each allowed, 1 s of model work each: all get 503;
    only the first one's model call ever ran, the others never started; never two at once."""
    with slow_app(tmp_path, threads=1, timeout=0.3) as client:
        detector = client.app.state.service.embedder.detector
        slow = SlowCalls(detector.detect, 1.0)
        monkeypatch.setattr(detector, "detect", slow)

        def send(number: int) -> int:
            return client.post(
                "/v1/detect", files=files("image", (f"{number}.jpg", photo()))
            ).status_code

        with ThreadPoolExecutor(6) as pool:
            statuses = list(pool.map(send, range(6)))
        time.sleep(1.5)  # the running call ends; nothing else may start
        assert statuses == [503] * 6
        assert slow.peak <= 1 and slow.calls <= 1  # old: 4 at once, all 6 ran


def test_group_stops_between_images(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with slow_app(tmp_path, timeout=0.5) as client:
        embedder = client.app.state.service.embedder
        slow = SlowCalls(embedder.embed, 0.3)
        monkeypatch.setattr(embedder, "embed", slow)
        images = files("images", *[(f"{i}.jpg", photo()) for i in range(10)])
        assert "longer than" in error_of(client.post("/v1/group", files=images), 503)
        time.sleep(1.5)
        assert slow.calls <= 3  # without the stop: all 10, 3 s of work after the 503


def test_enroll_stops_between_photos(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with slow_app(tmp_path, timeout=0.5) as client:
        embedder = client.app.state.service.embedder
        slow = SlowCalls(embedder.embed_one, 0.3)
        monkeypatch.setattr(embedder, "embed_one", slow)
        assert client.post("/v1/collections", json={"name": "c"}).status_code == 201
        images = files("images", *[(f"{i}.jpg", photo()) for i in range(10)])
        response = client.post("/v1/collections/c/enroll", files=images, data={"person": "w"})
        assert "longer than" in error_of(response, 503)
        time.sleep(1.5)
        assert slow.calls <= 3  # without the stop: all 10
        assert client.get("/v1/collections/c/faces").json() == []  # all or nothing


def test_analyze_stops_between_detection_and_analysis(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with slow_app(tmp_path, analysis=True, timeout=0.3) as client:
        analyzer = client.app.state.service.analyzer
        monkeypatch.setattr(analyzer.detector, "detect", SlowCalls(analyzer.detector.detect, 0.8))
        analysis = SlowCalls(analyzer.analyze_faces, 0)
        monkeypatch.setattr(analyzer, "analyze_faces", analysis)
        response = client.post("/v1/analyze", files=files("image", ("w.jpg", photo())))
        assert "longer than" in error_of(response, 503)
        time.sleep(1.0)  # detection ends; the analysis models must not run
        assert analysis.calls == 0


def test_requests_ending_at_any_moment_give_their_place_back(tmp_path: Path) -> None:
    """250 requests with 4 ms to live end at every stage (reading, waiting, working); once
    their threads are done, the one place (a thread, no queue) is free again: the next
    request is admitted and times out itself, it does not find the server "busy"."""
    with slow_app(tmp_path, threads=1, queue=0, timeout=0.004) as client:
        upload = files("image", ("a.jpg", photo()))
        statuses = [client.post("/v1/detect", files=upload).status_code for _ in range(250)]
        # A request whose work beats the timer by a hair is answered; nearly all end early.
        assert set(statuses) <= {200, 503} and statuses.count(503) >= 200
        time.sleep(1.0)
        last = client.post("/v1/detect", files=upload)
        assert last.status_code == 200 or "longer than" in error_of(last, 503)


def test_full_queue_is_503_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with slow_app(tmp_path, threads=1, queue=1, timeout=30) as client:
        detector = client.app.state.service.embedder.detector
        slow = SlowCalls(detector.detect, 2.0)
        monkeypatch.setattr(detector, "detect", slow)

        def send() -> Any:
            return client.post("/v1/detect", files=files("image", ("a.jpg", photo())))

        with ThreadPoolExecutor(2) as pool:
            running = pool.submit(send)
            assert slow.started.wait(10)
            waiting = pool.submit(send)
            time.sleep(0.5)  # the second is in the queue now
            start = time.monotonic()
            refused = send()
            assert time.monotonic() - start < 1.0  # not after the 2 s of the one running
            assert "busy" in error_of(refused, 503) and refused.headers["retry-after"]
            assert running.result().status_code == waiting.result().status_code == 200
        assert slow.peak == 1


# -- browsers: Host and Origin ---------------------------------------------------------------


def test_foreign_host_names_are_refused_on_loopback(api: Any) -> None:
    for host in ("127.0.0.1:8000", "localhost", "LOCALHOST:80", "[::1]:8000"):
        assert api.get("/health", headers={"host": host}).status_code == 200, host
    for host in ("evil.example", "evil.example:8000", "127.0.0.1.evil.example", ""):
        message = error_of(api.get("/health", headers={"host": host}), 400)
        assert "does not answer to the host" in message


def test_allowed_hosts_beyond_loopback(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys.db")
    _, key = store.create("client")
    base = Settings(
        db=str(tmp_path / "faces.db"), host="0.0.0.0", keys=str(store.path), analysis=False
    )
    with local_client(create_app(base)) as client:  # no list: any name (keys protect the API)
        assert client.get("/health", headers={"host": "anything.example"}).status_code == 200
    named = Settings(**{**base.__dict__, "allowed_hosts": ("faces.example",)})
    with local_client(create_app(named)) as client:
        headers = {"x-api-key": key}
        ok = client.get("/v1/collections", headers={**headers, "host": "faces.example:8000"})
        assert ok.status_code == 200
        refused = client.get("/v1/collections", headers={**headers, "host": "evil.example"})
        assert "faces.example" in error_of(refused, 400)


def test_cross_site_changes_are_refused(tmp_path: Path) -> None:
    settings = Settings(db=str(tmp_path / "faces.db"), analysis=False)
    with local_client(create_app(settings)) as client:
        evil = {"origin": "http://evil.example"}
        refused = client.post("/v1/collections", json={"name": "family"}, headers=evil)
        assert "another site" in error_of(refused, 403)
        referred = {"referer": "http://evil.example/page.html"}
        assert (
            client.post("/v1/collections", json={"name": "x"}, headers=referred).status_code == 403
        )
        null = client.post("/v1/collections", json={"name": "x"}, headers={"origin": "null"})
        assert null.status_code == 403
        assert client.get("/v1/collections").json() == []  # nothing was created
        own = {"origin": "http://127.0.0.1"}  # the server's own page (same Host)
        assert (
            client.post("/v1/collections", json={"name": "family"}, headers=own).status_code == 201
        )
        enrol = client.post(
            "/v1/collections/family/enroll",
            files=files("images", ("w.jpg", photo())),
            data={"person": "wade"},
            headers=evil,
        )
        assert enrol.status_code == 403
        assert client.delete("/v1/collections/family", headers=evil).status_code == 403
        assert client.get("/v1/collections/family/faces").json() == []
        read = client.get("/v1/collections", headers=evil)  # reads: allowed, but no CORS
        assert read.status_code == 200 and "access-control-allow-origin" not in read.headers
        assert client.post("/v1/collections", json={"name": "cli"}).status_code == 201  # no Origin


def test_cors_origins_are_allowed(tmp_path: Path) -> None:
    app_origin = "https://app.example"
    settings = Settings(db=str(tmp_path / "faces.db"), analysis=False, cors_origins=(app_origin,))
    with local_client(create_app(settings)) as client:
        preflight = client.options(
            "/v1/collections",
            headers={
                "origin": app_origin,
                "access-control-request-method": "POST",
                "access-control-request-headers": "content-type",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == app_origin
        created = client.post("/v1/collections", json={"name": "a"}, headers={"origin": app_origin})
        assert created.status_code == 201
        assert created.headers["access-control-allow-origin"] == app_origin
        other = client.post(
            "/v1/collections", json={"name": "b"}, headers={"origin": "https://x.example"}
        )
        assert other.status_code == 403


# -- what error bodies show -------------------------------------------------------------------


def test_error_bodies_show_no_server_paths(url: str, tmp_path: Path) -> None:
    with local_client(create_app(Settings(db=url, analysis=False))) as client:
        service = client.app.state.service
        gallery_url = service.database.gallery.url
        locked = from_kao_error(
            DatabaseError(f"{gallery_url}: database is locked"), private=service.private_names
        )
        assert locked.status == 503 and locked.message.endswith(": database is locked")
        assert gallery_url not in locked.message
        missing = client.get("/v1/collections/nobody/persons")
        assert gallery_url not in error_of(missing, 404) and str(tmp_path) not in missing.text
        assert client.post("/v1/collections", json={"name": "family"}).status_code == 201
        source = shared_file(PHOTO)  # enrolled from a server-side file: its path is stored
        FaceDatabase(url, service.embedder).enroll("family", "wade", [source])
        (face,) = client.get("/v1/collections/family/faces").json()
        assert face["source"] == source.name


def test_broken_key_file_is_503_without_its_path(tmp_path: Path) -> None:
    keys = tmp_path / "secret-folder" / "keys.db"
    store = KeyStore(keys)
    _, key = store.create("client")
    settings = Settings(db=str(tmp_path / "faces.db"), keys=str(keys), require_keys=True)
    with local_client(create_app(Settings(**{**settings.__dict__, "analysis": False}))) as client:
        assert client.get("/v1/collections", headers={"x-api-key": key}).status_code == 200
        keys.write_bytes(b"not an SQLite file at all" * 100)
        message = error_of(client.get("/v1/collections", headers={"x-api-key": key}), 503)
        assert "API keys" in message and "secret-folder" not in message


# -- photos without a face, names that cannot be reached --------------------------------------


def test_a_photo_without_a_face_is_an_ordinary_answer(api: Any) -> None:
    grey = ("grey.png", blank())
    assert api.post("/v1/detect", files=files("image", grey)).json()["faces"] == []
    analyzed = api.post("/v1/analyze", files=files("image", grey))
    assert analyzed.status_code == 200 and analyzed.json()["faces"] == []
    grouped = api.post("/v1/group", files=files("images", grey, ("w.jpg", photo())))
    assert grouped.status_code == 200
    assert (grouped.json()["faces"], grouped.json()["errors"]) == (1, [])
    name = f"c{uuid.uuid4().hex[:8]}"
    assert api.post("/v1/collections", json={"name": name}).status_code == 201
    identified = api.post(f"/v1/collections/{name}/identify", files=files("image", grey))
    assert identified.status_code == 200 and identified.json()["faces"] == []
    enrol = api.post(
        f"/v1/collections/{name}/enroll",
        files=files("images", ("w.jpg", photo()), ("o.jpg", photo(OTHER)), grey),
        data={"person": "wade"},
    )
    assert "'images' (grey.png): no face found; nothing was enrolled" in error_of(enrol, 422)
    verify = api.post("/v1/verify", files=files("a", ("w.jpg", photo())) + files("b", grey))
    assert "'b' (grey.png): no face found" in error_of(verify, 422)
    broken = api.post(
        f"/v1/collections/{name}/identify", files=files("image", ("x.jpg", b"GIF89a"))
    )
    assert "x.jpg" in error_of(broken, 422)


def test_collection_names_that_urls_cannot_reach_are_400(api: Any) -> None:
    for name in ("a/b", ".", "..", "a\u202eb", "a\u200bb"):
        message = error_of(api.post("/v1/collections", json={"name": name}), 400)
        assert repr(name) in message
    assert not any("/" in c["collection"] for c in api.get("/v1/collections").json())


def test_health_checks_the_database(postgres_url: str) -> None:
    """A PostgreSQL database that goes away (dropped, its connections ended): /health says
    "unavailable" with 503 instead of "ok"."""
    import psycopg

    name = f"kao_health_{uuid.uuid4().hex[:12]}"
    base, _, _ = postgres_url.rpartition("/")
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
        try:
            url = f"{base}/{name}?connect_timeout=2"  # how long a request waits for it
            settings = Settings(db=url, analysis=False)
            with local_client(create_app(settings)) as client:
                health = client.get("/health")
                assert health.status_code == 200 and health.json()["database"] == "ok"
                admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
                down = client.get("/health")
                assert down.status_code == 503 and down.json()["status"] == "unavailable"
                assert name not in down.json()["database"]
        finally:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
