"""Load images from paths, bytes, numpy arrays or PIL images as H x W x 3 uint8 RGB arrays.

Every failure raises :class:`kao.errors.ImageError` naming the source and the reason.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import stat
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from kao.errors import ImageError

ImageInput = str | os.PathLike[str] | bytes | np.ndarray | Image.Image

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})
DEFAULT_MAX_PIXELS = 80_000_000
# The formats Pillow may decode ("JPEG" covers MPO, as Pillow calls many phone JPEGs); the
# others (EPS runs Ghostscript, for one) are refused as "unsupported format".
_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF")
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I"})
_STRIP_PIXELS = 1 << 20
"""Pixels converted to RGB at a time while decoding (a few MB of scratch memory)."""
_OS_REASONS = {
    errno.ENOENT: "no such file",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EISDIR: "is a directory",
    errno.ELOOP: "a loop of symbolic links",
    errno.ENAMETOOLONG: "file name too long",
}
_SPECIAL_FILES = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)
# Opening a FIFO for reading waits for a writer unless O_NONBLOCK is given (not on Windows).
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
_EMPTY = "empty image (zero width or height)"
_UNSUPPORTED_TYPE = "unsupported input type, expected a path, bytes, a numpy array or a PIL image"


def describe(image: ImageInput) -> str:
    """A short label for ``image`` in messages and JSON.

    The path as given for paths (made printable: see :func:`printable`), ``'<bytes>'`` for
    bytes, ``'<ndarray HxWxC dtype>'`` (the array shape) for arrays, ``'<PIL MODE WxH>'``
    (width x height in pixels) for PIL images and ``'<TYPE>'`` for anything else.
    """
    if isinstance(image, (str, os.PathLike)):
        return printable(os.fsdecode(image))
    if isinstance(image, bytes):
        return "<bytes>"
    if isinstance(image, np.ndarray):
        return f"<ndarray {'x'.join(map(str, image.shape)) or '0-d'} {image.dtype}>"
    if isinstance(image, Image.Image):
        return f"<PIL {image.mode} {image.width}x{image.height}>"
    return f"<{type(image).__name__}>"


def printable(text: str) -> str:
    """``text`` as valid UTF-8 that prints on one line: the bytes of a file name that are not
    UTF-8 (which Python keeps as surrogate escapes) become ``\\xNN``, and control, format
    and other unprintable characters (a newline, a right-to-left override) ``\\n``,
    ``\\u202e``; other text is unchanged."""
    if text.isprintable():
        return text
    with contextlib.suppress(UnicodeEncodeError):  # a lone surrogate no file name holds
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def load_image(
    image: ImageInput, *, max_pixels: int | None = None, copy: bool = True
) -> np.ndarray:
    """Load ``image`` as an H x W x 3 uint8 array, RGB channel order, C-contiguous.

    ``image`` is a path or encoded bytes (JPEG, PNG, WebP, BMP, TIFF, GIF; first frame), a
    numpy array in RGB order (H x W grey, H x W x 1, H x W x 3 RGB or H x W x 4 RGBA) or a PIL
    image. Alpha is dropped, not composited. EXIF orientation is applied to files, bytes and
    PIL images. Values are mapped to 0..255 by the range of their type: 16-bit values are
    shifted right by 8, bool is 0/255, floats are taken as 0..1 when their maximum is <= 1
    and as 0..255 otherwise (clipped, NaN/inf refused), other integers must lie in 0..255.

    ``max_pixels`` (width * height) defaults to the ``KAO_MAX_PIXELS`` environment variable,
    else :data:`DEFAULT_MAX_PIXELS`; files are checked from their header before decoding.
    A path must name a regular file: a FIFO, a device or a socket is refused without being
    read. The result never shares memory with the input, unless ``copy`` is False: then an
    array that is already H x W x 3 uint8 and C-contiguous is returned as it is (for readers
    that never write into it: a copy of a 24-megapixel photo is 72 MB).

    Decoding takes about 7 bytes a pixel at its peak (Pillow's 4 and the result's 3), 4 for
    grey, palette and bilevel images.
    """
    source = describe(image)
    limit = pixel_limit(source, max_pixels)
    if isinstance(image, (str, os.PathLike)):
        with _open_regular(image, source) as file:
            if os.fstat(file.fileno()).st_size == 0:
                raise ImageError(source, "empty file")
            return _decode(file, source, limit)
    if isinstance(image, bytes):
        if not image:
            raise ImageError(source, "empty bytes")
        return _decode(io.BytesIO(image), source, limit)
    if isinstance(image, np.ndarray):
        if not copy and _is_rgb(image):
            _check_size(source, image.shape[1], image.shape[0], limit)
            return image
        return _from_array(image, source, limit)
    if isinstance(image, Image.Image):
        return _from_pil(image, source, limit)
    raise ImageError(source, _UNSUPPORTED_TYPE)


def find_images(
    paths: Iterable[str | os.PathLike[str]], *, errors: list[ImageError] | None = None
) -> list[Path]:
    """Expand files and folders into a list of image files, without duplicates.

    A folder is walked recursively, skipping hidden files and folders (name starting with
    '.') and keeping the regular files whose extension, in any case, is in
    :data:`IMAGE_EXTENSIONS`; its images are returned sorted. A file given explicitly is kept
    whatever its extension or kind, so that :func:`load_image` reports a clear error.

    Problems raise :class:`ImageError`, or, when ``errors`` is given, are appended to it
    while the rest is still expanded: a missing path, a folder without images, a sub-folder
    that cannot be listed, and a file with an image extension in a folder that is not a
    regular file (a FIFO, a device: never opened) or cannot be looked at.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    found: list[Path] = []
    for given in paths:
        path = Path(given)
        problems: list[ImageError] = []
        if path.is_dir():
            images = sorted(_walk(path, problems))
            if not images and not problems:
                looked_for = ", ".join(sorted(IMAGE_EXTENSIONS))
                problems.append(
                    ImageError(describe(given), f"no images found (looked for {looked_for})")
                )
            found.extend(images)
        elif os.path.lexists(path):
            found.append(path)
        else:
            problems.append(ImageError(describe(given), "no such file or directory"))
        if problems and errors is None:
            raise problems[0]
        if errors is not None:
            errors.extend(problems)
    return list(dict.fromkeys(found))


