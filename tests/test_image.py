"""Tests of kao.image: decoding real files, bytes, arrays and PIL images, and their errors."""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from kao.errors import ImageError
from kao.image import (
    DEFAULT_MAX_PIXELS,
    IMAGE_EXTENSIONS,
    describe,
    find_images,
    load_image,
)

LFW = Path(__file__).resolve().parents[2] / "shared/data/lfw/lfw-deepfunneled"
RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


def quadrants(height: int = 32, width: int = 48) -> np.ndarray:
    """H x W x 3 uint8 test card: red, green / blue, white quadrants."""
    card = np.zeros((height, width, 3), np.uint8)
    h, w = height // 2, width // 2
    card[:h, :w], card[:h, w:], card[h:, :w], card[h:, w:] = RED, GREEN, BLUE, WHITE
    return card


def encode(image: Image.Image | np.ndarray, fmt: str, **options: object) -> bytes:
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def check_quadrants(rgb: np.ndarray, height: int, width: int, tolerance: int) -> None:
    assert rgb.shape == (height, width, 3)
    assert rgb.dtype == np.uint8
    assert rgb.flags.c_contiguous
    h, w = height // 4, width // 4  # sample the centre of each quadrant
    centres = [(h, w), (h, 3 * w), (3 * h, w), (3 * h, 3 * w)]
    for (y, x), colour in zip(centres, [RED, GREEN, BLUE, WHITE], strict=True):
        assert np.abs(rgb[y, x].astype(int) - colour).max() <= tolerance, (y, x, rgb[y, x])


def raises_image_error(image: object, source: str, reason: str, **kwargs: object) -> ImageError:
    with pytest.raises(ImageError) as info:
        load_image(image, **kwargs)  # type: ignore[arg-type]
    error = info.value
    assert error.source == source
    assert reason in error.reason
    assert str(error).startswith(f"{source}: ")
    return error


@pytest.fixture
def photo() -> Path:
    path = LFW / "Aaron_Eckhart/Aaron_Eckhart_0001.jpg"
    if not path.is_file():
        pytest.skip(f"LFW photo not available at {path}")
    return path


# --- formats -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "suffix", "tolerance"),
    [
        ("JPEG", ".jpg", 40),
        ("PNG", ".png", 0),
        ("WEBP", ".webp", 40),
        ("BMP", ".bmp", 0),
        ("TIFF", ".tif", 0),
        ("GIF", ".gif", 0),
    ],
)
def test_format_round_trip(tmp_path: Path, fmt: str, suffix: str, tolerance: int) -> None:
    path = write(tmp_path / f"card{suffix}", encode(quadrants(), fmt))
    check_quadrants(load_image(path), 32, 48, tolerance)
    check_quadrants(load_image(str(path)), 32, 48, tolerance)
    check_quadrants(load_image(path.read_bytes()), 32, 48, tolerance)


def test_real_photo(photo: Path) -> None:
    rgb = load_image(photo)
    assert rgb.shape == (250, 250, 3)
    assert rgb.dtype == np.uint8
    assert 40 < rgb.mean() < 220
    assert rgb.std() > 20  # a real picture, not a flat colour
    assert np.array_equal(load_image(photo.read_bytes()), rgb)
    assert np.array_equal(load_image(Image.open(photo)), rgb)


def test_unsupported_pillow_format_is_refused(tmp_path: Path) -> None:
    # Pillow reads PPM, but only the listed formats are decoded.
    path = write(tmp_path / "card.ppm", encode(quadrants(), "PPM"))
    raises_image_error(path, str(path), "not an image or unsupported format")


# --- EXIF orientation ---------------------------------------------------------------------


def rotated_jpeg() -> bytes:
    """A 20 x 40 JPEG, red top-left corner, tagged Orientation=6 (display rotated 90° CW)."""
    card = np.zeros((20, 40, 3), np.uint8)
    card[:8, :8] = RED
    image = Image.fromarray(card)
    exif = image.getexif()
    exif[0x0112] = 6
    return encode(image, "JPEG", exif=exif, quality=95)


def check_rotated(rgb: np.ndarray) -> None:
    assert rgb.shape == (40, 20, 3)
    assert rgb[2, -3, 0] > 200 and rgb[2, -3, 1:].max() < 40  # red now top-right
    assert rgb[2, 2].max() < 40


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    data = rotated_jpeg()
    path = write(tmp_path / "rotated.jpg", data)
    check_rotated(load_image(path))
    check_rotated(load_image(data))
    check_rotated(load_image(Image.open(io.BytesIO(data))))


