"""The `kao` command line: one sub-module per command group, each with a `register` function.

`kao --help` lists every command from `COMMANDS` without importing any command module; running
a command imports only the module that defines it (so `kao detect` never loads FastAPI, and
`kao --help` loads no model runtime)."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import kao
from kao.errors import KaoError
from kao.extras import require


@dataclass(frozen=True)
class Command:
    """A top-level command: its name, the module whose `register` adds it, its one-line help
    (the same as the module's) and the optional extra it needs, as (extra, module) or None."""

    name: str
    module: str
    help: str
    extra: tuple[str, str] | None = None


COMMANDS: tuple[Command, ...] = (
    Command("detect", "kao.cli.detect", "find faces: boxes, scores and 5 keypoints"),
    Command(
        "count",
        "kao.cli.count",
        "count the people in images or video frames (crowd density or face detection)",
    ),
    Command(
        "analyze",
        "kao.cli.analyze",
        "landmarks, head pose, gaze, age, gender, emotion and mask of every face",
    ),
    Command("embed", "kao.cli.embed", "face embeddings of every face, from a chosen model"),
    Command(
        "verify",
        "kao.cli.verify",
        "same person or not, with the distance and a similarity in [0, 1]",
    ),
    Command("enroll", "kao.cli.database", "add a person's photos to a collection"),
    Command("identify", "kao.cli.database", "who is in a photo, from a collection"),
    Command("db", "kao.cli.database", "list, rename, delete, export, import and re-embed"),
    Command("group", "kao.cli.group", "cluster every face of a photo collection by person"),
    Command("mesh", "kao.cli.mesh", "3D face meshes (.obj with texture, or .ply) and a preview"),
    Command(
        "age-transform", "kao.cli.aging", "render a face at several ages (age-group prototypes)"
    ),
    Command("models", "kao.cli.models", "list, verify and download model files"),
    Command("eval", "kao.cli.evaluate", "measure accuracy on a labelled dataset"),
    Command("bench", "kao.cli.bench", "measure speed beside a peer tool"),
    Command("serve", "kao.cli.serve", "run the HTTP API (docs at /docs)", ("server", "fastapi")),
    Command(
        "keys",
        "kao.cli.serve",
        "create, list and revoke API keys of kao serve",
        ("server", "fastapi"),
    ),
    Command(
        "video",
        "kao.cli.video",
        "track faces across video frames, with identities and attributes",
    ),
)


def _chosen(argv: Sequence[str]) -> Command | None:
    """The command named by the first argument of `argv` that is not an option, or None."""
    first = next((arg for arg in argv if not arg.startswith("-")), None)
    return next((command for command in COMMANDS if command.name == first), None)


def build_parser(only: Command | None = None, *, full: bool = True) -> argparse.ArgumentParser:
    """The `kao` argument parser. With `full` every command module is imported and registered;
    otherwise only the module of `only` is (with every command it defines), and every other
    command is a name with its help (enough for `kao --help`)."""
    parser = argparse.ArgumentParser(prog="kao", description="kao: face analysis on a CPU.")
    parser.add_argument("--version", action="version", version=f"kao {kao.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    registered: set[str] = set()
    for command in COMMANDS:
        if full or (only is not None and command.module == only.module):
            if command.module not in registered:
                registered.add(command.module)
                importlib.import_module(command.module).register(sub)
        else:
            sub.add_parser(command.name, help=command.help)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `kao`: returns the exit code (0 success, 1 failure, 2 usage error)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    command = _chosen(argv)
    try:
        if command is not None and command.extra is not None:
            extra, module = command.extra
            require(extra, f"kao {command.name}", module)
        args = build_parser(command, full=False).parse_args(argv)
        return int(args.run(args) or 0)
    except KaoError as error:
        print(f"kao: error: {error}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # The reader went away (e.g. `kao models list | head`): stop quietly.
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("kao: interrupted", file=sys.stderr)
        return 130