def _walk(folder: Path, problems: list[ImageError]) -> Iterator[Path]:
    """The regular image files under `folder`; a sub-folder that cannot be listed and an image
    file that is not a regular file (or cannot be looked at) are appended to `problems`."""

    def unlisted(exc: OSError) -> None:
        where = describe(exc.filename or folder)
        problems.append(ImageError(where, f"cannot read the folder ({_os_reason(exc)})"))

    for root, dirs, files in os.walk(folder, onerror=unlisted):
        dirs[:] = [name for name in dirs if not name.startswith(".")]
        for name in files:
            if name.startswith(".") or Path(name).suffix.lower() not in IMAGE_EXTENSIONS:
                continue
            path = Path(root, name)
            try:
                reason = _not_regular(path.stat().st_mode)
            except OSError as exc:
                reason = _os_reason(exc)
            if reason is None:
                yield path
            else:
                problems.append(ImageError(describe(path), reason))


def _open_regular(path: str | os.PathLike[str], source: str) -> BinaryIO:
    """`path` opened for reading, or ImageError when it is not a regular file. Its kind is
    looked at before it is opened (opening a device can act on it), and again once opened
    without blocking (a FIFO would wait for a writer), in case it was replaced meanwhile."""
    try:
        reason = _not_regular(os.stat(path).st_mode)
        if reason is None:
            file = os.fdopen(os.open(path, _OPEN_FLAGS), "rb")
            reason = _not_regular(os.fstat(file.fileno()).st_mode)
            if reason is None:
                return file
            file.close()
    except OSError as exc:
        raise ImageError(source, _os_reason(exc)) from exc
    raise ImageError(source, reason)