# --- modes ---------------------------------------------------------------------------------


def load_png(tmp_path: Path, image: Image.Image) -> np.ndarray:
    return load_image(write(tmp_path / "mode.png", encode(image, "PNG")))


def test_grey(tmp_path: Path) -> None:
    rgb = load_png(tmp_path, Image.new("L", (5, 4), 77))
    assert rgb.shape == (4, 5, 3)
    assert (rgb == 77).all()


def test_grey_alpha_drops_alpha(tmp_path: Path) -> None:
    rgb = load_png(tmp_path, Image.new("LA", (5, 4), (77, 0)))
    assert (rgb == 77).all()


def test_rgba_drops_alpha_without_compositing(tmp_path: Path) -> None:
    rgb = load_png(tmp_path, Image.new("RGBA", (5, 4), (10, 20, 30, 0)))
    assert (rgb == (10, 20, 30)).all()


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "P", "1", "CMYK", "LA"])
def test_large_images_are_converted_whole(mode: str) -> None:
    # Over a million pixels: converted in several strips.
    noise = np.random.default_rng(1).integers(0, 256, (1100, 1500, 4), np.uint8)
    image = Image.fromarray(noise, "RGBA").convert(mode)
    if mode == "P":
        image.info["transparency"] = 3
    expected = np.asarray(image.convert("RGBA" if mode == "P" else mode).convert("RGB"))
    assert np.array_equal(load_image(image), expected)


def test_an_empty_pil_image_is_refused() -> None:
    raises_image_error(Image.new("RGB", (0, 5)), "<PIL RGB 0x5>", "empty image")


def test_arrays_are_copied_unless_asked_not_to() -> None:
    rgb = quadrants()
    assert load_image(rgb, copy=False) is rgb
    assert not np.shares_memory(load_image(rgb), rgb)
    grey = rgb[:, :, 0]
    assert load_image(grey, copy=False).shape == (*grey.shape, 3)  # converted as usual
    strided = rgb[:, ::2]
    assert load_image(strided, copy=False).flags.c_contiguous
    with pytest.raises(ImageError, match="exceeds the limit of 100"):
        load_image(rgb, copy=False, max_pixels=100)


def test_palette_with_transparency(tmp_path: Path) -> None:
    image = Image.new("P", (4, 3), 1)
    image.putpalette([255, 0, 0, 0, 200, 100, 0, 0, 255])
    image.putpixel((0, 0), 0)
    image.putpixel((1, 0), 2)
    # Per-entry alpha is stored as bytes, which makes Pillow's P -> RGB conversion warn.
    data = encode(image, "PNG", transparency=bytes([0, 128, 255]))
    assert isinstance(Image.open(io.BytesIO(data)).info["transparency"], bytes)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rgb = load_image(write(tmp_path / "palette.png", data))
        gif = load_image(encode(image, "GIF", transparency=0))  # a single transparent index
    assert rgb[0, :3].tolist() == [list(RED), list(BLUE), [0, 200, 100]]
    assert np.array_equal(gif, rgb)


def test_sixteen_bit_png_is_shifted_not_stretched(tmp_path: Path) -> None:
    values = np.array([[0, 255, 256, 32768, 65535]], np.uint16)
    image = Image.fromarray(values)
    assert image.mode == "I;16"
    rgb = load_png(tmp_path, image)
    assert rgb[0, :, 0].tolist() == [0, 0, 1, 128, 255]
    assert (rgb[..., 0] == rgb[..., 2]).all()


def test_sixteen_bit_big_endian_and_int32_modes() -> None:
    values = np.array([[0, 32768, 65535]], np.uint16)
    big = Image.frombytes("I;16B", (3, 1), values.astype(">u2").tobytes())
    assert load_image(big)[0, :, 0].tolist() == [0, 128, 255]
    assert load_image(big.convert("I"))[0, :, 0].tolist() == [0, 128, 255]


def test_float_mode() -> None:
    unit = Image.fromarray(np.array([[0.0, 0.5, 1.0]], np.float32))
    assert unit.mode == "F"
    assert load_image(unit)[0, :, 1].tolist() == [0, 128, 255]
    wide = Image.fromarray(np.array([[-5.0, 100.0, 300.0]], np.float32))
    assert load_image(wide)[0, :, 1].tolist() == [0, 100, 255]


