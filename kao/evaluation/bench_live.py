"""The live WebSocket's speed (`kao bench live`): a client on 127.0.0.1 streams a 640 x 480
video at the camera's pace through ``/v1/live`` of a real `kao serve`, as the web page does,
and measures the frames answered per second and the latency from a frame sent to its answer.

The client behaves like the page: the "camera" makes a frame every 1/fps s (the frames of the
`kao bench video` scene, 1-3 faces built from LFW photos, JPEG-encoded beforehand, as a browser
hands them over); the client sends the newest frame as soon as the previous answer has come,
so at most one frame is in flight and the frames made meanwhile are skipped. Each setting
first streams `WARM_UP` frames untimed (the models' first runs).
"""

from __future__ import annotations

import io
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from kao.evaluation.bench_speed import machine
from kao.evaluation.loadtest import Server
from kao.evaluation.synthetic_video import FPS, SCENES, render

SETTINGS = {
    "tracking": "attributes=false",
    "attributes": "attributes=true",
    "landmarks": "attributes=true&landmarks=true",
}
"""The settings measured, by name: their /v1/live query (tracking only; with age, gender,
emotion and mask; with those and FaceMesh on every face of every frame, for the page's
overlays)."""
WARM_UP = 10
JPEG_QUALITY = 80
"""About what browsers' canvas.toBlob("image/jpeg", 0.8) gives."""


def encode_frames(lfw: Path, wider: Path) -> list[bytes]:
    """The 300 frames of the bench scene (640 x 480, 1-3 faces), JPEG-encoded."""
    frames = []
    for rgb, _ in render(SCENES["bench"], lfw, wider):
        buffer = io.BytesIO()
        Image.fromarray(rgb).save(buffer, "JPEG", quality=JPEG_QUALITY)
        frames.append(buffer.getvalue())
    return frames


def stream(url: str, frames: list[bytes], fps: float) -> dict[str, Any]:
    """Stream `frames` at `fps` to the WebSocket `url` (see the module's docstring); the
    answered frames per second, the round-trip and the server's latencies (ms, p50/p95), the
    mean number of faces per answer and the share of them with attributes (age) set."""
    from websockets.sync.client import connect

    with connect(url, max_size=None, open_timeout=30) as ws:
        ready = json.loads(ws.recv(timeout=60))
        if ready.get("type") != "ready":
            raise RuntimeError(f"/v1/live refused the session: {ready}")
        for data in frames[:WARM_UP]:
            ws.send(data)
            _answer(ws)
        round_trips: list[float] = []
        server: list[float] = []
        faces: list[int] = []
        described = 0
        errors = 0
        start = time.monotonic()
        last = -1
        while True:
            now = time.monotonic()
            index = int((now - start) * fps)
            if index >= len(frames):
                break
            if index == last:  # wait for the camera's next frame
                time.sleep(start + (index + 1) / fps - now)
                continue
            ws.send(frames[index])
            answer = _answer(ws)
            round_trips.append(1000 * (time.monotonic() - now))
            last = index
            if answer["type"] != "frame":
                errors += 1
                continue
            server.append(answer["latency_ms"])
            faces.append(len(answer["faces"]))
            described += sum(face.get("age") is not None for face in answer["faces"])
        seconds = time.monotonic() - start
    return {
        "fps": round(len(server) / seconds, 1),
        "answered": len(server),
        "camera_frames": len(frames),
        "errors": errors,
        "p50_ms": _percentile(round_trips, 50),
        "p95_ms": _percentile(round_trips, 95),
        "server_p50_ms": _percentile(server, 50),
        "server_p95_ms": _percentile(server, 95),
        "faces_mean": round(statistics.fmean(faces), 2) if faces else 0.0,
        "faces_with_attributes": round(described / max(1, sum(faces)), 3),
    }


def _answer(ws: Any) -> dict[str, Any]:
    """The next answer to a frame ("frame" or "error"); a "warning" (the identification or
    attributes beside the frames failed) raises RuntimeError: the figures would not be
    those of the setting."""
    message = json.loads(ws.recv(timeout=60))
    if message["type"] == "warning":
        raise RuntimeError(f"/v1/live: {message['error']}")
    return message


def _percentile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 1) if values else None


def bench_live(
    lfw: Path, wider: Path, *, fps: float = FPS, settings: tuple[str, ...] = tuple(SETTINGS)
) -> dict[str, Any]:
    """Start `kao serve` (127.0.0.1, a free port, a temporary database) and `stream` the bench
    scene at `fps` for each of `settings` (names of `SETTINGS`); the JSON-ready report, with
    the load average (1 minute) before and after, and as each setting started."""
    frames = encode_frames(lfw, wider)
    report: dict[str, Any] = {
        "machine": machine(),
        "video": {"width": 640, "height": 480, "frames": len(frames), "fps": fps},
        "load_average_before": [round(v, 2) for v in os.getloadavg()],
        "settings": {},
    }
    with (
        tempfile.TemporaryDirectory() as folder,
        Server(str(Path(folder) / "faces.db"), Path(folder) / "serve.log") as server,
    ):
        base = server.base.replace("http://", "ws://")
        for name in settings:
            url = f"{base}/v1/live?{SETTINGS[name]}"
            load = round(os.getloadavg()[0], 2)
            figures = stream(url, frames, fps)
            report["settings"][name] = {"query": SETTINGS[name], "load_average": load, **figures}
    report["load_average_after"] = [round(v, 2) for v in os.getloadavg()]
    return report
