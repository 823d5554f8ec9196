"""Connections: those that never finish their request head are closed, and idle ones make way
for new ones at the connection cap.

uvicorn closes an idle keep-alive connection after ``timeout_keep_alive`` seconds, but waits
forever for a connection that opened and sent part of a request line or headers (or nothing
at all): enough of them exhaust the server. `HeadTimeoutProtocol` is uvicorn's h11 protocol
that

- closes a connection whose request head is not complete `Settings.header_timeout` seconds
  after it opened or after its previous response;
- when a new connection brings the open ones to `Settings.max_connections`, closes the one
  that has been waiting for a request head longest (an idle one: no request is lost), so
  clients that only hold connections cannot keep the others out. When every connection has a
  request in progress, uvicorn's ``limit_concurrency`` (the same number) answers 503.

A slow body is the request timeout's business (`kao.server.limits`)."""

from __future__ import annotations

import asyncio
import logging
from functools import cache

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from kao.server.settings import Settings

_log = logging.getLogger("kao.server")


@cache
def _settings() -> Settings:
    """The settings `kao serve` put in the environment (each worker process reads them once)."""
    return Settings.from_env()


class HeadTimeoutProtocol(H11Protocol):
    """uvicorn's h11 protocol with the request-head deadline and the idle-first connection cap
    described above."""

    _head_timer: asyncio.TimerHandle | None = None
    _idle_since = 0.0
    """Event-loop time since when this connection has been waiting for a request head."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # type: ignore[override]
        super().connection_made(transport)  # type: ignore[arg-type]
        self._arm_head_timer()
        if len(self.connections) >= _settings().max_connections:
            self._close_longest_idle()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm_head_timer()  # the next request's head, on a kept-alive connection

    def connection_lost(self, exc: Exception | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        super().connection_lost(exc)

    def _waiting_for_head(self) -> bool:
        """Whether no request is in progress: h11 still waits for the next request's head."""
        return self.conn.their_state is h11.IDLE and not self.transport.is_closing()

    def _arm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        self._idle_since = self.loop.time()
        self._head_timer = self.loop.call_later(_settings().header_timeout, self._head_late)

    def _head_late(self) -> None:
        """Close the connection unless its request head has arrived."""
        if self._waiting_for_head():
            _log.info("kao serve: closed %s: no complete request head in time", self.client)
            self.transport.close()

    def _close_longest_idle(self) -> None:
        """At the cap: close the other connection that has waited for a head the longest."""
        idle = [
            c
            for c in self.connections
            if c is not self and isinstance(c, HeadTimeoutProtocol) and c._waiting_for_head()
        ]
        if idle:
            oldest = min(idle, key=lambda c: c._idle_since)
            _log.info("kao serve: closed idle %s to make way for a new one", oldest.client)
            oldest.transport.close()
