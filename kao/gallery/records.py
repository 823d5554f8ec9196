"""The gallery's records and the checks on what goes in.

Names (collections, persons, models) follow the rules of `check_name`, the one place every
interface (library, CLI, HTTP API) checks them. Embeddings are float32 vectors of shape (D,),
finite and L2-normalised (norm 1 within 1e-3), stored as D * 4 bytes little-endian.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from kao.errors import GalleryError
from kao.recognition.dlib_resnet import DIMENSION as DLIB_DIMENSION
from kao.recognition.dlib_resnet import MODEL_NAME as DLIB_MODEL
from kao.recognition.edgeface import DIMENSION as EDGEFACE_DIMENSION
from kao.recognition.edgeface import SIZES as EDGEFACE_SIZES
from kao.recognition.edgeface import model_name as edgeface_model

MAX_NAME = 200
MAX_DIM = 65536
NORM_TOLERANCE = 1e-3
Box = tuple[float, float, float, float]

MODEL_DIMENSIONS: dict[str, int] = {
    DLIB_MODEL: DLIB_DIMENSION,
    **{edgeface_model(size): EDGEFACE_DIMENSION for size in EDGEFACE_SIZES},
}
"""The recognition models kao computes embeddings with, and their embeddings' length: every face
stored under one of these names, enrolled or imported, must have that many values. Faces of
other models (any name) are stored too, but never take part in identification."""


HIDDEN_CATEGORIES = {
    "Cc": "a control character",
    "Cf": "a format character (invisible, or reorders the text around it)",
    "Zl": "a line separator",
    "Zp": "a paragraph separator",
}
"""Unicode categories refused in names: Cf holds the bidi controls (U+202A-202E, U+2066-2069,
U+200E, U+200F, U+061C), the zero-width characters (U+200B-200D, U+2060, U+FEFF) and the soft
hyphen (U+00AD), among others."""
BLANK_LETTERS = frozenset("\u034f\u115f\u1160\u3164\uffa0")
"""Characters shown as nothing that Unicode files as letters or marks, also refused."""
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")


def check_name(value: object, what: str = "name") -> str:
    """`value` as a valid name, or GalleryError saying what is wrong with it; `what`
    ("collection", "person", "model", or e.g. "key": collection rules) starts the message.

    Every name is normalised to NFC (a name typed decomposed is the same name) and then must:
        - have 1 to 200 characters, and no white space at either end;
        - hold no character that is invisible or changes how the text around it is shown:
          control, format (bidi controls such as U+202E RIGHT-TO-LEFT OVERRIDE, zero-width
          spaces and joiners, the soft hyphen), line or paragraph separators (see
          `HIDDEN_CATEGORIES`), `BLANK_LETTERS`, NUL or lone surrogates;
        - collection names: hold no "/" and not be "." or "..", since each is one part of a URL
          path;
        - person names may hold "/" (the person is the last part of its URL), but no part between
          slashes may be empty, "." or "..";
        - model names: letters, digits, "_", "-" and ".", starting with a letter or a digit.
    """
    if not isinstance(value, str):
        raise GalleryError(f"{what} name must be a string, not {type(value).__name__}")
    label = f"{what} name"
    name = unicodedata.normalize("NFC", _check_text(value, label))
    if not name.strip():
        raise GalleryError(f"{label} {value!r} is empty")
    if len(name) > MAX_NAME:
        raise GalleryError(f"{label} {name[:40]!r}... has {len(name)} characters (max {MAX_NAME})")
    for char in name:
        kind = HIDDEN_CATEGORIES.get(unicodedata.category(char))
        if kind is None and char in BLANK_LETTERS:
            kind = "a character shown as nothing"
        if kind is not None:
            raise GalleryError(f"{label} {name!r} contains {_code_point(char)}, {kind}")
    if name != name.strip():
        raise GalleryError(f"{label} {name!r} starts or ends with white space")
    if what == "model":
        if not MODEL_NAME.fullmatch(name):
            raise GalleryError(
                f"{label} {name!r} must be letters, digits, '_', '-' and '.', starting with a "
                "letter or a digit"
            )
    elif what == "person":
        if any(part in ("", ".", "..") for part in name.split("/")):
            raise GalleryError(
                f"{label} {name!r} has an empty, '.' or '..' part between slashes (it could not "
                "be reached by URL)"
            )
    elif "/" in name or name in (".", ".."):
        raise GalleryError(
            f"{label} {name!r} holds '/' or is '.' or '..' (it could not be reached by URL)"
        )
    return name


def _code_point(char: str) -> str:
    """E.g. "U+202E RIGHT-TO-LEFT OVERRIDE"."""
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X}" + (f" {name}" if name else "")


def _check_text(value: str, what: str) -> str:
    """`value` unless it cannot be stored: a NUL character or a lone surrogate."""
    if "\x00" in value:
        raise GalleryError(f"{what} {value!r} contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise GalleryError(f"{what} {value!r} is not valid Unicode ({error.reason})") from None
    return value


def check_embedding(value: object) -> np.ndarray:
    """A read-only copy of `value`, or GalleryError: it must already be a float32 numpy vector
    of shape (D,), 1 <= D <= 65536, every value finite, L2 norm 1 (within 1e-3)."""
    if not isinstance(value, np.ndarray):
        raise GalleryError(f"embedding must be a numpy float32 array, not {type(value).__name__}")
    if value.dtype != np.float32:
        raise GalleryError(f"embedding must be float32, not {value.dtype}")
    if value.ndim != 1 or not 1 <= value.shape[0] <= MAX_DIM:
        raise GalleryError(
            f"embedding must have shape (D,) with 1 <= D <= {MAX_DIM}, not {value.shape}"
        )
    if not np.isfinite(value).all():
        raise GalleryError("embedding contains NaN or infinite values")
    norm = float(np.linalg.norm(value.astype(np.float64)))
    if abs(norm - 1.0) > NORM_TOLERANCE:
        raise GalleryError(
            f"embedding is not L2-normalised (norm {norm:.6g}); pass v / np.linalg.norm(v)"
        )
    vector = value.copy()  # later changes to the caller's array cannot undo these checks
    vector.flags.writeable = False
    return vector


def check_model_dimension(model: str, dim: int) -> None:
    """GalleryError unless an embedding of `dim` values fits `model`: a model of
    `MODEL_DIMENSIONS` has exactly its dimension."""
    expected = MODEL_DIMENSIONS.get(model)
    if expected is not None and dim != expected:
        raise GalleryError(
            f"model {model!r} makes {expected}-dimensional embeddings; this one has {dim} values"
        )


def check_box(value: object) -> Box | None:
    """`value` as a box ``(x1, y1, x2, y2)`` of finite floats (pixels, x1 <= x2, y1 <= y2), or
    None; GalleryError otherwise."""
    if value is None:
        return None
    if isinstance(value, (str, bytes)):
        raise GalleryError(f"box must be 4 numbers (x1, y1, x2, y2) or None, not {value!r}")
    try:
        numbers = [float(v) for v in value]  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        raise GalleryError(
            f"box must be 4 numbers (x1, y1, x2, y2) or None, not {value!r}"
        ) from None
    if len(numbers) != 4 or not all(math.isfinite(v) for v in numbers):
        raise GalleryError(f"box must be 4 finite numbers (x1, y1, x2, y2), not {value!r}")
    x1, y1, x2, y2 = numbers
    if x2 < x1 or y2 < y1:
        raise GalleryError(f"box {tuple(numbers)} has x2 < x1 or y2 < y1")
    return (x1, y1, x2, y2)


def embedding_bytes(embedding: np.ndarray) -> bytes:
    """The stored form of a (D,) float32 vector: D * 4 bytes, little-endian."""
    return embedding.astype("<f4", copy=False).tobytes()


def embedding_from_bytes(data: bytes) -> np.ndarray:
    """A fresh, writable (D,) float32 vector from its stored bytes."""
    return np.frombuffer(data, dtype="<f4").astype(np.float32)


@dataclass(frozen=True)
class NewFace:
    """One photo's face to enrol (or import). Checked on construction (GalleryError when
    invalid): among others, a model of `MODEL_DIMENSIONS` must have its dimension.

    Attributes:
        embedding: float32 array of shape (D,), L2-normalised.
        model: name of the model that made the embedding, e.g. "dlib_resnet_v1".
        source: where the face came from: a path, a URL or "<bytes>".
        box: ``(x1, y1, x2, y2)`` in pixels of the source image, or None.
    """

    embedding: np.ndarray
    model: str
    source: str
    box: Box | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "embedding", check_embedding(self.embedding))
        object.__setattr__(self, "model", check_name(self.model, "model"))
        check_model_dimension(self.model, self.dim)
        if not isinstance(self.source, str):
            raise GalleryError(f"source must be a string, not {type(self.source).__name__}")
        _check_text(self.source, "source")
        object.__setattr__(self, "box", check_box(self.box))

    @property
    def dim(self) -> int:
        """D, the length of the embedding."""
        return int(self.embedding.shape[0])


@dataclass(frozen=True)
class FaceRecord:
    """A stored face. `id` is unique in the database and never reused; `created` is UTC."""

    id: int
    person: str
    model: str
    source: str
    box: Box | None
    embedding: np.ndarray
    created: datetime

    def summary(self) -> dict[str, Any]:
        """The record without its embedding, JSON-ready: id, person, model, source, box and
        created (ISO 8601)."""
        return {
            "id": self.id,
            "person": self.person,
            "model": self.model,
            "source": self.source,
            "box": self.box,
            "created": self.created.isoformat(),
        }


@dataclass(frozen=True)
class PersonInfo:
    """A person of a collection and the number of faces enrolled for them."""

    person: str
    faces: int


@dataclass(frozen=True)
class CollectionInfo:
    """A collection with its numbers of persons and faces, and the recognition model of its
    faces (None while it has none; a collection enrolled through `FaceDatabase` keeps to one)."""

    name: str
    persons: int
    faces: int
    model: str | None = None
