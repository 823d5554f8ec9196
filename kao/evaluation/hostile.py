"""Bad image files, as a hostile but fair reviewer makes them: empty, random, text named as an
image, truncated in every format, headers that claim far more pixels than the file holds, thin
strips, decompression bombs, other formats under an image's name.

Every sample is small (the whole set is about 0.3 MB) and made the same way on every call (a
fixed random seed), without any face in it: the answer a reader owes each is an error naming the
file, or no faces. `kao bench serve --mixed` uploads them; the test suite writes them as files
(tests/hostile.py) beside special files and real photos in odd forms."""

from __future__ import annotations

import io
import random
import struct
import zipfile
import zlib
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

ERROR = "error naming the file"
NO_FACES = "no faces"
FACES = "faces"

_SEED = 15
_FORMATS = {"jpg": "JPEG", "png": "PNG", "webp": "WEBP", "gif": "GIF", "bmp": "BMP", "tif": "TIFF"}


@dataclass(frozen=True)
class Sample:
    """One file of the corpus: `what` it is, the answers a reader may give (`expect`, a set of
    ERROR, NO_FACES and FACES) and its bytes."""

    what: str
    expect: frozenset[str]
    data: bytes = field(repr=False)


def bad_images() -> dict[str, Sample]:
    """File name -> sample, for every kind of bad or awkward image file without a face."""
    rng = random.Random(_SEED)
    samples = {
        "empty.jpg": _error("an empty file", b""),
        "one_byte.png": _error("one byte", b"\x89"),
        "random.jpg": _error("4 KB of random bytes", rng.randbytes(4096)),
        "random.png": _error("4 KB of random bytes", rng.randbytes(4096)),
        "text.jpg": _error("plain text", b"hello, this is not an image\n"),
        "page.png": _error("an HTML page", b"<!doctype html><html><body>hi</body></html>"),
        "data.webp": _error("a JSON document", b'{"image": [1, 2, 3]}'),
        "drawing.png": _error(
            "an SVG drawing",
            b'<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"><rect/></svg>',
        ),
        "postscript.jpg": _error(
            "EPS (Pillow would run Ghostscript)",
            b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\nshowpage\n%%EOF\n",
        ),
        "photoshop.jpg": _error("a PSD header", _psd_header()),
        "archive.png": _error("a zip archive", _zip()),
        "header_8900.jpg": _error(
            "a 7 KB JPEG whose header claims 8900 x 8900, data for 64 x 64 (ends with EOI)",
            claims_size(_encoded(_noise(rng, 64, 64), "JPEG", quality=90), 8900, 8900),
        ),
        "header_8900_cut.jpg": _error(
            "a JPEG whose header claims 8900 x 8900, cut without its EOI",
            claims_size(_encoded(_noise(rng, 64, 64), "JPEG", quality=90), 8900, 8900)[:-2],
        ),
        "solid_79mp.png": Sample(
            "8900 x 8900 one-bit PNG of one colour (79 megapixels in about 10 KB)",
            frozenset({NO_FACES, ERROR}),
            _solid_bilevel_png(8900, 8900),
        ),
        "thin_3x60000.png": _no_faces("3 x 60,000 grey PNG", _encoded(_grey(3, 60000))),
        "thin_60000x3.png": _no_faces("60,000 x 3 grey PNG", _encoded(_grey(60000, 3))),
        "thin_3x60000.jpg": _no_faces(
            "3 x 60,000 noise JPEG", _encoded(_noise(rng, 3, 60000), "JPEG", quality=10)
        ),
        "thin_60000x3.jpg": _no_faces(
            "60,000 x 3 noise JPEG", _encoded(_noise(rng, 60000, 3), "JPEG", quality=10)
        ),
        "one_pixel.png": _no_faces("1 x 1 PNG", _encoded(_grey(1, 1), "PNG")),
        "grey.png": _no_faces("200 x 200 grey PNG", _encoded(_grey(200, 200), "PNG")),
        "sixteen_bit.png": _no_faces(
            "16-bit grey PNG of noise",
            _encoded(Image.fromarray(_noise_array(rng, 64, 64)[:, :, 0].astype(np.uint16) * 257)),
        ),
        "huge_text_chunk.png": Sample(
            "PNG with a zTXt chunk that inflates to 20 MB",
            frozenset({NO_FACES, ERROR}),
            _with_chunk(_encoded(_grey(16, 16), "PNG"), b"zTXt", b"note\0\0" + _zeros(20)),
        ),
        "huge_icc.png": Sample(
            "PNG with an iCCP profile that inflates to 20 MB",
            frozenset({NO_FACES, ERROR}),
            _with_chunk(_encoded(_grey(16, 16), "PNG"), b"iCCP", b"icc\0\0" + _zeros(20)),
        ),
        "bomb_30000.png": _error(
            "PNG header of 30000 x 30000 (900 megapixels, over Pillow's bomb limit)",
            _png(30000, 30000, 0, zlib.compress(b"\0" * 64)),
        ),
        "bomb_65535.gif": _error(
            "GIF of 65535 x 65535 (4.3 gigapixels) in 28 bytes", _gif_bomb(65535, 65535)
        ),
        "bomb_50000.bmp": _error("BMP header of 50000 x 50000", _bmp_header(50000, 50000)),
    }
    for suffix, fmt in _FORMATS.items():
        whole = _encoded(_noise(rng, 64, 48), fmt)
        for cut in (12, len(whole) // 2, len(whole) * 9 // 10):
            name = f"cut_{cut}_of_{len(whole)}.{suffix}"
            samples[name] = _error(
                f"{fmt} of 64 x 48 cut to {cut} of {len(whole)} bytes", whole[:cut]
            )
    return samples


def _error(what: str, data: bytes) -> Sample:
    return Sample(what, frozenset({ERROR}), data)


def _no_faces(what: str, data: bytes) -> Sample:
    return Sample(what, frozenset({NO_FACES}), data)


def _noise_array(rng: random.Random, width: int, height: int) -> np.ndarray:
    """height x width x 3 uint8 of uniform noise from `rng`."""
    return np.frombuffer(rng.randbytes(width * height * 3), np.uint8).reshape(height, width, 3)


def _noise(rng: random.Random, width: int, height: int) -> Image.Image:
    return Image.fromarray(_noise_array(rng, width, height))


def _grey(width: int, height: int) -> Image.Image:
    return Image.new("RGB", (width, height), (128, 128, 128))


def _encoded(image: Image.Image, fmt: str = "PNG", **options: int) -> bytes:
    stream = io.BytesIO()
    image.save(stream, fmt, **options)
    return stream.getvalue()


def _zeros(megabytes: int) -> bytes:
    """`megabytes` MB of zero bytes, deflated (about 1 KB a MB)."""
    packer = zlib.compressobj(9)
    block = b"\0" * 1_000_000
    return b"".join(packer.compress(block) for _ in range(megabytes)) + packer.flush()


def _chunk(kind: bytes, body: bytes) -> bytes:
    """One PNG chunk: length, type, body, CRC."""
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png(width: int, height: int, colour_type: int, idat: bytes, depth: int = 8) -> bytes:
    """A PNG of `width` x `height` pixels whose image data is the deflated `idat`."""
    header = struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", idat)
        + _chunk(b"IEND", b"")
    )


