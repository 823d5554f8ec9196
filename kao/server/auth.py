"""API-key checks: ``Authorization: Bearer <key>`` or ``X-API-Key: <key>`` on every /v1
request when the server requires keys (see `Settings.keys_required`), and on /docs and
/openapi.json unless `Settings.public_docs` opens them."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from kao.server.errors import ApiError
from kao.server.keys import KeyStoreError
from kao.server.service import Service

_log = logging.getLogger("kao.server")
_bearer = HTTPBearer(auto_error=False, description="an API key from `kao keys create`")
_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, description="an API key from `kao keys create`"
)
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def service(request: Request) -> Service:
    """The `Service` of the app answering `request`."""
    return request.app.state.service


def check_key(svc: Service, given: str | None) -> None:
    """Nothing when `given` (the request's key, None when it sent none) is an active key;
    401 when it is missing, unknown or revoked; 503 when the key file cannot be read (the
    server's fault: its log names the file, the answer does not). Reads the key file."""
    if not given:
        raise ApiError(
            401,
            "an API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>' "
            "(keys are made with `kao keys create --name NAME`)",
            _CHALLENGE,
        )
    try:
        known = svc.keys.check(given)
    except KeyStoreError as error:
        _log.error("kao serve: cannot check an API key: %s", error)
        raise ApiError(
            503, "the server cannot check API keys now (its log has the details)"
        ) from None
    if known is None:
        raise ApiError(401, "the API key is unknown or has been revoked", _CHALLENGE)


def given_key(
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    header: Annotated[str | None, Depends(_header)],
) -> str | None:
    """The key the request sent (X-API-Key, else Authorization: Bearer), or None."""
    return header or (bearer.credentials if bearer else None)


def require_key(request: Request, given: Annotated[str | None, Depends(given_key)]) -> None:
    """Nothing when the request may go on, else `check_key`'s error. Runs in a thread."""
    svc = service(request)
    if svc.settings.keys_required:
        check_key(svc, given)


def key_accepted(request: Request, given: Annotated[str | None, Depends(given_key)]) -> bool:
    """Whether the request sent an active key (False, not an error, when it did not)."""
    try:
        check_key(service(request), given)
    except ApiError:
        return False
    return True


def require_key_for_docs(
    request: Request, given: Annotated[str | None, Depends(given_key)]
) -> None:
    """`require_key`, unless the settings make the docs public (`Settings.docs_public`)."""
    if not service(request).settings.docs_public:
        require_key(request, given)
