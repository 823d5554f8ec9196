"""/v1/live: a WebSocket that takes a camera's frames and answers each with its tracked faces
(`kao.live`).

Query parameters: ``collection`` (name the tracks from it; default none), ``model`` (the
recognition model; default the collection's), ``attributes`` (true/false, default true: age,
gender, emotion, mask smoothed per track), ``landmarks`` (true/false, default false: FaceMesh
on every face of every frame: 468 mesh and iris points, 68 points, pose, gaze), ``refresh``
(frames between two identifications / attribute runs of a track, 1-1000, default
`kao.live.DEFAULT_REFRESH`, 30).

The client sends each frame as one binary message (JPEG, PNG, WebP: what Pillow reads) and
gets one JSON text message per frame: ``{"type": "frame", "frame", "time", "faces", "width",
"height", "latency_ms"}``, the faces as the per-frame records of `kao video --json`. First the
server sends ``{"type": "ready", "options", "max_frame_bytes", "max_frame_pixels",
"triangles", "uvs"}`` (the mesh's triangles and the canonical face's texture coordinates).
One frame is worked on at a time per connection: a frame that comes before the previous one's
answer is dropped and answered ``{"type": "error", "status": 429, ...}``; a frame that cannot
be used (over `kao.live.MAX_FRAME_BYTES`, or the server's upload limit when lower, or over
`kao.live.MAX_FRAME_PIXELS`: 413; not an image: 422; a text message: 400) gets such an error
too and the session goes on. Model work holds one of the server's threads (`Service.run`), so a
busy server answers 503 for a frame, and a frame that takes longer than the request timeout
gets 503; a bug answers 500. Every frame gets exactly one answer, "frame" or "error".

Names and attributes do not hold the frames up: the tracks due for them are identified and
analysed beside the frames, in a thread slot of their own (`kao.live`), and show in the
answers of the frames after. Should that fail, the client gets ``{"type": "warning",
"status", "error"}`` and the frames go on.

API keys: as for the HTTP API, in the ``X-API-Key`` or ``Authorization: Bearer`` header of
the handshake, or (browsers cannot set those) as the first message, text ``{"key": "..."}``.
The host and origin checks of `kao.server.guard` apply to the handshake. A refused session
gets ``{"type": "error", "status", "error"}`` and is closed with code 1008 (policy); a
connection silent for the request timeout is closed with 1001."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import Any

import anyio
from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.datastructures import Headers

from kao.errors import KaoError
from kao.gallery.store import model_conflict
from kao.live import (
    DEFAULT_REFRESH,
    MAX_FRAME_BYTES,
    MAX_FRAME_PIXELS,
    LiveOptions,
    LiveSession,
    SessionBusy,
    canonical_layout,
)
from kao.server.auth import check_key
from kao.server.errors import ApiError, from_kao_error
from kao.server.guard import host_problem, origin_of
from kao.server.service import Service

router = APIRouter()
DESCRIPTION = (
    "**Live video: the WebSocket `/v1/live`** (not in the list below, which OpenAPI cannot "
    "describe). Query: `collection` (names from it), `model` (default: the collection's), "
    "`attributes` (true/false, default true), `landmarks` (default false: 468 mesh and iris "
    "points, 68 points, pose and gaze on every frame), `refresh` (frames between two "
    f"identifications of a track, default {DEFAULT_REFRESH}). Send each frame as one binary "
    "message (JPEG "
    f"or PNG, at most {MAX_FRAME_BYTES // 2**20} MiB, or --max-upload-mb when lower, and "
    f"{MAX_FRAME_PIXELS:,} pixels), the "
    'next one after the previous answer. The server sends `{"type": "ready", "options", '
    '"triangles", "uvs", ...}` first, then per frame `{"type": "frame", "frame", '
    '"time", "width", "height", "latency_ms", "faces": [{"track_id", '
    '"identity", "detected", "box", "score", "keypoints", ...}]}` (the per-frame '
    'records of `kao video --json`), or `{"type": "error", "status", "error"}` for a '
    "frame it cannot use (400 text, 413 too large, 422 not an image, 429 sent before the "
    "previous answer: dropped, 503 busy); the session goes on. Every frame gets exactly one "
    "of those two answers; a failure of the identification or attributes, which run beside "
    'the frames, comes as `{"type": "warning", "status", "error"}`. '
    "API keys as for the HTTP API "
    '(X-API-Key or Authorization header), or in a first text message `{"key": "..."}`; '
    "a refused session gets an error message and close code 1008."
)
"""The endpoint's documentation in the API's description (/docs)."""
_log = logging.getLogger("kao.server")
POLICY = 1008
"""Close code of a refused session (RFC 6455: policy violation)."""
GOING_AWAY = 1001
"""Close code of a session closed for silence."""
MAX_REFRESH = 1000
FAILED = "the server failed on this frame (its log has the details); the session goes on"
FAILED_NAMES = (
    "the server failed to identify or analyse faces (its log has the details); the frames "
    "are still answered"
)


class Refused(Exception):
    """The session cannot start: `status` and `message` go to the client before closing."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _flag(value: str | None, name: str, default: bool) -> bool:
    if value is None:
        return default
    if value.lower() in ("true", "1", "yes", "on"):
        return True
    if value.lower() in ("false", "0", "no", "off"):
        return False
    raise Refused(422, f"{name} must be true or false, got {value!r}")