def _with_chunk(png: bytes, kind: bytes, body: bytes) -> bytes:
    """`png` with the chunk (`kind`, `body`) inserted after its IHDR."""
    after_header = 8 + 8 + 13 + 4
    return png[:after_header] + _chunk(kind, body) + png[after_header:]


def _solid_bilevel_png(width: int, height: int) -> bytes:
    """A one-bit grey PNG of `width` x `height`, every pixel black; compressed row by row, so it
    never holds the raw image (width * height / 8 bytes) in memory."""
    row = b"\0" * (1 + (width + 7) // 8)  # filter byte, then the packed pixels
    packer = zlib.compressobj(9)
    rows_per_block = 256
    parts = [
        packer.compress(row * min(rows_per_block, height - top))
        for top in range(0, height, rows_per_block)
    ]
    return _png(width, height, 0, b"".join(parts) + packer.flush(), depth=1)


def claims_size(jpeg: bytes, width: int, height: int) -> bytes:
    """`jpeg` with its frame header (baseline SOF0 or progressive SOF2) saying `width` x
    `height`: the data of the small image then ends long before the blocks of the large one."""
    frame = jpeg.find(b"\xff\xc0")
    # marker (2), length (2), precision (1), then height and width
    at = (frame if frame >= 0 else jpeg.index(b"\xff\xc2")) + 5
    return jpeg[:at] + struct.pack(">HH", height, width) + jpeg[at + 4 :]


def _psd_header() -> bytes:
    """The 26-byte header of a 3-channel 8-bit 64 x 64 Photoshop file, and nothing else."""
    return b"8BPS" + struct.pack(">H6xHIIHH", 1, 3, 64, 64, 8, 3)


def _bmp_header(width: int, height: int) -> bytes:
    """A 24-bit BMP file and info header for `width` x `height`, with no pixel data."""
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + len(info), 0, 0, 14 + len(info)) + info


def _gif_bomb(width: int, height: int) -> bytes:
    """A GIF whose screen and only frame are `width` x `height`, with one byte of image data."""
    size = struct.pack("<HH", width, height)
    frame = b"\x2c" + struct.pack("<HH", 0, 0) + size + b"\0" + b"\x02\x01\x44\0"
    return b"GIF89a" + size + b"\0\0\0" + frame + b";"


def _zip() -> bytes:
    stream = io.BytesIO()
    with zipfile.ZipFile(stream, "w") as archive:
        archive.writestr("inside.jpg", b"not really")
    return stream.getvalue()
