"""`kao serve`: the HTTP API; `kao keys create|list|revoke`: its API keys."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from kao.cli.batch import add_device_option
from kao.errors import KaoError
from kao.gallery.urls import redact_url
from kao.server.keys import KeyStore
from kao.server.settings import (
    DEFAULT_DB,
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_KEEP_ALIVE,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_UPLOAD,
    DEFAULT_QUEUE,
    DEFAULT_TIMEOUT,
    ENV,
    Settings,
    default_keys_path,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `kao serve` and `kao keys` to the `kao` parser."""
    serve = subparsers.add_parser(
        "serve",
        help="run the HTTP API (docs at /docs)",
        description="Serve kao's HTTP API with uvicorn. Listening beyond loopback (e.g. --host "
        "0.0.0.0) requires API keys: create one first with `kao keys create --name NAME`.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    serve.add_argument(
        "--db",
        default=os.environ.get("KAO_DB") or DEFAULT_DB,
        metavar="URL",
        help=f"face database: SQLite file or postgresql://... (default $KAO_DB, else {DEFAULT_DB})",
    )
    serve.add_argument("--workers", type=int, default=1, metavar="N", help="processes (default 1)")
    add_device_option(serve)
    serve.add_argument(
        "--threads",
        type=int,
        default=2,
        metavar="N",
        help="requests running models at once in each process (default 2)",
    )
    serve.add_argument(
        "--queue",
        type=int,
        default=DEFAULT_QUEUE,
        metavar="N",
        help="requests that may wait for a thread in each process; more get 503 at once "
        f"(default {DEFAULT_QUEUE})",
    )
    serve.add_argument(
        "--max-upload-mb",
        type=float,
        default=DEFAULT_MAX_UPLOAD / 2**20,
        metavar="MB",
        help=f"largest request body (default {DEFAULT_MAX_UPLOAD / 2**20:g} MB)",
    )
    serve.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="S",
        help=f"seconds a request may take before it gets a 503 and its work stops "
        f"(default {DEFAULT_TIMEOUT:g})",
    )
    serve.add_argument(
        "--header-timeout",
        type=float,
        default=DEFAULT_HEADER_TIMEOUT,
        metavar="S",
        help="seconds a connection may take to send a request's line and headers before it is "
        f"closed (default {DEFAULT_HEADER_TIMEOUT:g})",
    )
    serve.add_argument(
        "--keep-alive",
        type=int,
        default=DEFAULT_KEEP_ALIVE,
        metavar="S",
        help=f"seconds an idle keep-alive connection stays open (default {DEFAULT_KEEP_ALIVE})",
    )
    serve.add_argument(
        "--max-connections",
        type=int,
        default=DEFAULT_MAX_CONNECTIONS,
        metavar="N",
        help="open connections per process: at the cap the one idle longest is closed, and "
        f"when all have requests in progress new ones get 503 (default {DEFAULT_MAX_CONNECTIONS})",
    )
    serve.add_argument(
        "--allowed-hosts",
        nargs="+",
        default=[],
        metavar="NAME",
        help="Host header names accepted (others get 400): on loopback these and 127.0.0.1, "
        "localhost and [::1] (e.g. the public name a reverse proxy forwards); beyond loopback "
        "only these (default there: any)",
    )
    serve.add_argument(
        "--cors-origins",
        nargs="+",
        default=[],
        metavar="ORIGIN",
        help="web origins (https://app.example) whose pages may call the API (default: none, "
        "only the server's own page)",
    )
    serve.add_argument(
        "--public-docs",
        action="store_true",
        help="serve /docs, /openapi.json and /health's details without a key when keys are "
        "required (default: they need a key then)",
    )
    serve.add_argument(
        "--require-keys",
        action="store_true",
        help="require API keys on loopback too (e.g. behind a reverse proxy)",
    )
    serve.add_argument("--keys", type=Path, metavar="FILE", help=_keys_help())
    serve.add_argument(
        "--no-analysis", action="store_true", help="do not load /v1/analyze's models"
    )
    serve.set_defaults(run=run_serve)

    keys = subparsers.add_parser("keys", help="create, list and revoke API keys of kao serve")
    actions = keys.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="make a key and print it (once)")
    create.add_argument("--name", required=True, help="who or what the key is for")
    listing = actions.add_parser("list", help="every key: name, first characters, dates")
    listing.add_argument("--json", action="store_true", help="print JSON")
    revoke = actions.add_parser("revoke", help="revoke the active key of that name")
    revoke.add_argument("name")
    for action in (create, listing, revoke):
        action.add_argument("--keys", type=Path, metavar="FILE", help=_keys_help())
        action.set_defaults(run=run_keys)


def _keys_help() -> str:
    return f"API-key file (default $KAO_KEYS, else {default_keys_path()})"


def run_serve(args: argparse.Namespace) -> int:
    """Check the settings, then run uvicorn until interrupted."""
    import uvicorn

    from kao.server.connections import HeadTimeoutProtocol

    if args.workers < 1:
        raise KaoError(f"--workers must be at least 1, got {args.workers}")
    settings = Settings(
        db=args.db,
        host=args.host,
        require_keys=args.require_keys,
        keys=str(args.keys) if args.keys else None,
        max_upload=int(args.max_upload_mb * 2**20),
        timeout=args.timeout,
        threads=args.threads,
        queue=args.queue,
        analysis=not args.no_analysis,
        header_timeout=args.header_timeout,
        keep_alive=args.keep_alive,
        max_connections=args.max_connections,
        allowed_hosts=tuple(args.allowed_hosts),
        cors_origins=tuple(args.cors_origins),
        public_docs=args.public_docs,
    )
    if settings.keys_required and KeyStore(settings.keys_path).active() == 0:
        raise KaoError(
            f"listening on {args.host} requires API keys and {settings.keys_path} has none: "
            "create one with `kao keys create --name NAME` (or listen on 127.0.0.1)"
        )
    os.environ[ENV] = settings.to_env()  # read by every worker (kao.server.app.app_from_env)
    keys = f"API keys required ({settings.keys_path})" if settings.keys_required else "no keys"
    print(f"kao serve: database {redact_url(args.db)}; {keys}; docs at /docs", file=sys.stderr)
    uvicorn.run(
        "kao.server.app:app_from_env",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        http=HeadTimeoutProtocol,
        timeout_keep_alive=settings.keep_alive,
        limit_concurrency=settings.max_connections,
        timeout_graceful_shutdown=int(settings.timeout) + 1,
    )
    return 0


def run_keys(args: argparse.Namespace) -> int:
    """`kao keys create`, `list` and `revoke`."""
    store = KeyStore(args.keys or default_keys_path())
    if args.action == "create":
        info, key = store.create(args.name)
        print(key)
        print(
            f"kao: key {info.name!r} created in {store.path}; it is shown only now. Send it as "
            "'Authorization: Bearer <key>' or 'X-API-Key: <key>'.",
            file=sys.stderr,
        )
    elif args.action == "list":
        keys = store.list()
        if args.json:
            print(json.dumps([k.to_dict() for k in keys], indent=2))
        for k in [] if args.json else keys:
            state = f"revoked {k.revoked:%Y-%m-%d %H:%M}" if k.revoked else "active"
            print(f"{k.name}  {k.shown}...  created {k.created:%Y-%m-%d %H:%M}  {state}")
        if not keys and not args.json:
            print("(no keys)")
    else:
        store.revoke(args.name)
        print(f"revoked key {args.name!r}")
    return 0
