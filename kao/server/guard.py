"""Who may talk to the server from a browser: the Host header and the origin of state-changing
requests.

`Guard` is ASGI middleware. It answers 400 to a request whose Host header is not a name this
server answers to (`Settings.host_names`: a loopback server answers to 127.0.0.1, localhost
and [::1] only, so a web page whose own name was made to point at 127.0.0.1 (DNS rebinding)
gets nothing), and 403 to a POST, PUT, PATCH or DELETE sent by a web page of another origin
(its Origin header, else its Referer, names neither this server nor one of
`Settings.cors_origins`). Requests without either header do not come from a web page (curl,
scripts) and pass; API keys, where required, still apply to them."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import Headers

from kao.server.errors import error_response
from kao.server.limits import App, Receive, Scope, Send

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
"""Methods that change something, refused across sites."""


def host_name(header: str) -> str:
    """A Host header's name, lower case, without port or IPv6 brackets: "127.0.0.1:8000" ->
    "127.0.0.1", "[::1]:8000" -> "::1", "Example.org" -> "example.org"."""
    text = header.strip().lower()
    if text.startswith("["):
        return text[1:].partition("]")[0]
    return text.rpartition(":")[0] if ":" in text else text


def origin_of(url: str) -> str:
    """The origin "scheme://host[:port]" of a URL (a Referer), lower case; "null" when it has
    none."""
    parts = urlsplit(url.strip())
    return f"{parts.scheme}://{parts.netloc}".lower() if parts.scheme and parts.netloc else "null"


def host_problem(host: str, names: frozenset[str] | None) -> str | None:
    """Why a request with Host header `host` is refused, or None when `names` (None: any)
    holds its name."""
    if names is None or host_name(host) in names:
        return None
    return (
        f"this server does not answer to the host {host!r} (it answers to "
        f"{', '.join(sorted(names))}; see kao serve --allowed-hosts)"
    )


def origin_problem(
    method: str, headers: Headers, host: str, allowed: tuple[str, ...]
) -> str | None:
    """Why a `method` request from the web page named by its Origin (else Referer) header is
    refused, or None: a safe method, no such header, this server's own origin (the Host
    header `host`), or one of `allowed`."""
    if method.upper() not in UNSAFE_METHODS:
        return None
    origin = headers.get("origin")
    if origin is None:
        referer = headers.get("referer")
        if referer is None:
            return None
        origin = origin_of(referer)
    origin = origin.strip().lower()
    if origin in allowed or origin.partition("://")[2] == host.strip().lower():
        return None
    return (
        f"a {method} from the web page of another site ({origin}) is refused: only this "
        "server's own page, or an origin given to kao serve --cors-origins, may change data"
    )


class Guard:
    """Middleware: the Host check (400) and the cross-site check (403) described above."""

    def __init__(
        self, app: App, host_names: frozenset[str] | None, cors_origins: tuple[str, ...]
    ) -> None:
        self.app = app
        self.host_names = host_names
        self.cors_origins = cors_origins

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host = headers.get("host", "")
        problem = host_problem(host, self.host_names)
        status = 400
        if problem is None:
            problem = origin_problem(scope["method"], headers, host, self.cors_origins)
            status = 403
        if problem is None:
            await self.app(scope, receive, send)
        else:
            await error_response(status, problem)(scope, receive, send)
