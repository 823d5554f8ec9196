"""/v1/live, the WebSocket of live video (`kao.server.routes_live`, `kao.live`): the protocol,
on real models and frames built from real LFW photos; its limits, keys and host/origin checks;
hostile frames; and `kao video --json`'s per-frame records, the same shape."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from starlette.websockets import WebSocketDisconnect

from kao.cli import main
from kao.evaluation.synthetic_video import SCENES, Scene, Walk, render, write_scene
from kao.face import DETECTION_KEYS
from kao.gallery.database import FaceDatabase
from kao.geometry import canonical_model
from kao.live import MAX_FRAME_BYTES, LiveSession
from kao.recognition.embedder import DEFAULT_MODEL
from kao.server.app import create_app
from kao.server.keys import KeyStore
from kao.server.routes_live import FAILED, FAILED_NAMES
from kao.server.settings import Settings
from kao.video import VideoAnalyzer
from tests.conftest import lfw_photo, shared_file
from tests.serving import local_client

pytest.importorskip("httpx")

LFW = "data/lfw/lfw-deepfunneled"
WIDER = "data/widerface_val_subset/images"
PAIR = Scene(
    "live pair",
    40,
    (
        Walk("Colin_Powell/Colin_Powell_0040.jpg", 170, ((0, 170, 240), (39, 200, 250))),
        Walk("Serena_Williams/Serena_Williams_0001.jpg", 170, ((0, 470, 240), (39, 440, 230))),
    ),
)
"""Two people side by side, moving a little: Colin Powell on the left, Serena Williams on the
right (640 x 480, 30 fps)."""
ENROLLED = {
    "Colin_Powell": [("Colin_Powell", 49), ("Colin_Powell", 71)],
    "Serena_Williams": [("Serena_Williams", 3), ("Serena_Williams", 14)],
}
"""Other photos of the scene's two people, enrolled in the test collection."""
URL = "ws://127.0.0.1/v1/live"


def scene_frames(scene: Scene = PAIR) -> list[np.ndarray]:
    """The scene's frames, H x W x 3 uint8 RGB (skips the test without ../shared)."""
    return [rgb for rgb, _ in render(scene, shared_file(LFW), shared_file(WIDER))]


def jpeg(rgb: np.ndarray, quality: int = 85) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def enrol(db: str, collection: str = "people") -> None:
    """`ENROLLED` into `collection` of the database `db`."""
    database = FaceDatabase(db)
    try:
        for person, photos in ENROLLED.items():
            database.enroll(collection, person, [lfw_photo(*photo) for photo in photos])
    finally:
        database.close()