def _not_regular(mode: int) -> str | None:
    """Why a file of `mode` (st_mode) cannot be read as an image, or None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "is a directory"
    kind = next((name for test, name in _SPECIAL_FILES if test(mode)), "a special file")
    return f"not a regular file ({kind})"


def _os_reason(exc: OSError) -> str:
    """A short reason for an OSError of opening or looking at a file."""
    return _OS_REASONS.get(exc.errno or 0, f"cannot read: {exc.strerror or exc}")


def pixel_limit(source: str, max_pixels: int | None = None) -> int:
    """The largest image `load_image` decodes, in pixels (width * height): `max_pixels`, else
    the ``KAO_MAX_PIXELS`` environment variable, else :data:`DEFAULT_MAX_PIXELS`; ImageError
    naming `source` when the variable is not an integer or the limit is not positive."""
    if max_pixels is None:
        text = os.environ.get("KAO_MAX_PIXELS", "").strip()
        if not text:
            return DEFAULT_MAX_PIXELS
        try:
            max_pixels = int(text)
        except ValueError:
            raise ImageError(source, f"KAO_MAX_PIXELS is not an integer: {text!r}") from None
    if max_pixels <= 0:
        raise ImageError(source, f"the pixel limit must be positive, got {max_pixels}")
    return max_pixels


def _check_size(source: str, width: int, height: int, limit: int) -> None:
    if width * height > limit:
        raise ImageError(
            source,
            f"image too large: {width}x{height} = {width * height} pixels exceeds the limit "
            f"of {limit} (set KAO_MAX_PIXELS to raise it)",
        )


def _corrupt(exc: Exception) -> str:
    return f"truncated or corrupt image data ({type(exc).__name__}: {exc})"


def _decode(file: BinaryIO, source: str, limit: int) -> np.ndarray:
    with warnings.catch_warnings():
        # Pillow warns between 1x and 2x its own MAX_IMAGE_PIXELS; our limit decides instead.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            pil = Image.open(file, formats=_FORMATS)  # lazy: reads the header only
        except UnidentifiedImageError as exc:
            raise ImageError(source, "not an image or unsupported format") from exc
        except Image.DecompressionBombError as exc:  # above 2 x PIL.Image.MAX_IMAGE_PIXELS
            raise ImageError(source, f"image too large: {exc}") from exc
        except Exception as exc:  # a damaged header: OSError, EOFError, ValueError, ...
            raise ImageError(source, _corrupt(exc)) from exc
        with pil:
            if pil.format == "JPEG":
                _check_jpeg_data(file, pil, source)
            return _from_pil(pil, source, limit)


def _check_jpeg_data(file: BinaryIO, pil: Image.Image, source: str) -> None:
    """Refuse a JPEG whose compressed data is too short for the size its header declares.

    libjpeg decodes the blocks that are missing as flat grey and only warns (Pillow keeps no
    warnings), so a 5 KB file whose header says 8,900 x 8,900 would decode to 240 MB of grey.
    In a Huffman-coded JPEG (all but the rare arithmetic-coded ones, which are not checked)
    every 8 x 8 block of every component takes at least one bit. `file` is where Pillow left
    it after reading the header: at the first scan's data."""
    start = file.tell()
    end = file.seek(0, io.SEEK_END)
    file.seek(0)
    arithmetic = _arithmetic_jpeg(file.read(start))
    file.seek(start)
    if arithmetic or not getattr(pil, "layer", None):
        return
    h_max = max(layer[1] for layer in pil.layer)
    v_max = max(layer[2] for layer in pil.layer)
    blocks = sum(
        -(-pil.width * h // (8 * h_max)) * -(-pil.height * v // (8 * v_max))
        for _, h, v, _ in pil.layer
    )
    if (end - start) * 8 < blocks:
        raise ImageError(
            source,
            f"truncated or corrupt image data: {pil.width}x{pil.height} pixels need at least "
            f"{-(-blocks // 8)} bytes of JPEG data, the file has {end - start}",
        )


def _arithmetic_jpeg(header: bytes) -> bool:
    """Whether a JPEG `header` (its bytes up to the first scan) declares an arithmetic-coded
    frame (SOF9-11, SOF13-15); False for a Huffman-coded one or a header it cannot follow."""
    at = 2  # after SOI; then segments: 0xFF, marker, 2-byte length (counting itself), data
    while at + 4 <= len(header) and header[at] == 0xFF:
        marker = header[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):  # a frame header
            return marker >= 0xC9
        at += 2 + int.from_bytes(header[at + 2 : at + 4], "big")
    return False


def _from_pil(pil: Image.Image, source: str, limit: int) -> np.ndarray:
    if pil.width == 0 or pil.height == 0:
        raise ImageError(source, _EMPTY)
    _check_size(source, pil.width, pil.height, limit)
    try:
        pil.load()  # decodes everything now, so truncated data fails here
        # exif_transpose copies an image that needs no turning: only call it for one that does.
        if pil.getexif().get(ExifTags.Base.Orientation, 1) != 1:
            pil = ImageOps.exif_transpose(pil)
    # Decoders raise OSError, SyntaxError, ValueError, EOFError, struct.error, ... on bad data.
    except Exception as exc:
        raise ImageError(source, _corrupt(exc)) from exc
    if pil.mode in _SIXTEEN_BIT_MODES:
        # Mode "I" is 32-bit but in practice holds 16-bit samples (e.g. from old PNG readers).
        grey = np.clip(np.asarray(pil), 0, 65535) >> 8
        return _to_rgb(grey.astype(np.uint8))
    if pil.mode == "F":
        return _to_rgb(_float_to_uint8(np.asarray(pil), source))
    # Converted a strip at a time into the result: Pillow keeps RGB in 4 bytes a pixel, so a
    # whole-image conversion and copy would need 4 + 4 + 3 bytes a pixel at once, not 4 + 3.
    rgb = np.empty((pil.height, pil.width, 3), np.uint8)
    rows = max(1, _STRIP_PIXELS // pil.width)
    for top in range(0, pil.height, rows):
        strip = pil.crop((0, top, pil.width, min(top + rows, pil.height)))
        if strip.mode == "P" and "transparency" in strip.info:
            strip = strip.convert("RGBA")  # P -> RGB with transparency makes Pillow warn
        try:
            rgb[top : top + rows] = np.asarray(strip.convert("RGB"))
        except ValueError as exc:
            raise ImageError(source, f"unsupported image mode {pil.mode}") from exc
    return rgb


def _is_rgb(array: np.ndarray) -> bool:
    """Whether `array` is already what `load_image` returns: H x W x 3 uint8, C-contiguous,
    not empty."""
    return (
        array.dtype == np.uint8
        and array.ndim == 3
        and array.shape[2] == 3
        and array.size > 0
        and array.flags.c_contiguous
    )


def _from_array(array: np.ndarray, source: str, limit: int) -> np.ndarray:
    if array.ndim == 3 and array.shape[2] in (1, 3, 4):
        array = array[:, :, :3]
    elif array.ndim != 2:
        raise ImageError(source, "expected an H x W, H x W x 1, H x W x 3 or H x W x 4 array")
    height, width = array.shape[:2]
    if height == 0 or width == 0:
        raise ImageError(source, _EMPTY)
    _check_size(source, width, height, limit)
    if array.dtype == np.uint8:
        pixels = array
    elif array.dtype == np.bool_:
        pixels = array.astype(np.uint8) * 255
    elif array.dtype == np.uint16:
        pixels = (array >> 8).astype(np.uint8)
    elif np.issubdtype(array.dtype, np.floating):
        pixels = _float_to_uint8(array, source)
    elif np.issubdtype(array.dtype, np.integer):
        if array.min() < 0 or array.max() > 255:
            raise ImageError(source, f"{array.dtype} values must lie in 0..255")
        pixels = array.astype(np.uint8)
    else:
        raise ImageError(source, f"unsupported dtype {array.dtype}")
    return _to_rgb(pixels)


def _float_to_uint8(values: np.ndarray, source: str) -> np.ndarray:
    if not np.isfinite(values).all():
        raise ImageError(source, "NaN or infinite pixel values")
    scale = 255.0 if values.max() <= 1.0 else 1.0
    return np.clip(np.rint(values * scale), 0, 255).astype(np.uint8)


def _to_rgb(pixels: np.ndarray) -> np.ndarray:
    """H x W or H x W x C (C = 1 or 3) uint8 -> a new C-contiguous H x W x 3 uint8 array."""
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if pixels.shape[2] == 1:
        return np.repeat(pixels, 3, axis=2)
    return np.array(pixels, dtype=np.uint8, order="C", copy=True)
