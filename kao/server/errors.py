"""Errors of the HTTP API: every failure is a JSON body ``{"error": message, "status": code}``.

kao's own exceptions map to the status that says whose fault it is: a bad image or input is
the caller's (400, 413, 422), an unknown collection, person or face is 404, a name that is
taken is 409, a database or model that fails is the server's (503)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from kao.errors import (
    ConflictError,
    DatabaseError,
    ImageError,
    KaoError,
    ModelError,
    NotFoundError,
)
from kao.recognition import NoFaceError

_log = logging.getLogger("kao.server")


class ApiError(Exception):
    """An answer other than success: HTTP `status` and a message saying what to change."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The JSON error body with its status."""
    return JSONResponse({"error": message, "status": status}, status, headers=headers)


def from_kao_error(
    error: KaoError, what: str | None = None, private: Sequence[str] = ()
) -> ApiError:
    """The `ApiError` for one of kao's exceptions; `what` (e.g. "image 'a' (photo.jpg)")
    replaces an image error's source, which is only "<bytes>" or "<ndarray ...>" here;
    `private` are names the message must not show (the database's URL and file path)."""
    if isinstance(error, ImageError):
        where = what or "image"
        status = 413 if error.reason.startswith("image too large") else 422
        return ApiError(status, f"{where}: {error.reason}")
    if isinstance(error, NoFaceError):
        return ApiError(422, f"{what}: no face found" if what else str(error))
    message = without_names(str(error), private)
    if isinstance(error, NotFoundError):
        return ApiError(404, message)
    if isinstance(error, ConflictError):
        return ApiError(409, message)
    if isinstance(error, (DatabaseError, ModelError)):
        return ApiError(503, f"the server cannot answer now: {message}")
    return ApiError(400, message)


def without_names(message: str, names: Sequence[str]) -> str:
    """`message` without any of `names` (the caller need not know where the database is): a
    name heading it ("sqlite:////srv/faces.db: database is locked") is dropped, one elsewhere
    becomes "the face database"."""
    for name in sorted(filter(None, names), key=len, reverse=True):
        message = message.removeprefix(f"{name}: ").replace(name, "the face database")
    return message


def install(app: FastAPI) -> None:
    """Make every error of `app` answer in the JSON form above."""

    async def api_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, ApiError)
        return error_response(error.status, error.message, error.headers)

    async def kao_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, KaoError)
        private = request.app.state.service.private_names
        return await api_error(request, from_kao_error(error, private=private))

    async def http_error(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, HTTPException)
        return error_response(error.status_code, str(error.detail), error.headers)

    async def invalid(request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
        )
        return error_response(422, f"invalid request: {problems}")

    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        _log.error("%s %s failed", request.method, request.url.path, exc_info=error)
        return error_response(500, "internal error of the server (its log has the details)")

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(KaoError, kao_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(Exception, unexpected)