@pytest.fixture(scope="module")
def frames() -> list[bytes]:
    return [jpeg(rgb) for rgb in scene_frames()]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A client of an app with the analysis models and a collection "people" of the scene's
    two people."""
    db = str(tmp_path_factory.mktemp("live") / "faces.db")
    enrol(db)
    with local_client(create_app(Settings(db=db))) as test_client:
        yield test_client


def refused(ws: Any) -> tuple[dict[str, Any], int]:
    """The error a refused session gets, and the close code that follows it."""
    error = ws.receive_json()
    with pytest.raises(WebSocketDisconnect) as closed:
        ws.receive_json()
    return error, closed.value.code


def stream(ws: Any, frames: list[bytes]) -> list[dict[str, Any]]:
    """Each frame's answer, the next frame sent once the previous one's answer came."""
    answers = []
    for data in frames:
        ws.send_bytes(data)
        answers.append(ws.receive_json())
    return answers


def test_tracked_faces_with_names_and_landmarks(client: Any, frames: list[bytes]) -> None:
    with client.websocket_connect(f"{URL}?collection=people&landmarks=true&refresh=5") as ws:
        ready = ws.receive_json()
        answers = stream(ws, frames[:24])
    assert ready["type"] == "ready"
    assert ready["options"] == {
        "collection": "people",
        "model": None,
        "attributes": True,
        "landmarks": True,
        "refresh": 5,
    }
    model = canonical_model()
    assert np.array_equal(ready["triangles"], model.triangles)
    assert np.allclose(ready["uvs"], model.uvs, atol=1e-5)
    assert [a["type"] for a in answers] == ["frame"] * 24
    assert [a["frame"] for a in answers] == list(range(24))
    times = [a["time"] for a in answers]
    assert times[0] == 0 and times == sorted(times) and times[-1] > 0
    assert all(a["width"] == 640 and a["height"] == 480 and a["latency_ms"] > 0 for a in answers)
    assert answers[0]["faces"] == []  # a track is confirmed on its second detection
    left_to_right = [f["track_id"] for f in sorted(answers[1]["faces"], key=lambda f: f["box"][0])]
    assert sorted(left_to_right) == [1, 2]
    # Names and attributes come from batches run beside the frames (kao.live): a few frames
    # after the tracks start, then on every frame.
    named = [bool(a["faces"]) and all(f["identity"] for f in a["faces"]) for a in answers]
    first = named.index(True)
    assert 1 < first < 20 and all(named[first:])
    for number, answer in enumerate(answers[1:], 1):
        faces = sorted(answer["faces"], key=lambda f: f["box"][0])
        assert [f["track_id"] for f in faces] == left_to_right
        for face in faces:
            assert face["detected"]
            assert len(face["mesh"]) == 468 and len(face["iris"]) == 10
            assert len(face["landmarks_68"]) == 68
            assert set(face["pose"]) == {"yaw", "pitch", "roll"}
            assert {"yaw", "pitch", "right_eye", "left_eye"} <= set(face["gaze"])
        if number >= first:
            assert [f["identity"] for f in faces] == ["Colin_Powell", "Serena_Williams"]
            assert all(10 < f["age"] < 90 for f in faces)
            assert all(abs(sum(f["emotion"].values()) - 1) < 1e-3 for f in faces)
    faces = sorted(answers[-1]["faces"], key=lambda f: f["box"][0])
    assert [f["gender"]["label"] for f in faces] == ["male", "female"]


def test_tracking_only_sends_the_detection_records(client: Any, frames: list[bytes]) -> None:
    with client.websocket_connect(f"{URL}?attributes=false") as ws:
        ws.receive_json()
        answers = stream(ws, frames[:4])
    for answer in answers[1:]:
        assert len(answer["faces"]) == 2
        for face in answer["faces"]:
            assert set(face) == {"track_id", "identity", "detected", *DETECTION_KEYS}
            assert face["identity"] is None


def test_bad_frames_are_answered_and_the_session_goes_on(client: Any, frames: list[bytes]) -> None:
    huge = Image.new("RGB", (5000, 5000), (90, 90, 90))  # 25 Mpx, a small PNG
    buffer = io.BytesIO()
    huge.save(buffer, "PNG")
    bad = {
        "corrupt JPEG": (frames[0][:300], 422),
        "not an image": (b"\x00" * 1000, 422),
        "over the byte limit": (frames[0] + b"\x00" * MAX_FRAME_BYTES, 413),
        "over the pixel limit": (buffer.getvalue(), 413),
    }
    with client.websocket_connect(f"{URL}?attributes=false") as ws:
        ws.receive_json()
        first = stream(ws, frames[:2])
        for name, (data, status) in bad.items():
            ws.send_bytes(data)
            error = ws.receive_json()
            assert error["type"] == "error" and error["status"] == status, name
            assert error["error"].startswith("frame: "), name
        ws.send_text(json.dumps({"hello": 1}))
        text = ws.receive_json()
        after = stream(ws, frames[2:4])
    assert text == {
        "type": "error",
        "status": 400,
        "error": "frames go as binary messages (JPEG or PNG images)",
    }
    assert [a["frame"] for a in first + after] == [0, 1, 2, 3]
    assert [len(a["faces"]) for a in after] == [2, 2]
    assert {f["track_id"] for f in after[-1]["faces"]} == {f["track_id"] for f in first[1]["faces"]}


def test_frames_sent_while_one_is_in_work_are_dropped(client: Any, frames: list[bytes]) -> None:
    with client.websocket_connect(f"{URL}?attributes=false") as ws:
        ws.receive_json()
        for data in frames[:10]:  # without waiting for answers
            ws.send_bytes(data)
        answers = [ws.receive_json() for _ in range(10)]
        later = stream(ws, frames[10:11])
    kinds = [a["type"] for a in answers]
    dropped = [a for a in answers if a["type"] == "error"]
    assert kinds[0] in ("frame", "error") and 1 <= kinds.count("frame") < 10
    assert all(a["status"] == 429 and "dropped" in a["error"] for a in dropped)
    done = [a["frame"] for a in answers if a["type"] == "frame"]
    assert done == list(range(len(done)))  # a dropped frame takes no index
    assert later[0]["type"] == "frame" and later[0]["frame"] == len(done)


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ("refresh=0", 422, "refresh must be 1 to 1000, got 0"),
        ("attributes=maybe", 422, "attributes must be true or false, got 'maybe'"),
        ("collection=nobody", 404, "nobody"),
        ("collection=people&model=nope", 422, "nope"),
        ("collection=people&model=dlib_resnet_v1", 409, f"{DEFAULT_MODEL} embeddings, not dlib"),
    ],
)
def test_bad_options_refuse_the_session(client: Any, query: str, status: int, message: str) -> None:
    with client.websocket_connect(f"{URL}?{query}") as ws:
        error, code = refused(ws)
    assert error["type"] == "error" and error["status"] == status
    assert message in error["error"]
    assert code == 1008


def test_other_sites_and_hosts_are_refused(client: Any, frames: list[bytes]) -> None:
    with client.websocket_connect(URL, headers={"origin": "https://evil.example"}) as ws:
        error, code = refused(ws)
    assert (error["status"], code) == (403, 1008)
    assert "another site (https://evil.example)" in error["error"]
    with client.websocket_connect("ws://rebound.example/v1/live") as ws:
        error, code = refused(ws)
    assert (error["status"], code) == (400, 1008)
    own = {"origin": "http://127.0.0.1"}
    with client.websocket_connect(f"{URL}?attributes=false", headers=own) as ws:
        assert ws.receive_json()["type"] == "ready"
        assert stream(ws, frames[:1])[0]["type"] == "frame"


@pytest.fixture(scope="module")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, str]]:
    """A client of an app that requires keys (no analysis models), and a valid key."""
    folder = tmp_path_factory.mktemp("keys")
    store = KeyStore(folder / "keys.db")
    _, key = store.create("camera")
    store.create("old")
    store.revoke("old")
    settings = Settings(
        db=str(folder / "faces.db"),
        require_keys=True,
        keys=str(store.path),
        analysis=False,
        header_timeout=1,
    )
    with local_client(create_app(settings)) as test_client:
        yield test_client, key


def test_keys_apply(keyed: tuple[Any, str], frames: list[bytes]) -> None:
    client, key = keyed
    query = f"{URL}?attributes=false"
    for headers in ({"x-api-key": key}, {"authorization": f"Bearer {key}"}):
        with client.websocket_connect(query, headers=headers) as ws:
            assert ws.receive_json()["type"] == "ready"
            assert stream(ws, frames[:1])[0]["type"] == "frame"
    with client.websocket_connect(query) as ws:  # a browser: the key as the first message
        ws.send_text(json.dumps({"key": key}))
        assert ws.receive_json()["type"] == "ready"
    with client.websocket_connect(query) as ws:
        ws.send_text(json.dumps({"key": "kao_not_a_key"}))
        error, code = refused(ws)
    assert (error["status"], code) == (401, 1008)
    assert "unknown or has been revoked" in error["error"]
    with client.websocket_connect(query) as ws:  # no key: refused after header_timeout
        error, code = refused(ws)
    assert (error["status"], code) == (401, 1008)
    assert "an API key is required" in error["error"]
    with client.websocket_connect(query) as ws:  # a frame is no key
        ws.send_bytes(frames[0])
        error, code = refused(ws)
    assert (error["status"], code) == (401, 1008)
    with client.websocket_connect(f"{URL}?attributes=true", headers={"x-api-key": key}) as ws:
        error, code = refused(ws)
    assert (error["status"], code) == (503, 1008)
    assert "analysis models are turned off" in error["error"]


def test_a_silent_connection_is_closed(tmp_path: Path) -> None:
    settings = Settings(db=str(tmp_path / "faces.db"), analysis=False, timeout=1)
    with (
        local_client(create_app(settings)) as client,
        client.websocket_connect(f"{URL}?attributes=false") as ws,
    ):
        assert ws.receive_json()["type"] == "ready"
        error = ws.receive_json()
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert error == {"type": "error", "status": 408, "error": "no frame for 1 s: closing"}
    assert closed.value.code == 1001


def test_video_json_has_the_live_records(
    tmp_path: Path, client: Any, frames: list[bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "frames"
    write_scene(PAIR, folder, shared_file(LFW), shared_file(WIDER))
    assert main(["video", str(folder), "--json", "--no-attributes", "--max-frames", "6"]) == 0
    per_frame = json.loads(capsys.readouterr().out)["per_frame"]
    with client.websocket_connect(f"{URL}?attributes=false") as ws:
        ws.receive_json()
        live = stream(ws, frames[:6])
    assert [r["frame"] for r in per_frame] == list(range(6))
    assert [r["time"] for r in per_frame] == [round(i / 30, 3) for i in range(6)]
    for record, answer in zip(per_frame, live, strict=True):
        assert set(answer) == {*record, "type", "width", "height", "latency_ms"}
        assert [set(face) for face in record["faces"]] == [set(face) for face in answer["faces"]]
        assert len(record["faces"]) == len(answer["faces"])
        for ours, theirs in zip(record["faces"], answer["faces"], strict=True):
            assert ours["track_id"] == theirs["track_id"]
            assert np.allclose(ours["box"], theirs["box"], atol=6)  # JPEG q95 against q85


def test_the_api_documentation_describes_the_websocket(client: Any) -> None:
    info = client.get("/openapi.json").json()["info"]["description"]
    assert "the WebSocket `/v1/live`" in info
    assert f"at most {MAX_FRAME_BYTES // 2**20} MiB" in info


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of a real `kao serve` (no analysis models)."""
    from kao.evaluation.loadtest import Server

    folder = tmp_path_factory.mktemp("served")
    with Server(str(folder / "faces.db"), folder / "serve.log", "--no-analysis") as server:
        yield server.base


