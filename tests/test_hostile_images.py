"""Hostile inputs to the image readers and the per-image commands: special files (FIFOs,
devices, sockets, link loops), unreadable folders, file names that are not UTF-8, images of
absurd shape and small files that decode to huge images."""

from __future__ import annotations

import errno
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from PIL import Image

from kao.cli import main
from kao.errors import ImageError
from kao.evaluation.hostile import claims_size
from kao.image import describe, find_images, load_image, printable
from tests.conftest import shared_file

FACE = "data/lfw/lfw-deepfunneled/Aaron_Peirsol/Aaron_Peirsol_0001.jpg"  # 1 face
NOT_UTF8 = os.fsdecode(b"caf\xe9.jpg")
NOT_UTF8_LABEL = "caf\\xe9.jpg"


class Hung(Exception):
    """Raised by `deadline`; not an OSError, so that no reader takes it for a read error."""


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Fail with `Hung` instead of hanging (opening a FIFO waits for a writer)."""

    def expire(*_: object) -> None:
        raise Hung(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def specials(tmp_path: Path) -> Iterator[dict[str, Path]]:
    """Special files named like images: a FIFO, a socket, a link to /dev/zero, a link loop."""
    folder = tmp_path / "specials"
    folder.mkdir()
    files = {name: folder / name for name in ("fifo.jpg", "socket.png", "zero.jpg", "loop.jpg")}
    os.mkfifo(files["fifo.jpg"])
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(files["socket.png"]))
    files["zero.jpg"].symlink_to("/dev/zero")
    files["loop.jpg"].symlink_to(files["loop.jpg"])
    yield files
    server.close()


REASONS = {
    "fifo.jpg": "not a regular file (a FIFO)",
    "socket.png": "not a regular file (a socket)",
    "zero.jpg": "not a regular file (a character device)",
    "loop.jpg": "a loop of symbolic links",
}


def test_load_image_refuses_special_files_without_waiting(specials: dict[str, Path]) -> None:
    for name, path in specials.items():
        with deadline(5), pytest.raises(ImageError) as info:
            load_image(path)
        assert (info.value.source, info.value.reason) == (str(path), REASONS[name])
    with deadline(5), pytest.raises(ImageError, match="a character device"):
        load_image("/dev/zero")


def test_find_images_reports_special_files_in_a_folder(specials: dict[str, Path]) -> None:
    folder = specials["fifo.jpg"].parent
    shutil.copy(shared_file(FACE), folder / "face.jpg")
    errors: list[ImageError] = []
    assert find_images([folder], errors=errors) == [folder / "face.jpg"]
    assert {(Path(e.source).name, e.reason) for e in errors} == set(REASONS.items())
    with pytest.raises(ImageError) as info:
        find_images([folder])
    assert info.value.reason in REASONS.values()
    # Named explicitly, a special file is kept: load_image then says what it is.
    assert find_images([specials["fifo.jpg"], specials["loop.jpg"]]) == [
        specials["fifo.jpg"],
        specials["loop.jpg"],
    ]


@pytest.mark.parametrize("command", ["detect", "analyze"])
def test_batch_commands_report_special_files_and_go_on(
    command: str, specials: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    folder = specials["fifo.jpg"].parent
    shutil.copy(shared_file(FACE), folder / "face.jpg")
    with deadline(60):
        code = main([command, "--json", str(folder), str(specials["fifo.jpg"])])
    assert code == 1
    captured = capsys.readouterr()
    records = json.loads(captured.out)
    errors = [(Path(r["image"]).name, r["error"]) for r in records if "error" in r]
    assert sorted(errors) == sorted([*REASONS.items(), ("fifo.jpg", REASONS["fifo.jpg"])])
    (good,) = [r for r in records if "faces" in r]
    assert Path(good["image"]).name == "face.jpg" and len(good["faces"]) == 1
    assert f"kao: error: {specials['fifo.jpg']}: not a regular file (a FIFO)" in captured.err


def test_verify_and_enroll_refuse_a_fifo(
    specials: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fifo = specials["fifo.jpg"]
    face = str(shared_file(FACE))
    with deadline(30):
        assert main(["verify", face, str(fifo)]) == 1
        assert f"{fifo}: not a regular file (a FIFO)" in capsys.readouterr().err
        db = ["--db", str(tmp_path / "faces.db"), "--collection", "c", "--person", "p"]
        assert main(["enroll", *db, face, str(fifo.parent)]) == 1
    err = capsys.readouterr().err
    assert any(reason in err for reason in REASONS.values())
    assert not (tmp_path / "faces.db").exists()  # all or nothing: refused before opening


def test_an_unreadable_sub_folder_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "album"
    (folder / "private").mkdir(parents=True)
    shutil.copy(shared_file(FACE), folder / "face.jpg")
    shutil.copy(shared_file(FACE), folder / "private" / "hidden_from_us.jpg")
    # Tests may run as root, whom permissions do not stop: refuse the listing as the kernel
    # would for another user (test_a_folder_unreadable_for_its_user does it for real).
    real_scandir = os.scandir

    def scandir(path: str) -> object:
        if Path(path) == folder / "private":
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    errors: list[ImageError] = []
    assert find_images([folder], errors=errors) == [folder / "face.jpg"]
    assert [(e.source, e.reason) for e in errors] == [
        (str(folder / "private"), "cannot read the folder (permission denied)")
    ]
    assert main(["detect", "--json", str(folder)]) == 1
    captured = capsys.readouterr()
    records = json.loads(captured.out)
    assert records[0] == {
        "image": str(folder / "private"),
        "error": "cannot read the folder (permission denied)",
    }
    assert len(records[1]["faces"]) == 1
    assert f"{folder / 'private'}: cannot read the folder (permission denied)" in captured.err


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX permissions")
def test_a_folder_unreadable_for_its_user() -> None:
    as_user: list[str] = []
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv to drop to another user")
        as_user = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    probe = (
        "import sys; from kao.image import find_images; errors = []; "
        "found = find_images([sys.argv[1]], errors=errors); "
        "print(len(found), [(e.source, e.reason) for e in errors])"
    )
    top = Path(tempfile.mkdtemp(prefix="kao-unreadable-"))
    try:
        top.chmod(0o755)
        (top / "private").mkdir(mode=0o755)
        (top / "face.jpg").write_bytes(b"")
        (top / "private").chmod(0)
        done = subprocess.run(
            [*as_user, sys.executable, "-c", probe, str(top)],
            capture_output=True,
            text=True,
            check=False,
            cwd=Path(__file__).parents[1],
        )
    finally:
        (top / "private").chmod(0o755)
        shutil.rmtree(top)
    assert done.returncode == 0, done.stderr
    private = str(top / "private")
    assert done.stdout.strip() == f"1 [({private!r}, 'cannot read the folder (permission denied)')]"


def test_printable_labels() -> None:
    assert printable("photos/été.jpg") == "photos/été.jpg"
    assert printable(NOT_UTF8) == NOT_UTF8_LABEL
    assert printable("evil\u202egpj.exe\nline") == "evil\\u202egpj.exe\\nline"
    assert printable("\ud800.jpg") == "\\ud800.jpg"
    assert describe(Path("x") / NOT_UTF8) == os.path.join("x", NOT_UTF8_LABEL)


def test_file_names_that_are_not_utf8(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KAO_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(shared_file(FACE), folder / NOT_UTF8)
    shutil.copy(shared_file(FACE), folder / "plain.jpg")
    label = str(folder / NOT_UTF8_LABEL)
    assert main(["detect", "--json", str(folder)]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["image"] for r in records] == [label, str(folder / "plain.jpg")]
    db = ["--db", url, "--collection", "team"]
    assert main(["enroll", *db, "--person", "Aaron", str(folder)]) == 0
    capsys.readouterr()
    assert main(["db", "list", *db, "--faces", "--json"]) == 0
    sources = sorted(face["source"] for face in json.loads(capsys.readouterr().out))
    assert sources == sorted([label, str(folder / "plain.jpg")])
    assert main(["identify", *db, "--json", str(folder / NOT_UTF8)]) == 0
    (record,) = json.loads(capsys.readouterr().out)
    assert record["image"] == label and record["faces"][0]["person"] == "Aaron"
    assert main(["identify", *db, str(folder / NOT_UTF8)]) == 0
    assert capsys.readouterr().out.startswith(f"{label}: 1 face\n")


PEAK = """
def peak():  # bytes; VmHWM, unlike ru_maxrss, does not start from the forking parent's peak
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) * 1024
"""
THIN = (
    PEAK
    + """
