"""``--draw PARTS``: what the annotated copies show, under the same name in every command that
draws faces (`kao detect`, `kao analyze`, `kao video`)."""

from __future__ import annotations

import argparse
from collections.abc import Collection

from kao.errors import KaoError


def add_draw_option(parser: argparse.ArgumentParser, default: Collection[str]) -> None:
    """Add ``--draw PART,PART,...`` to `parser`, defaulting to the `default` parts (names of
    `kao.render.PARTS`); `args.draw` is the chosen set."""
    from kao.render import PARTS

    parser.add_argument(
        "--draw",
        type=_parts,
        default=frozenset(default),
        metavar="PARTS",
        help=f"what to draw with --out, comma-separated (e.g. box,age,fps), among: "
        f"{', '.join(PARTS)} (default {','.join(name for name in PARTS if name in default)})",
    )


def _parts(text: str) -> frozenset[str]:
    """argparse's reading of ``--draw``: an unknown part is a usage error naming the choices."""
    from kao.render import parse_drawing

    try:
        return parse_drawing(text)
    except KaoError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix("--draw: ")) from None
