"""`Service`: what one server process holds for its whole life, shared by every request.

The models (detector, embedder, analyzer) and the database are made once, when the app
starts (its lifespan), and are safe to share between threads. Model work runs in worker
threads; the event loop only moves bytes.

Work is bounded where it really runs: a worker thread holds one of `Settings.threads` slots
from before its work starts until it has really finished, even when its request has already
been answered (a timeout), so no more than `threads` requests compute at once. At most
`Settings.queue` more may wait for a slot; beyond that a request gets 503 at once (with
Retry-After) instead of piling up its images in memory. When a request ends early (timeout,
client gone), its work is told to stop: a waiting one never starts, a running one stops at
its next `check_cancelled` (between images, and between decoding and the models)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload

import anyio
import anyio.to_thread

from kao.errors import KaoError
from kao.gallery.database import FaceDatabase
from kao.recognition import FaceEmbedder, default_embedder
from kao.recognition.embedder import check_model
from kao.server.errors import ApiError
from kao.server.keys import KeyStore
from kao.server.settings import Settings

T = TypeVar("T")
log = logging.getLogger("kao.server")

SLOT_POLL = 0.1
"""Seconds between a waiting thread's looks at whether its request has ended."""
SHUTDOWN_WAIT = 30.0
"""Seconds `Service.close` waits for model work still running in worker threads."""

RETRY_AFTER = "5"
"""Seconds a client is asked to wait after a 503 (Retry-After)."""

_ended: ContextVar[threading.Event | None] = ContextVar("kao_request_ended", default=None)
"""Set when the request that the current worker thread works for has ended."""


class Cancelled(Exception):
    """The request ended (timed out, or its client left) before its work was done."""


def check_cancelled() -> None:
    """Raise `Cancelled` when the request this thread works for has ended; long work calls it
    between its steps. Does nothing outside `Service.run`."""
    ended = _ended.get()
    if ended is not None and ended.is_set():
        raise Cancelled("the request ended before its work was done")


class Checked(Sequence[T]):
    """`items` (each through `convert`, e.g. decoded, when given), read through
    `check_cancelled`: a loop over it stops (`Cancelled`) before the next item once the request
    has ended. For work the library does item by item; `last` is the index of the item handed
    out last (the one being worked on when an error comes)."""

    def __init__(self, items: Sequence[Any], convert: Callable[[Any], T] | None = None) -> None:
        self._items = items
        self._convert = convert
        self.last = -1

    @overload
    def __getitem__(self, index: int) -> T: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[T]: ...
    def __getitem__(self, index: int | slice) -> T | Sequence[T]:
        if isinstance(index, slice):
            return [self[i] for i in range(len(self))[index]]
        check_cancelled()
        self.last = range(len(self))[index]
        item = self._items[index]
        return self._convert(item) if self._convert else item

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[T]:
        for index in range(len(self)):
            yield self[index]


@dataclass
class _Ticket:
    """One admitted request's place: `ended` when the request is over; `claimed` once a worker
    thread has started on it (the thread then gives the place back when it finishes),
    `dropped` when the request ended before that (it gave the place back itself)."""

    ended: threading.Event = field(default_factory=threading.Event)
    claimed: bool = False
    dropped: bool = False