def test_a_flooding_slow_client_holds_up_only_itself(served: str, frames: list[bytes]) -> None:
    """Over real sockets (`kao serve`): a client that sends 360 frames without reading any
    answer gets each one answered once (the frames beyond the one in work dropped with 429,
    nothing queued), while another client streams and /health answers meanwhile."""
    import threading

    import httpx
    from websockets.sync.client import connect

    url = served.replace("http://", "ws://") + "/v1/live?attributes=false"
    with connect(url, max_size=None) as slow, connect(url, max_size=None) as other:
        assert json.loads(slow.recv(timeout=30))["type"] == "ready"
        assert json.loads(other.recv(timeout=30))["type"] == "ready"
        flood = threading.Thread(target=lambda: [slow.send(f) for f in frames * 8 + frames])
        flood.start()
        answers = []
        for data in frames[:5]:
            other.send(data)
            answers.append(json.loads(other.recv(timeout=30)))
        assert httpx.get(served + "/health", timeout=10).status_code == 200
        flood.join(timeout=60)
        assert not flood.is_alive()
        replies = [json.loads(slow.recv(timeout=30)) for _ in range(len(frames) * 9)]
    assert [a["type"] for a in answers] == ["frame"] * 5
    assert [len(a["faces"]) for a in answers[1:]] == [2] * 4
    done = [r for r in replies if r["type"] == "frame"]
    dropped = [r for r in replies if r["type"] == "error"]
    assert {r["status"] for r in dropped} == {429}
    assert len(done) + len(dropped) == len(replies) and 1 <= len(done) < len(replies) // 2