def test_cmyk(tmp_path: Path) -> None:
    image = Image.new("CMYK", (6, 4), (0, 255, 255, 0))  # no cyan, full magenta and yellow
    rgb = load_image(write(tmp_path / "cmyk.tif", encode(image, "TIFF")))
    assert (rgb == RED).all()
    jpeg = load_image(encode(image, "JPEG", quality=95))
    assert np.abs(jpeg.astype(int) - RED).max() < 30


def test_one_bit(tmp_path: Path) -> None:
    image = Image.new("1", (4, 2), 0)
    image.putpixel((3, 1), 1)
    rgb = load_image(write(tmp_path / "bits.bmp", encode(image, "BMP")))
    assert rgb[..., 0].tolist() == [[0, 0, 0, 0], [0, 0, 0, 255]]


# --- pixel limit ---------------------------------------------------------------------------


def test_pixel_limit_argument(tmp_path: Path) -> None:
    path = write(tmp_path / "big.png", encode(quadrants(20, 20), "PNG"))
    raises_image_error(
        path,
        str(path),
        "image too large: 20x20 = 400 pixels exceeds the limit of 399 (set KAO_MAX_PIXELS",
        max_pixels=399,
    )
    assert load_image(path, max_pixels=400).shape == (20, 20, 3)
    raises_image_error(path, str(path), "must be positive", max_pixels=0)


def test_pixel_limit_is_checked_before_decoding(tmp_path: Path) -> None:
    data = encode(quadrants(200, 300), "PNG")
    path = write(tmp_path / "half.png", data[: len(data) // 2])
    raises_image_error(path, str(path), "300x200 = 60000 pixels", max_pixels=1000)
    raises_image_error(path, str(path), "truncated or corrupt")


def test_pixel_limit_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert DEFAULT_MAX_PIXELS == 80_000_000
    path = write(tmp_path / "big.png", encode(quadrants(20, 30), "PNG"))
    monkeypatch.setenv("KAO_MAX_PIXELS", "599")
    raises_image_error(path, str(path), "exceeds the limit of 599")
    raises_image_error(quadrants(20, 30), "<ndarray 20x30x3 uint8>", "exceeds the limit of 599")
    raises_image_error(Image.new("RGB", (30, 20)), "<PIL RGB 30x20>", "exceeds the limit of 599")
    assert load_image(path, max_pixels=600).shape == (20, 30, 3)  # the argument wins
    monkeypatch.setenv("KAO_MAX_PIXELS", "600")
    assert load_image(path).shape == (20, 30, 3)
    monkeypatch.setenv("KAO_MAX_PIXELS", "lots")
    raises_image_error(path, str(path), "KAO_MAX_PIXELS is not an integer: 'lots'")


def test_pillow_decompression_bomb_guard_is_converted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path / "big.png", encode(quadrants(20, 20), "PNG"))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 300)  # warns above 300, raises above 600
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_image(path).shape == (20, 20, 3)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    raises_image_error(path, str(path), "image too large")


# --- file errors ---------------------------------------------------------------------------


def test_not_an_image(tmp_path: Path) -> None:
    path = write(tmp_path / "notes.jpg", b"these are not the pixels you are looking for\n")
    raises_image_error(path, str(path), "not an image or unsupported format")


