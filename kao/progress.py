"""Progress bars for long work: shown on a terminal, silent when stderr is piped."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

T = TypeVar("T")


def progress(items: Iterable[T], total: int | None = None, what: str = "images") -> Iterator[T]:
    """Iterate `items`, drawing a bar on stderr when it is a terminal."""
    bar = tqdm(
        items,
        total=total,
        unit=what[:-1] if what.endswith("s") else what,
        desc=what,
        disable=not sys.stderr.isatty(),
        leave=False,
        file=sys.stderr,
    )
    yield from bar