def test_a_face_that_leaves_and_returns_gets_a_new_track_and_its_name(client: Any) -> None:
    frames = [jpeg(rgb) for rgb in scene_frames(SCENES["reentry"])]  # Serena away 30 frames
    with client.websocket_connect(f"{URL}?collection=people&attributes=false") as ws:
        ws.receive_json()
        answers = stream(ws, frames)
    serena = [
        {f["track_id"] for f in a["faces"] if f["identity"] == "Serena_Williams"} for a in answers
    ]
    before, after = set().union(*serena[:25]), set().union(*serena[60:])
    assert len(before) == 1 and len(after) == 1 and before != after
    assert all(len(a["faces"]) == 1 for a in answers[35:50])  # only Colin Powell meanwhile
    assert {f["identity"] for f in answers[-1]["faces"]} == {"Colin_Powell", "Serena_Williams"}


def test_a_failure_on_a_frame_is_answered_and_the_session_goes_on(
    client: Any, frames: list[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug in a frame's work gets a 500 answer for that frame; one in the identification
    beside the frames gets a 500 message of its own; the frames go on being answered."""
    process = LiveSession.process
    calls = []

    def failing_once(self: LiveSession, data: bytes, received: float | None = None) -> Any:
        calls.append(data)
        if len(calls) == 2:
            raise ValueError("a bug")
        return process(self, data, received)

    def failing(*_: Any) -> None:
        raise ValueError("another bug")

    monkeypatch.setattr(LiveSession, "process", failing_once)
    monkeypatch.setattr(VideoAnalyzer, "_describe", failing)
    answers, failures = [], []
    with client.websocket_connect(f"{URL}?collection=people&attributes=false") as ws:
        ws.receive_json()
        for data in frames[:8]:
            ws.send_bytes(data)
            while (message := ws.receive_json())["type"] == "warning":
                failures.append(message)
            answers.append(message)
    assert [a["type"] for a in answers] == ["frame", "error"] + ["frame"] * 6
    assert answers[1] == {"type": "error", "status": 500, "error": FAILED}
    assert [a["frame"] for a in answers if a["type"] == "frame"] == list(range(7))
    assert failures and all(f["status"] == 500 and f["error"] == FAILED_NAMES for f in failures)
    assert all(f["identity"] is None for a in answers[2:] for f in a["faces"])
    assert [len(a["faces"]) for a in answers[3:]] == [2] * 5


def test_the_benchmark_client_streams_at_the_cameras_pace(served: str, frames: list[bytes]) -> None:
    """`kao bench live`'s client: 40 frames at 30 fps (1.3 s), one in flight."""
    from kao.evaluation.bench_live import stream

    url = served.replace("http://", "ws://") + "/v1/live?attributes=false"
    report = stream(url, frames, 30.0)
    assert report["camera_frames"] == len(frames) and report["errors"] == 0
    assert 0 < report["answered"] <= len(frames)
    assert 0 < report["fps"] <= 30.5
    assert 0 < report["server_p50_ms"] <= report["p50_ms"] <= report["p95_ms"]
    assert 1.5 <= report["faces_mean"] <= 2  # two people, tracked from their second frame
    assert report["faces_with_attributes"] == 0


def test_the_upload_limit_of_the_server_applies_to_frames(
    tmp_path: Path, frames: list[bytes]
) -> None:
    settings = Settings(db=str(tmp_path / "faces.db"), analysis=False, max_upload=50_000)
    with (
        local_client(create_app(settings)) as client,
        client.websocket_connect(f"{URL}?attributes=false") as ws,
    ):
        assert ws.receive_json()["max_frame_bytes"] == 50_000
        small = jpeg(scene_frames()[0], quality=40)
        answers = stream(ws, [frames[0], small])
    assert len(frames[0]) > 50_000 > len(small)
    assert answers[0]["status"] == 413 and "over 50000" in answers[0]["error"]
    assert answers[1]["type"] == "frame"
