"""Connections that never finish their request head are closed.

uvicorn closes an idle keep-alive connection after ``timeout_keep_alive`` seconds, but waits
forever for a connection that opened and sent part of a request line or headers (or nothing
at all): enough of them exhaust the server. `HeadTimeoutProtocol` is uvicorn's h11 protocol
that closes a connection whose request head is not complete `Settings.header_timeout`
seconds after it opened or after its previous response. A slow body is the request timeout's
business (`kao.server.limits`)."""

from __future__ import annotations

import asyncio
import logging
from functools import cache

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from kao.server.settings import Settings

_log = logging.getLogger("kao.server")


@cache
def header_timeout() -> float:
    """Seconds a request head may take: from the settings `kao serve` put in the environment
    (each worker process reads them once)."""
    return Settings.from_env().header_timeout


class HeadTimeoutProtocol(H11Protocol):
    """uvicorn's h11 protocol with the request-head deadline described above."""

    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # type: ignore[override]
        super().connection_made(transport)  # type: ignore[arg-type]
        self._arm_head_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm_head_timer()  # the next request's head, on a kept-alive connection

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        super().connection_lost(exc)

    def _arm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        self._head_timer = self.loop.call_later(header_timeout(), self._head_late)

    def _head_late(self) -> None:
        """Close the connection unless its request head has arrived (h11 has left IDLE)."""
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            _log.info("kao serve: closed %s: no complete request head in time", self.client)
            self.transport.close()
