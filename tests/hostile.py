"""The probe corpus of issue 15 as files: every bad image of `kao.evaluation.hostile`, a real face
photo in odd but valid forms (wrong extension, CMYK, palette with transparency, 16 bits,
animated GIF, multi-page TIFF, a bad EXIF orientation, a file name that is not UTF-8, a 250-byte
name, inside a folder named like an image), and special files (a FIFO, a socket, links to
/dev/zero, to nowhere and to themselves, an unreadable folder when not run as root).

`write_corpus` returns a manifest: each file's path relative to the folder -> what it is and the
answers a reader may give (`ERROR`, `NO_FACES`, `FACES`)."""

from __future__ import annotations

import io
import os
import socket
import stat
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from kao.evaluation.hostile import ERROR, FACES, Sample, bad_images

NOT_UTF8 = os.fsdecode(b"face_\xff\xfe.jpg")
LONG_NAME = "long_" + "n" * 246 + ".jpg"  # 255 bytes, the longest name most file systems allow


def printable(name: str) -> str:
    """`name` as a program may print it: bytes that are not UTF-8 become U+FFFD. Apply it to both
    sides when comparing names from a program's output with the manifest's."""
    return os.fsencode(name).decode("utf-8", "replace")


def face_variants(photo: bytes) -> dict[str, Sample]:
    """File name -> the one-face JPEG `photo` in odd but valid forms (each must give faces)."""
    rgb = Image.open(io.BytesIO(photo)).convert("RGB")
    later = rgb.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    palette = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=255)
    palette.info["transparency"] = 0
    exif = Image.Exif()
    exif[0x0112] = 9  # orientation: only 1 to 8 exist
    variants: dict[str, tuple[str, Callable[[io.BytesIO], None]]] = {
        "face_jpeg.png": ("a JPEG face photo named .png", lambda s: s.write(photo)),
        "face_cmyk.jpg": ("CMYK JPEG", lambda s: rgb.convert("CMYK").save(s, "JPEG")),
        "face_palette.png": (
            "palette PNG with a transparent colour",
            lambda s: palette.save(s, "PNG", transparency=0),
        ),
        "face_16bit.png": (
            "16-bit grey PNG",
            lambda s: Image.fromarray(_sixteen_bit(rgb)).save(s, "PNG"),
        ),
        "face_animated.gif": (
            "animated GIF, the face first",
            lambda s: rgb.save(s, "GIF", save_all=True, append_images=[later], duration=100),
        ),
        "face_pages.tif": (
            "two-page TIFF, the face first",
            lambda s: rgb.save(s, "TIFF", save_all=True, append_images=[later]),
        ),
        "face_orientation_9.jpg": (
            "JPEG with EXIF orientation 9",
            lambda s: rgb.save(s, "JPEG", exif=exif.tobytes()),
        ),
    }
    samples = {}
    for name, (what, save) in variants.items():
        stream = io.BytesIO()
        save(stream)
        samples[name] = Sample(what, frozenset({FACES}), stream.getvalue())
    samples[NOT_UTF8] = Sample("a face photo whose name is not UTF-8", frozenset({FACES}), photo)
    samples[LONG_NAME] = Sample("a face photo with a 255-byte name", frozenset({FACES}), photo)
    samples["folder.jpg/face.jpg"] = Sample(
        "a face photo in a folder named folder.jpg", frozenset({FACES}), photo
    )
    return samples


def _sixteen_bit(rgb: Image.Image) -> np.ndarray:
    """The grey levels of `rgb` scaled to 16 bits: H x W uint16."""
    return np.asarray(rgb.convert("L"), dtype=np.uint16) * 257


def write_corpus(folder: Path, photo: bytes) -> dict[str, Sample]:
    """Write the corpus into `folder` (created) around the one-face JPEG `photo`; returns the
    manifest, path relative to `folder` -> sample (special files have empty data). The files
    take about 0.85 MB."""
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {**bad_images(), **face_variants(photo)}
    for name, sample in manifest.items():
        path = folder / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(sample.data)
    manifest.update(_special_files(folder, photo))
    return manifest


def _special_files(folder: Path, photo: bytes) -> dict[str, Sample]:
    """Files that are not regular files, made in `folder`; each must be an error naming it."""
    special = {
        "fifo.jpg": "a FIFO (reading it waits for a writer forever)",
        "zero.jpg": "a symbolic link to /dev/zero (endless bytes)",
        "dangling.png": "a symbolic link to a file that does not exist",
        "loop.jpg": "a symbolic link to itself",
        "socket.png": "a Unix socket",
    }
    os.mkfifo(folder / "fifo.jpg")
    (folder / "zero.jpg").symlink_to("/dev/zero")
    (folder / "dangling.png").symlink_to(folder / "nowhere.png")
    (folder / "loop.jpg").symlink_to(folder / "loop.jpg")
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(folder / "socket.png"))
    if os.geteuid() != 0:  # root reads any folder
        locked = folder / "locked"
        locked.mkdir()
        (locked / "face.jpg").write_bytes(photo)
        locked.chmod(0)
        special["locked"] = "a folder that cannot be read (mode 000), a face photo inside"
    return {name: Sample(what, frozenset({ERROR}), b"") for name, what in special.items()}


def unlock(folder: Path) -> None:
    """Make the corpus in `folder` removable again (the unreadable folder gets its mode back)."""
    locked = folder / "locked"
    if locked.exists():
        locked.chmod(stat.S_IRWXU)
