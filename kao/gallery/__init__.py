"""The face database: collections of persons, each enrolled with the embeddings of several photos.

Example::

    from kao.gallery import NewFace, open_gallery

    with open_gallery("faces.db") as gallery:          # or "postgresql://user@host/db"
        gallery.add_faces("family", "Alice", [NewFace(vector, "dlib_resnet_v1", "alice1.jpg")])
        ids, persons, matrix = gallery.embeddings("family", "dlib_resnet_v1")   # (N,), N, (N, D)

This layer stores and returns float32 L2-normalised embeddings with their metadata; it does not
compute them. SQLite and PostgreSQL behave identically (`kao.gallery.store`).
"""

from __future__ import annotations

from kao.errors import GalleryError
from kao.gallery.connect import open_gallery
from kao.gallery.records import CollectionInfo, FaceRecord, NewFace, PersonInfo
from kao.gallery.store import Gallery

__all__ = [
    "CollectionInfo",
    "FaceRecord",
    "Gallery",
    "GalleryError",
    "NewFace",
    "PersonInfo",
    "open_gallery",
]
