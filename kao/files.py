"""Private files written whole: gallery exports, index caches and model conversions.

Every file is created readable and writable by its owner only (mode 0600: faces and embeddings
are personal data). A file is first written to ``.NAME.<pid>.<random>.part`` beside its target,
flushed to disk, then moved into place with `os.replace`, so the target is the old file or the
complete new one. A writer killed on the way leaves its part file behind; the next writer of the
same target removes the part files of writers that are no longer running (on this machine).
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

PRIVATE = 0o600
"""The mode of every file created here."""


def remove_stale_parts(path: Path) -> None:
    """Delete the part files of `path` left by processes that are no longer running. Part files
    of running processes (this one included) are kept."""
    pattern = re.compile(rf"\.{re.escape(path.name)}\.(\d+)\.[0-9a-f]+\.part")
    with suppress(OSError):  # an unreadable folder: nothing to clean, the write will say why
        for entry in path.parent.iterdir():
            found = pattern.fullmatch(entry.name)
            if found is not None and not _running(int(found.group(1))):
                entry.unlink(missing_ok=True)  # another writer may have cleaned it first


@contextmanager
def replace_atomically(path: Path) -> Iterator[BinaryIO]:
    """A binary stream whose content becomes the file `path` (mode 0600) when the block ends
    without an exception; on an exception `path` is left as it was and the part file removed.
    Raises OSError when the part file cannot be created or written."""
    remove_stale_parts(path)
    temp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(6)}.part"
    handle = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE)
    try:
        with os.fdopen(handle, "wb") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def create_private(path: Path) -> None:
    """Create `path` empty with mode 0600 unless it exists (then it is left alone)."""
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE))


def _running(pid: int) -> bool:
    """True when process `pid` exists (or may: it belongs to another user)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        return True
    return True
