"""`Service`: what one server process holds for its whole life, shared by every request.

The models (detector, embedder, analyzer) and the database are made once, when the app
starts (its lifespan), and are safe to share between threads. Model work runs in worker
threads, at most `Settings.threads` at once; the event loop only moves bytes."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from kao.errors import KaoError
from kao.gallery.database import FaceDatabase
from kao.recognition import FaceEmbedder, default_embedder
from kao.server.errors import ApiError
from kao.server.keys import KeyStore
from kao.server.settings import Settings

T = TypeVar("T")
log = logging.getLogger("kao.server")


class Service:
    """The models, the database and the API keys of one server process."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.embedder: FaceEmbedder = default_embedder()
        self.database = FaceDatabase(settings.db, self.embedder)
        self.keys = KeyStore(settings.keys_path)
        self.analyzer: Any = None
        self.analysis_error = "the analysis models are turned off on this server"
        if settings.analysis:
            self._load_analyzer()
        self._limiter = anyio.CapacityLimiter(settings.threads)

    def _load_analyzer(self) -> None:
        from kao.analysis import FaceAnalyzer

        try:
            self.analyzer = FaceAnalyzer(self.embedder.detector).load()
        except (KaoError, ImportError) as error:
            self.analysis_error = f"the analysis models are not available: {error}"
            log.warning("kao serve: /v1/analyze is off: %s", error)

    def close(self) -> None:
        self.database.close()

    async def run(self, work: Callable[..., T], *args: Any) -> T:
        """`work(*args)` in a worker thread; abandoned (left to finish alone) when the request
        times out."""
        return await anyio.to_thread.run_sync(
            work, *args, limiter=self._limiter, abandon_on_cancel=True
        )

    def require_analyzer(self) -> Any:
        """The `FaceAnalyzer`, or 503 saying why there is none."""
        if self.analyzer is None:
            raise ApiError(503, self.analysis_error)
        return self.analyzer
