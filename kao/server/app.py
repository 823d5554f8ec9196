"""`create_app`: the FastAPI app of `kao serve`.

Routes: ``/v1/...`` the JSON API (`routes_images`, `routes_gallery`, `routes_count`; API key
checked when required), ``/v1/live`` the WebSocket of live video (`routes_live`, which checks
keys, host and origin itself), ``/health`` (no key: are this process and its database up),
``/docs`` and ``/openapi.json`` (a key is needed when keys are, unless `Settings.public_docs`;
Swagger UI's files under ``/docs/assets``), and the web page: ``/`` and its files under
``/static`` (`kao/server/static`: plain HTML, CSS and JavaScript that call the JSON API). Every
request passes `Guard` (Host and cross-site checks), then CORS when `Settings.cors_origins`
names origins, then `Limits` (body size, time)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

import kao
from kao.errors import KaoError
from kao.server import errors, routes_count, routes_gallery, routes_images, routes_live
from kao.server.auth import key_accepted, require_key, require_key_for_docs, service
from kao.server.errors import without_names
from kao.server.guard import Guard
from kao.server.limits import Limits
from kao.server.service import Service
from kao.server.settings import Settings

STATIC = Path(__file__).with_name("static")
"""The web page's files."""
SWAGGER_UI = Path(str(files("fastapi_offline") / "static"))
"""Swagger UI 5 (its JavaScript, CSS and icon), as the fastapi-offline package (MIT) ships it:
`/docs` loads nothing from elsewhere, so it works offline."""


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
        'is JSON: {"error": message, "status": code}.\n\n' + routes_live.DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # served below, behind require_key_for_docs
        redoc_url=None,
        openapi_url=None,
    )
    errors.install(app)
    app.add_middleware(Limits, max_upload=settings.max_upload, timeout=settings.timeout)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type"],
        )
    app.add_middleware(
        Guard, host_names=settings.host_names, cors_origins=settings.cors_origins
    )  # added last: runs first
    api = APIRouter(prefix="/v1", dependencies=[Depends(require_key)])
    api.include_router(routes_images.router)
    api.include_router(routes_gallery.router)
    api.include_router(routes_count.router)
    app.include_router(api)
    app.include_router(routes_live.router, prefix="/v1")  # WebSocket: checks its own key
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.mount("/docs/assets", StaticFiles(directory=SWAGGER_UI), name="docs-assets")

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        """The web page (no key needed: it asks for one when the API does)."""
        return FileResponse(STATIC / "index.html")

    docs = [Depends(require_key_for_docs)]

    @app.get("/openapi.json", include_in_schema=False, dependencies=docs)
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=docs)
    async def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="kao API",
            swagger_js_url="/docs/assets/swagger-ui-bundle.js",
            swagger_css_url="/docs/assets/swagger-ui.css",
            swagger_favicon_url="/docs/assets/favicon.png",
        )

    @app.get("/health", summary="Whether this server and its database answer")
    def health(request: Request, keyed: Annotated[bool, Depends(key_accepted)]) -> JSONResponse:
        """{"status": "ok" (200) or "unavailable" (503), "keys_required"}; with a valid key,
        or when the docs are public, also "version", "analysis" (whether /v1/analyze works)
        and "database" ("ok" or why not). Runs in a thread (it asks the database)."""
        svc = service(request)
        try:
            svc.database.gallery.ping()
            database = "ok"
        except KaoError as error:
            database = without_names(str(error), svc.private_names)
        body: dict[str, Any] = {
            "status": "ok" if database == "ok" else "unavailable",
            "keys_required": svc.settings.keys_required,
        }
        if svc.settings.docs_public or keyed:
            body |= {"version": kao.__version__, "analysis": svc.analyzer is not None}
            body["database"] = database
        return JSONResponse(body, 200 if database == "ok" else 503)

    return app


def app_from_env() -> FastAPI:
    """The app for the settings `kao serve` put in the environment (each worker calls it)."""
    return create_app(Settings.from_env())
