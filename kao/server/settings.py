"""`Settings`: how a `kao serve` process is configured, and where API keys are required.

A `kao serve --workers N` starts N processes; each builds its app from the settings that the
command puts in the ``KAO_SERVER_SETTINGS`` environment variable (JSON), so every worker runs
with the same ones."""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
from dataclasses import dataclass
from pathlib import Path

from kao.errors import KaoError

ENV = "KAO_SERVER_SETTINGS"
DEFAULT_DB = "faces.db"
DEFAULT_MAX_UPLOAD = 20 * 1024 * 1024
DEFAULT_TIMEOUT = 60.0
DEFAULT_QUEUE = 8
DEFAULT_HEADER_TIMEOUT = 10.0
DEFAULT_KEEP_ALIVE = 5
DEFAULT_MAX_CONNECTIONS = 200
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
"""The names a loopback server answers to (its Host header), with or without a port."""


def default_keys_path() -> Path:
    """Where API keys live: ``$KAO_KEYS``, else ``$XDG_CONFIG_HOME/kao/keys.db``, else
    ``~/.config/kao/keys.db``."""
    given = os.environ.get("KAO_KEYS", "").strip()
    if given:
        return Path(given).expanduser()
    config = os.environ.get("XDG_CONFIG_HOME", "").strip() or Path.home() / ".config"
    return Path(config) / "kao" / "keys.db"


def _host_name(host: str) -> str:
    """A host name or address as a Host header names it without its port: lower case, an IPv6
    address without brackets ("[::1]" -> "::1")."""
    name = host.strip().lower()
    if not name or any(c in name for c in "/@ ") or name.count("]") > 1:
        raise KaoError(f"{host!r} is not a host name or address")
    return name.strip("[]")


def _origin(origin: str) -> str:
    """A web origin "scheme://host[:port]", checked; KaoError for anything else."""
    text = origin.strip().rstrip("/")
    scheme, sep, rest = text.partition("://")
    if scheme not in ("http", "https") or not sep or not rest or any(c in rest for c in "/?#@"):
        raise KaoError(f"{origin!r} is not a web origin like https://app.example:8443")
    return text.lower()


def is_loopback(host: str) -> bool:
    """True when `host` ("127.0.0.1", "::1", "localhost") only accepts connections from this
    machine; "0.0.0.0", "::", other addresses and host names are not loopback."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Settings:
    """One server's configuration.

    Attributes:
        db: gallery URL: an SQLite file ("faces.db", "sqlite:///faces.db") or "postgresql://...".
        host: the address the server listens on; API keys are required unless it is loopback.
        require_keys: require API keys even on loopback (e.g. behind a reverse proxy).
        keys: the API-key file (see `kao.server.keys`); None: `default_keys_path()`.
        max_upload: largest request body accepted, bytes (larger: 413).
        timeout: seconds a request may take, upload included (longer: 503); its work stops
            then (see `kao.server.service.Service.run`).
        threads: requests whose models run at once in each process (the others wait).
        queue: requests that may wait for a thread in each process; beyond it, 503 at once.
        analysis: load the analysis models (landmarks, pose, attributes) for /v1/analyze.
        header_timeout: seconds a connection may take to send a request's head (its line and
            headers); a slower one is closed.
        keep_alive: seconds an idle keep-alive connection stays open.
        max_connections: open connections (and requests) at once per process; at the cap the
            one idle longest is closed, and with none idle a new request gets 503.
        allowed_hosts: Host header values accepted beyond loopback (empty: any); a loopback
            server answers only to `LOOPBACK_NAMES` and its own address.
        cors_origins: other web origins ("https://app.example") whose pages may call the
            API (CORS, and state-changing requests from them); none by default.
        public_docs: /docs, /openapi.json and /health's details without a key even when keys
            are required (they are public when keys are not required).
    """

    db: str = DEFAULT_DB
    host: str = "127.0.0.1"
    require_keys: bool = False
    keys: str | None = None
    max_upload: int = DEFAULT_MAX_UPLOAD
    timeout: float = DEFAULT_TIMEOUT
    threads: int = 2
    queue: int = DEFAULT_QUEUE
    analysis: bool = True
    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    keep_alive: int = DEFAULT_KEEP_ALIVE
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    allowed_hosts: tuple[str, ...] = ()
    cors_origins: tuple[str, ...] = ()
    public_docs: bool = False

    def __post_init__(self) -> None:
        if self.max_upload < 1:
            raise KaoError(f"the upload limit must be positive, got {self.max_upload} bytes")
        for name in ("timeout", "header_timeout", "keep_alive"):
            if not getattr(self, name) > 0:
                raise KaoError(f"{name} must be positive, got {getattr(self, name)} s")
        if self.threads < 1:
            raise KaoError(f"threads must be at least 1, got {self.threads}")
        if self.queue < 0:
            raise KaoError(f"the queue must be 0 or more requests, got {self.queue}")
        if self.max_connections < 1:
            raise KaoError(f"max_connections must be at least 1, got {self.max_connections}")
        hosts = tuple(_host_name(h) for h in self.allowed_hosts)
        origins = tuple(_origin(o) for o in self.cors_origins)
        object.__setattr__(self, "allowed_hosts", hosts)
        object.__setattr__(self, "cors_origins", origins)

    @property
    def keys_required(self) -> bool:
        """Whether every /v1 request needs a valid API key."""
        return self.require_keys or not is_loopback(self.host)

    @property
    def docs_public(self) -> bool:
        """Whether /docs, /openapi.json and /health's details are open without a key."""
        return self.public_docs or not self.keys_required

    @property
    def host_names(self) -> frozenset[str] | None:
        """The Host header names (lower case, without port) this server answers to; None: any
        (beyond loopback without `allowed_hosts`)."""
        if is_loopback(self.host):
            return frozenset({*LOOPBACK_NAMES, _host_name(self.host), *self.allowed_hosts})
        return frozenset(self.allowed_hosts) if self.allowed_hosts else None

    @property
    def keys_path(self) -> Path:
        return Path(self.keys) if self.keys else default_keys_path()

    def to_env(self) -> str:
        """The JSON form `from_env` reads back."""
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_env(cls) -> Settings:
        """The settings `kao serve` put in ``KAO_SERVER_SETTINGS`` (defaults when unset)."""
        text = os.environ.get(ENV, "").strip()
        if not text:
            return cls()
        try:
            return cls(**json.loads(text))
        except (ValueError, TypeError) as error:
            raise KaoError(f"{ENV} does not hold valid server settings: {error}") from None