class Service:
    """The models, the database and the API keys of one server process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.embedder: FaceEmbedder = default_embedder()
        self.database = FaceDatabase(settings.db)
        """The database, each collection enrolling and identifying with its own model."""
        self._models: dict[str, tuple[FaceEmbedder, FaceDatabase]] = {}
        """Embedder and database of each recognition model asked for so far."""
        self._models_lock = threading.Lock()
        self.keys = KeyStore(settings.keys_path)
        gallery = self.database.gallery
        self.private_names = (settings.db, gallery.url, str(getattr(gallery, "path", "")))
        """What error messages must not show: the database's URL and file path."""
        self.analyzer: Any = None
        self.analysis_error = "the analysis models are turned off on this server"
        if settings.analysis:
            self._load_analyzer()
        self._slots = threading.BoundedSemaphore(settings.threads)
        self._admitted = 0
        """Requests whose work is running or waiting for a slot (their threads included)."""
        self._admit_lock = threading.Lock()
        self._threads = anyio.CapacityLimiter(settings.threads + settings.queue)
        """anyio's worker threads for this service (it frees a token when a request is
        cancelled, while the thread may still run: `_admitted` is the real bound)."""

    def _load_analyzer(self) -> None:
        from kao.analysis import FaceAnalyzer

        try:
            self.analyzer = FaceAnalyzer().load()  # kao.analyze's detector: masked-face pass on
        except (KaoError, ImportError) as error:
            self.analysis_error = f"the analysis models are not available: {error}"
            log.warning("kao serve: /v1/analyze is off: %s", error)

    def close(self, wait: float = SHUTDOWN_WAIT) -> None:
        """Waits up to `wait` seconds for work still running in worker threads (a request that
        timed out leaves its thread running until its next cancellation check), then closes the
        database. Exiting while a thread is inside ONNX Runtime aborts the process, and the
        database must outlive the threads that use it."""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            with self._admit_lock:
                if self._admitted == 0:
                    break
            time.sleep(SLOT_POLL)
        self.database.close()

    async def run(self, work: Callable[..., T], *args: Any) -> T:
        """`work(*args)` in a worker thread once a slot is free; 503 at once when `threads`
        requests run and `queue` wait already. When the request ends first, the thread is told
        to stop (see the module's docstring) and its result is dropped."""
        with self._admit_lock:
            if self._admitted >= self.settings.threads + self.settings.queue:
                raise ApiError(
                    503,
                    f"the server is busy ({self.settings.threads} requests running and "
                    f"{self.settings.queue} waiting); retry later",
                    {"Retry-After": RETRY_AFTER},
                )
            self._admitted += 1
        ticket = _Ticket()
        try:
            return await anyio.to_thread.run_sync(
                self._in_slot, ticket, work, args, limiter=self._threads, abandon_on_cancel=True
            )
        finally:
            ticket.ended.set()
            with self._admit_lock:
                if not ticket.claimed:  # ended before a thread took it (or was cancelled)
                    ticket.dropped = True
                    self._admitted -= 1

    def _in_slot(self, ticket: _Ticket, work: Callable[..., T], args: tuple) -> T:
        """`work(*args)` in this worker thread, holding a slot until it returns; `Cancelled`
        without starting it when the request ends first."""
        with self._admit_lock:
            if ticket.dropped:
                raise Cancelled("the request ended before a thread took it")
            ticket.claimed = True
        try:
            while not self._slots.acquire(timeout=SLOT_POLL):
                if ticket.ended.is_set():
                    raise Cancelled("the request ended while it waited for a thread")
            try:
                token = _ended.set(ticket.ended)
                try:
                    check_cancelled()
                    return work(*args)
                finally:
                    _ended.reset(token)
            finally:
                self._slots.release()
        finally:
            with self._admit_lock:
                self._admitted -= 1

    def recognition(self, model: str) -> tuple[FaceEmbedder, FaceDatabase]:
        """The embedder of recognition model `model` (on the shared detector) and the database
        enrolling and identifying with it, made on first use and then shared; 422 for a model
        that is not one of `RECOGNITION_MODELS`."""
        try:
            check_model(model)
        except KaoError as error:
            raise ApiError(422, str(error)) from None
        with self._models_lock:
            found = self._models.get(model)
            if found is None:
                embedder = (
                    self.embedder
                    if model == self.embedder.model_name
                    else FaceEmbedder(self.embedder.detector, model=model)
                )
                found = self._models[model] = (embedder, self.database.using(embedder))
            return found

    def collection_database(self, model: str | None) -> FaceDatabase:
        """The database enrolling and identifying with `model` (see `recognition`), or with
        each collection's own model when `model` is None."""
        return self.database if model is None else self.recognition(model)[1]

    def require_analyzer(self) -> Any:
        """The `FaceAnalyzer`, or 503 saying why there is none."""
        if self.analyzer is None:
            raise ApiError(503, self.analysis_error)
        return self.analyzer
