"""API-key checks: ``Authorization: Bearer <key>`` or ``X-API-Key: <key>`` on every /v1
request when the server requires keys (see `Settings.keys_required`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from kao.server.errors import ApiError
from kao.server.service import Service

_bearer = HTTPBearer(auto_error=False, description="an API key from `kao keys create`")
_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="an API key from `kao keys create`"
)


def service(request: Request) -> Service:
    """The `Service` of the app answering `request`."""
    return request.app.state.service


def require_key(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header: Annotated[str | None, Depends(_header)],
) -> None:
    """Nothing when the request may go on; 401 when a key is needed and missing, unknown or
    revoked. Runs in a thread (it reads the key file)."""
    keys = service(request).keys
    if not service(request).settings.keys_required:
        return
    given = header or (bearer.credentials if bearer else None)
    challenge = {"WWW-Authenticate": "Bearer"}
    if not given:
        raise ApiError(
            401,
            "an API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>' "
            "(keys are made with `kao keys create --name NAME`)",
            challenge,
        )
    if keys.check(given) is None:
        raise ApiError(401, "the API key is unknown or has been revoked", challenge)
