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


def default_keys_path() -> Path:
    """Where API keys live: ``$KAO_KEYS``, else ``$XDG_CONFIG_HOME/kao/keys.db``, else
    ``~/.config/kao/keys.db``."""
    given = os.environ.get("KAO_KEYS", "").strip()
    if given:
        return Path(given).expanduser()
    config = os.environ.get("XDG_CONFIG_HOME", "").strip() or Path.home() / ".config"
    return Path(config) / "kao" / "keys.db"


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
        timeout: seconds a request may take, upload included (longer: 503).
        threads: requests whose models run at once in each process (the others wait).
        analysis: load the analysis models (landmarks, pose, attributes) for /v1/analyze.
    """

    db: str = DEFAULT_DB
    host: str = "127.0.0.1"
    require_keys: bool = False
    keys: str | None = None
    max_upload: int = DEFAULT_MAX_UPLOAD
    timeout: float = DEFAULT_TIMEOUT
    threads: int = 2
    analysis: bool = True

    def __post_init__(self) -> None:
        if self.max_upload < 1:
            raise KaoError(f"the upload limit must be positive, got {self.max_upload} bytes")
        if not self.timeout > 0:
            raise KaoError(f"the request timeout must be positive, got {self.timeout} s")
        if self.threads < 1:
            raise KaoError(f"threads must be at least 1, got {self.threads}")

    @property
    def keys_required(self) -> bool:
        """Whether every /v1 request needs a valid API key."""
        return self.require_keys or not is_loopback(self.host)

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
