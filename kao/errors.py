"""Exceptions raised by kao. Every error names what failed and why."""

from __future__ import annotations


class KaoError(Exception):
    """Base class of every error kao raises on purpose."""


class ImageError(KaoError):
    """An image could not be read: names the source (path or kind of object) and the reason."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


class ModelError(KaoError):
    """A model file is missing, corrupt or unusable."""


class ModelNotFoundError(ModelError):
    """No verified copy of a model file was found and none could be downloaded; the message names
    the file, its sha256, every place searched and how to supply the file."""


class ModelHashError(ModelError):
    """A downloaded model file does not have the expected sha256 (nothing was kept)."""


class GalleryError(KaoError):
    """A face-database operation failed: a bad name or embedding, an unknown collection, person or
    face, an unusable database file or an unreachable server. The message names what and why."""


class NotFoundError(GalleryError):
    """The collection, person or face named does not exist."""


class ConflictError(GalleryError):
    """The change would clash with what exists: a collection or person of that name."""


class DatabaseError(GalleryError):
    """The database itself failed (unreachable, locked, damaged): not the caller's input."""