import resource, sys
import numpy as np
resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
import kao
shape = tuple(int(v) for v in sys.argv[1:])
found = kao.analyze(np.full(shape, 200, np.uint8))
print(len(found), peak() >> 20)
"""
)


def run_child(script: str, *args: str) -> list[int]:
    """The integers `script` prints, run in a fresh Python (its memory peak is its own)."""
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).parents[1],
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return [int(word) for word in done.stdout.split()]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
@pytest.mark.parametrize("shape", [(3, 60_000, 3), (60_000, 3, 3)])
def test_analysing_a_thin_image_takes_little_memory(shape: tuple[int, int, int]) -> None:
    # The masked-face pass once padded such an image at full size: 36,000 x 96,000 pixels.
    faces, peak_mb = run_child(THIN, *map(str, shape))
    assert faces == 0 and peak_mb < 500


def test_a_jpeg_with_missing_data_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photo = Image.open(shared_file(FACE))
    for progressive in (False, True):
        buffer = io.BytesIO()
        photo.save(buffer, "JPEG", progressive=progressive)
        assert load_image(buffer.getvalue()).shape == (250, 250, 3)  # no false alarm
        with pytest.raises(ImageError, match="truncated or corrupt image data: 4000x3000"):
            load_image(claims_size(buffer.getvalue(), 4000, 3000))
    claims = tmp_path / "claims.jpg"
    claims.write_bytes(claims_size(buffer.getvalue(), 8900, 8900))
    assert main(["detect", str(claims)]) == 1
    assert f"{claims}: truncated or corrupt image data: 8900x8900 pixels" in capsys.readouterr().err


DECODE = (
    PEAK
    + """
import sys
from kao.image import load_image
before = peak()
rgb = load_image(sys.argv[1])
print(rgb.size // 3, peak() - before)
"""
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_decoding_takes_at_most_eight_bytes_a_pixel(tmp_path: Path) -> None:
    # A small file of many pixels: 40 megapixels of one colour, about 100 KB as a PNG.
    path = tmp_path / "flat.png"
    Image.new("RGB", (8000, 5000), (120, 130, 140)).save(path, compress_level=1)
    pixels, grown = run_child(DECODE, str(path))
    assert pixels == 40_000_000 and grown / pixels < 8  # Pillow's 4 and the result's 3
