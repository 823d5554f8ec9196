"""The `kao` command line: one sub-module per command group, each with a `register` function."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import kao
from kao.errors import KaoError


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every sub-command registered."""
    from kao.cli import (
        aging,
        analyze,
        bench,
        count,
        database,
        detect,
        evaluate,
        group,
        mesh,
        models,
        serve,
        verify,
        video,
    )

    parser = argparse.ArgumentParser(prog="kao", description="kao: face analysis on a CPU.")
    parser.add_argument("--version", action="version", version=f"kao {kao.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (
        detect,
        count,
        analyze,
        verify,
        database,
        group,
        mesh,
        aging,
        models,
        evaluate,
        bench,
        serve,
        video,
    ):
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `kao`: returns the exit code (0 success, 1 failure, 2 usage error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
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
