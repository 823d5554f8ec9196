"""`create_app`: the FastAPI app of `kao serve`.

Routes: ``/v1/...`` the JSON API (`routes_images`, `routes_gallery`; API key checked when
required), ``/health`` (no key: is this process up), ``/docs`` and ``/openapi.json``, and the
web page: ``/`` and its files under ``/static`` (`kao/server/static`: plain HTML, CSS and
JavaScript that call the JSON API)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

import kao
from kao.server import errors, routes_gallery, routes_images
from kao.server.auth import require_key, service
from kao.server.limits import Limits
from kao.server.service import Service
from kao.server.settings import Settings

STATIC = Path(__file__).with_name("static")
"""The web page's files."""


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app for `settings` (default: `Settings()`, loopback, faces.db). Its models and
    database are opened when it starts (ASGI lifespan) and closed when it stops."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.service = Service(settings)
        try:
            yield
        finally:
            app.state.service.close()

    app = FastAPI(
        title="kao",
        version=kao.__version__,
        description="Face detection, analysis, verification, a face database and grouping. "
        "Images go as multipart file uploads or as base64 strings in a JSON body; every error "
        'is JSON: {"error": message, "status": code}.',
        lifespan=lifespan,
    )
    errors.install(app)
    app.add_middleware(Limits, max_upload=settings.max_upload, timeout=settings.timeout)
    api = APIRouter(prefix="/v1", dependencies=[Depends(require_key)])
    api.include_router(routes_images.router)
    api.include_router(routes_gallery.router)
    app.include_router(api)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        """The web page (no key needed: it asks for one when the API does)."""
        return FileResponse(STATIC / "index.html")

    @app.get("/health", summary="Whether this server process is up")
    async def health(request: Request) -> dict[str, Any]:
        """{"status": "ok", "version", "analysis": whether /v1/analyze works, "keys_required"}."""
        svc = service(request)
        return {
            "status": "ok",
            "version": kao.__version__,
            "analysis": svc.analyzer is not None,
            "keys_required": svc.settings.keys_required,
        }

    return app


def app_from_env() -> FastAPI:
    """The app for the settings `kao serve` put in the environment (each worker calls it)."""
    return create_app(Settings.from_env())