def options_of(query: dict[str, str]) -> LiveOptions:
    """The session's options from the handshake's query parameters; `Refused` 422 naming the
    bad one."""
    refresh_text = query.get("refresh", str(DEFAULT_REFRESH))
    try:
        refresh = int(refresh_text)
    except ValueError:
        raise Refused(422, f"refresh must be a whole number, got {refresh_text!r}") from None
    if not 1 <= refresh <= MAX_REFRESH:
        raise Refused(422, f"refresh must be 1 to {MAX_REFRESH}, got {refresh}")
    return LiveOptions(
        collection=query.get("collection") or None,
        model=query.get("model") or None,
        attributes=_flag(query.get("attributes"), "attributes", True),
        landmarks=_flag(query.get("landmarks"), "landmarks", False),
        refresh=refresh,
    )


def handshake_problem(svc: Service, headers: Headers) -> str | None:
    """Why the handshake is refused by `kao.server.guard`'s rules, or None: a Host the server
    does not answer to, or a web page of another origin (browsers always send Origin on a
    WebSocket; a page of another site must not stream to this server and read the names)."""
    host = headers.get("host", "")
    problem = host_problem(host, svc.settings.host_names)
    if problem is not None:
        return problem
    origin = headers.get("origin")
    if origin is None:
        return None
    origin = origin_of(origin)
    if origin in svc.settings.cors_origins or origin.partition("://")[2] == host.strip().lower():
        return None
    return (
        f"a WebSocket from the web page of another site ({origin}) is refused: only this "
        "server's own page, or an origin given to kao serve --cors-origins, may stream"
    )


def _header_key(headers: Headers) -> str | None:
    key = headers.get("x-api-key")
    if key:
        return key
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def _first_key(websocket: WebSocket, wait: float) -> str | None:
    """The key of the first message, text {"key": "..."}, waited for `wait` seconds; None
    when it does not come, is binary or holds no key."""
    try:
        message = await asyncio.wait_for(websocket.receive(), wait)
    except TimeoutError:
        return None
    text = message.get("text")
    if not text:
        return None
    try:
        key = json.loads(text).get("key")
    except (ValueError, AttributeError):
        return None
    return key if isinstance(key, str) else None


def _is_key(text: str | None) -> bool:
    """Whether a text message is {"key": ...} (the page sends its key whether or not the
    server requires one)."""
    try:
        return text is not None and "key" in json.loads(text)
    except (ValueError, TypeError):
        return False


def _open(svc: Service, options: LiveOptions) -> LiveSession:
    """The session (in a worker thread: checking the collection reads the database)."""
    analyzer = None
    if options.attributes or options.landmarks:
        analyzer = svc.require_analyzer()
    database = None
    if options.collection is not None:
        database = svc.collection_database(options.model)
        try:
            database.gallery.revision(options.collection)  # the collection must exist
            held = options.model and database.gallery.other_model(options.collection, options.model)
            if held:  # refused now, not at the first identification
                raise model_conflict(options.collection, held, options.model or "", "identify")
        except KaoError as error:
            raise from_kao_error(error, private=svc.private_names) from None
    limit = min(MAX_FRAME_BYTES, svc.settings.max_upload)  # kao serve --max-upload-mb
    return LiveSession(options, analyzer=analyzer, database=database, max_bytes=limit)