def test_truncated_jpeg(tmp_path: Path, photo: Path) -> None:
    data = photo.read_bytes()
    path = write(tmp_path / "half.jpg", data[: len(data) // 2])
    raises_image_error(path, str(path), "truncated or corrupt")
    raises_image_error(data[: len(data) // 2], "<bytes>", "truncated or corrupt")


def test_truncated_png(tmp_path: Path) -> None:
    data = encode(np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8), "PNG")
    path = write(tmp_path / "half.png", data[: len(data) // 2])
    raises_image_error(path, str(path), "truncated or corrupt")


@pytest.mark.parametrize("size", [8, 20, 30])
def test_truncated_header(tmp_path: Path, size: int) -> None:
    # Pillow reports a cut header either as unidentified or as a short read; both are errors.
    path = write(tmp_path / "head.png", encode(quadrants(), "PNG")[:size])
    error = raises_image_error(path, str(path), "")
    unidentified = error.reason == "not an image or unsupported format"
    assert unidentified or error.reason.startswith("truncated or corrupt image data (")


def test_empty_file(tmp_path: Path) -> None:
    path = write(tmp_path / "empty.png", b"")
    raises_image_error(path, str(path), "empty file")
    raises_image_error(b"", "<bytes>", "empty bytes")


def test_directory(tmp_path: Path) -> None:
    raises_image_error(tmp_path, str(tmp_path), "is a directory")


def test_missing_path(tmp_path: Path) -> None:
    path = str(tmp_path / "nowhere" / "face.jpg")
    raises_image_error(path, path, "no such file")


def test_permission_denied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path / "secret.png", encode(quadrants(), "PNG"))
    if os.name != "posix" or os.geteuid() == 0:  # root reads anything: simulate the refusal
        real_open = os.open

        def refuse(file: str, *args: Any, **kwargs: Any) -> int:
            if os.fspath(file) == str(path):
                raise PermissionError(13, "Permission denied", str(path))
            return real_open(file, *args, **kwargs)

        monkeypatch.setattr(os, "open", refuse)
    path.chmod(0)
    try:
        raises_image_error(path, str(path), "permission denied")
    finally:
        path.chmod(0o600)


def test_bad_bytes() -> None:
    raises_image_error(b"GIF89a but not really", "<bytes>", "not an image or unsupported format")


# --- numpy arrays --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("array", "expected"),
    [
        (np.full((2, 3), 7, np.uint8), [7, 7, 7]),
        (np.full((2, 3, 1), 7, np.uint8), [7, 7, 7]),
        (np.full((2, 3, 3), [1, 2, 3], np.uint8), [1, 2, 3]),
        (np.full((2, 3, 4), [1, 2, 3, 0], np.uint8), [1, 2, 3]),
        (np.full((2, 3), 32768, np.uint16), [128, 128, 128]),
        (np.full((2, 3, 3), [0, 256, 65535], np.uint16), [0, 1, 255]),
        (np.ones((2, 3), bool), [255, 255, 255]),
        (np.full((2, 3, 3), [0.0, 0.5, 1.0], np.float32), [0, 128, 255]),
        (np.full((2, 3, 3), [0.0, 127.0, 255.0]), [0, 127, 255]),
        (np.full((2, 3, 3), [0, 100, 255], np.int64), [0, 100, 255]),
        (np.full((2, 3), 9, np.int8), [9, 9, 9]),
    ],
    ids=describe,
)
def test_array_inputs(array: np.ndarray, expected: list[int]) -> None:
    rgb = load_image(array)
    assert rgb.shape == (2, 3, 3)
    assert rgb.dtype == np.uint8
    assert rgb.flags.c_contiguous
    assert (rgb == expected).all()


@pytest.mark.parametrize(
    ("array", "reason"),
    [
        (np.zeros(5, np.uint8), "expected an H x W"),
        (np.zeros((2, 2, 3, 1), np.uint8), "expected an H x W"),
        (np.zeros((2, 2, 2), np.uint8), "expected an H x W"),
        (np.zeros((2, 2, 5), np.uint8), "expected an H x W"),
        (np.zeros((4, 0, 3), np.uint8), "empty image"),
        (np.full((2, 2), np.nan), "NaN or infinite pixel values"),
        (np.full((2, 2), np.inf, np.float32), "NaN or infinite pixel values"),
        (np.full((2, 2), 256, np.int32), "int32 values must lie in 0..255"),
        (np.full((2, 2), -1, np.int16), "int16 values must lie in 0..255"),
        (np.zeros((2, 2), complex), "unsupported dtype complex128"),
        (np.zeros((2, 2), object), "unsupported dtype object"),
    ],
    ids=describe,
)
def test_bad_arrays(array: np.ndarray, reason: str) -> None:
    raises_image_error(array, describe(array), reason)


def test_array_result_does_not_alias_input() -> None:
    card = quadrants()
    rgb = load_image(card)
    assert not np.shares_memory(rgb, card)
    rgb[:] = 0
    check_quadrants(card, 32, 48, 0)
    flipped = load_image(card[:, ::-1])  # a non-contiguous view
    assert flipped.flags.c_contiguous
    assert tuple(flipped[0, 0]) == GREEN
    fortran = load_image(np.asfortranarray(card))
    assert fortran.flags.c_contiguous
    assert np.array_equal(fortran, card)


# --- PIL images and other inputs ---------------------------------------------------------


def test_pil_inputs() -> None:
    card = quadrants()
    image = Image.fromarray(card)
    rgb = load_image(image)
    assert np.array_equal(rgb, card)
    rgb[:] = 0
    assert np.array_equal(np.asarray(image), card)  # the caller's image is untouched
    check_quadrants(load_image(image.convert("RGBA")), 32, 48, 0)
    grey = load_image(Image.fromarray(np.full((3, 4), 40000, np.uint16)))
    assert (grey == 156).all()


def test_unreadable_lazy_pil_image(photo: Path) -> None:
    data = photo.read_bytes()
    image = Image.open(io.BytesIO(data[: len(data) // 2]))
    raises_image_error(image, "<PIL RGB 250x250>", "truncated or corrupt")


@pytest.mark.parametrize(
    ("value", "source"), [(42, "<int>"), (None, "<NoneType>"), ([1, 2], "<list>")]
)
def test_unsupported_types(value: object, source: str) -> None:
    raises_image_error(value, source, "unsupported input type, expected a path, bytes")


def test_describe() -> None:
    assert describe("photos/a.jpg") == "photos/a.jpg"
    assert describe(Path("photos/a.jpg")) == os.path.join("photos", "a.jpg")
    assert describe(b"\xff\xd8") == "<bytes>"
    assert describe(np.zeros((4, 5, 3), np.float32)) == "<ndarray 4x5x3 float32>"
    assert describe(np.zeros((4, 5), np.uint8)) == "<ndarray 4x5 uint8>"
    assert describe(Image.new("RGBA", (10, 20))) == "<PIL RGBA 10x20>"
    assert describe(3.5) == "<float>"  # type: ignore[arg-type]


# --- find_images ---------------------------------------------------------------------------


def test_find_images(tmp_path: Path) -> None:
    for name in [
        "b.jpg",
        "a.PNG",
        "notes.txt",
        ".hidden.jpg",
        "sub/z.webp",
        "sub/deeper/c.TIFF",
        "sub/d.bmp",
        ".cache/e.jpg",
        "sub/.git/f.png",
        "g.jpeg",
        "h.tif",
    ]:
        write(tmp_path / name, b"")
    found = find_images([tmp_path])
    relative = [path.relative_to(tmp_path).as_posix() for path in found]
    assert relative == [
        "a.PNG",
        "b.jpg",
        "g.jpeg",
        "h.tif",
        "sub/d.bmp",
        "sub/deeper/c.TIFF",
        "sub/z.webp",
    ]
    assert all(isinstance(path, Path) for path in found)
    assert find_images([str(tmp_path)]) == found
    assert find_images(str(tmp_path)) == found  # a single path is not iterated by character


def test_find_images_keeps_explicit_files(tmp_path: Path) -> None:
    notes = write(tmp_path / "notes.txt", b"hello")
    hidden = write(tmp_path / ".hidden.jpg", b"")
    photo = write(tmp_path / "photos/a.jpg", b"")
    found = find_images([notes, tmp_path / "photos", hidden, photo])
    assert found == [notes, photo, hidden]  # in the order given, without duplicates


def test_find_images_errors(tmp_path: Path) -> None:
    write(tmp_path / "empty/notes.txt", b"")
    write(tmp_path / "empty/.hidden/a.jpg", b"")
    folder = str(tmp_path / "empty")
    with pytest.raises(ImageError) as info:
        find_images([folder])
    assert info.value.source == folder
    assert info.value.reason.startswith("no images found (looked for .bmp, .jpeg, .jpg, .png")
    missing = str(tmp_path / "missing")
    with pytest.raises(ImageError) as info:
        find_images([tmp_path / "empty/notes.txt", missing])
    assert str(info.value) == f"{missing}: no such file or directory"


def test_image_extensions() -> None:
    assert {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"} == IMAGE_EXTENSIONS


def test_real_photos_folder(photo: Path) -> None:
    folder = LFW / "Aaron_Peirsol"
    found = find_images([folder])
    assert [path.name for path in found] == sorted(path.name for path in folder.glob("*.jpg"))
    assert len(found) >= 2
    images = [load_image(path) for path in found]
    assert all(image.shape == (250, 250, 3) for image in images)
    assert not np.array_equal(images[0], images[1])
