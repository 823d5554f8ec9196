"""Limits on every request: the size of its body and the time it may take.

`Limits` is ASGI middleware. A body announced (Content-Length) or found while reading to be
larger than `max_upload` bytes is refused with 413 before more of it is read; a request that
has not answered after `timeout` seconds gets a 503, and its work is told to stop: it does
not start if it was still waiting for a thread, and stops at its next step if it was running
(see `kao.server.service`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import anyio

from kao.server.errors import ApiError, error_response

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


def too_large(limit: int) -> ApiError:
    return ApiError(413, f"the request body is larger than the limit of {limit} bytes")


class Limits:
    """Middleware refusing bodies over `max_upload` bytes (413) and answering 503 to requests
    that take longer than `timeout` seconds."""

    def __init__(self, app: App, max_upload: int, timeout: float) -> None:
        self.app = app
        self.max_upload = max_upload
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        announced = dict(scope["headers"]).get(b"content-length")
        if announced is not None:
            try:
                length = int(announced)
            except ValueError:
                await error_response(400, "the Content-Length header is not a number")(
                    scope, receive, send
                )
                return
            if length > self.max_upload:
                error = too_large(self.max_upload)
                await error_response(error.status, error.message)(scope, receive, send)
                return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_upload:
                    raise too_large(self.max_upload)  # answered by the app's error handler
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        with anyio.move_on_after(self.timeout) as deadline:
            await self.app(scope, counted, watched)
        if deadline.cancelled_caught and not started:
            response = error_response(
                503,
                f"the request took longer than the server's limit of {self.timeout:g} s; "
                "try a smaller image or fewer images, or retry later",
                {"Retry-After": "5"},
            )
            await response(scope, receive, send)