async def _start(websocket: WebSocket, svc: Service) -> LiveSession:
    """The checked session of this handshake, or `Refused`."""
    problem = handshake_problem(svc, websocket.headers)
    if problem is not None:
        raise Refused(403 if "another site" in problem else 400, problem)
    options = options_of(dict(websocket.query_params))
    if svc.settings.keys_required:
        given = _header_key(websocket.headers) or await _first_key(
            websocket, svc.settings.header_timeout
        )
        try:
            await anyio.to_thread.run_sync(check_key, svc, given)
        except ApiError as error:
            raise Refused(error.status, error.message) from None
    try:
        return await svc.run(_open, svc, options)
    except ApiError as error:
        raise Refused(error.status, error.message) from None


def _error(status: int, message: str) -> dict[str, Any]:
    return {"type": "error", "status": status, "error": message}


@router.websocket("/live")
async def live(websocket: WebSocket) -> None:
    """The live session of one connection (see the module's docstring)."""
    svc: Service = websocket.app.state.service
    await websocket.accept()
    try:
        session = await _start(websocket, svc)
    except Refused as refused:
        await websocket.send_json(_error(refused.status, refused.message))
        await websocket.close(POLICY, refused.message[:120])
        return
    sending = asyncio.Lock()

    async def send(message: dict[str, Any]) -> None:
        async with sending:
            await websocket.send_json(message)

    describing: asyncio.Task[None] | None = None

    async def describe() -> None:
        """The identification / attributes that the frames set aside, in a worker thread."""
        try:
            await svc.run(session.describe)
            return
        except ApiError as error:
            if error.status == 503:  # busy: the next frame's answer tries again
                return
            problem = error
        except KaoError as error:
            problem = from_kao_error(error, None, svc.private_names)
        except Exception:
            _log.exception("kao serve: /v1/live failed to identify or analyse faces")
            problem = ApiError(500, FAILED_NAMES)
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            await send(_error(problem.status, problem.message) | {"type": "warning"})

    async def answer(data: bytes, received: float) -> None:
        nonlocal describing
        try:
            with anyio.fail_after(svc.settings.timeout):
                record = await svc.run(session.process, data, received)
        except TimeoutError:
            record = _error(503, f"the frame took longer than {svc.settings.timeout:g} s")
        except SessionBusy as error:
            record = _error(429, str(error))
        except ApiError as error:
            record = _error(error.status, error.message)
        except KaoError as error:
            api_error = from_kao_error(error, "frame", svc.private_names)
            record = _error(api_error.status, api_error.message)
        except Exception:  # a bug: the client still gets its answer, and the log the trace
            _log.exception("kao serve: /v1/live failed on a frame")
            record = _error(500, FAILED)
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            await send(record)
        if session.pending and (describing is None or describing.done()):
            describing = asyncio.create_task(describe())

    ready = {"type": "ready", "options": session.options.to_dict()}
    ready |= {"max_frame_bytes": session.max_bytes, "max_frame_pixels": session.max_pixels}
    await send(ready | canonical_layout())
    working: asyncio.Task[None] | None = None
    try:
        while True:
            try:
                message = await asyncio.wait_for(websocket.receive(), svc.settings.timeout)
            except TimeoutError:
                await send(_error(408, f"no frame for {svc.settings.timeout:g} s: closing"))
                await websocket.close(GOING_AWAY, "idle")
                return
            if message["type"] == "websocket.disconnect":
                return
            received = time.monotonic()
            data = message.get("bytes")
            if data is None:
                if not _is_key(message.get("text")):  # a key sent anyway is no mistake
                    await send(_error(400, "frames go as binary messages (JPEG or PNG images)"))
            elif working is not None and not working.done():
                await send(_error(429, "frame dropped: the previous one is still in work"))
            else:
                working = asyncio.create_task(answer(data, received))
    except (WebSocketDisconnect, RuntimeError):
        return
    finally:
        for task in (working, describing):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
