"""The package itself: the wheel's contents, a light and quiet start, the optional extras."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import kao
from kao.cli import COMMANDS, build_parser, main
from kao.extras import MissingExtraError, require
from tests.conftest import shared_file

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("onnx", "onnxruntime", "h5py", "scipy", "fastapi", "ai_edge_litert", "cv2", "psycopg")
PHOTO = "data/widerface_val_subset/images/0_Parade_Parade_0_194.jpg"  # 5 faces


def _tracked(folder: str) -> list[str]:
    """Every tracked file under `folder` of the checkout that is still in the working tree."""
    listed = subprocess.run(
        ["git", "ls-files", folder], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    return [name for name in listed if (ROOT / name).is_file()]


def test_the_wheel_ships_every_file_of_the_package(tmp_path: Path) -> None:
    """A wheel built from the checkout's files holds every tracked file under kao/, data files
    (weights, prototypes, the web page) included, and the licence."""
    source = tmp_path / "source"
    shutil.copytree(ROOT / "kao", source / "kao", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    build = "from setuptools import build_meta; print(build_meta.build_wheel('dist'))"
    done = subprocess.run(
        [sys.executable, "-c", build], cwd=source, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    wheel = source / "dist" / done.stdout.split()[-1]
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    missing = [name for name in _tracked("kao") if name not in names]
    assert not missing, f"not in the wheel: {missing}"
    assert f"kao-{kao.__version__}.dist-info/licenses/LICENSE" in names


def test_help_and_import_load_nothing_heavy() -> None:
    """`import kao` and `kao --help` import no model runtime, server or database driver."""
    probe = (
        "import sys, kao\n"
        "from kao.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == "[]"
    assert "age-transform" in done.stdout and "serve" in done.stdout


def _helps(parser: argparse.ArgumentParser) -> dict[str, str | None]:
    """Each top-level command of `parser` and its one-line help."""
    (action,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {choice.dest: choice.help for choice in action._choices_actions}


def test_the_command_table_matches_the_command_modules() -> None:
    """`kao --help` lists, from `COMMANDS`, exactly the commands and help lines the modules
    register."""
    registered = _helps(build_parser())
    assert registered == {command.name: command.help for command in COMMANDS}
    assert _helps(build_parser(full=False)) == registered


def test_a_command_imports_only_its_own_module() -> None:
    probe = (
        "import sys\nfrom kao.cli import main\n"
        "try:\n    main(['verify', '--help'])\nexcept SystemExit:\n    pass\n"
        "from kao.cli import COMMANDS\n"
        "commands = {command.module for command in COMMANDS}\n"
        "print(sorted(m for m in sys.modules if m in commands), file=sys.stderr)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.stderr.strip() == "['kao.cli.verify']"


def test_a_missing_extra_is_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "fastapi", None)  # as if the server extra were absent
    assert main(["serve", "--port", "0"]) == 1
    captured = capsys.readouterr()
    assert captured.err == (
        "kao: error: kao serve needs the server extra (no module fastapi): "
        "pip install 'kao[server]'\n"
    )
    with pytest.raises(MissingExtraError, match=r"pip install 'kao\[train\]'"):
        require("train", "training", "json", "no_such_module_kao_test")
    require("server", "anything", "json", "argparse")  # present: no error


def test_a_postgres_gallery_without_its_extra_is_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "psycopg_pool", None)
    photo = str(shared_file(PHOTO))
    command = ["identify", "--db", "postgresql://kao@127.0.0.1/none", "--collection", "c", photo]
    assert main(command) == 1
    assert capsys.readouterr().err == (
        "kao: error: a PostgreSQL gallery needs the postgres extra (no module psycopg_pool): "
        "pip install 'kao[postgres]'\n"
    )


def test_analyze_is_quiet_and_needs_onnx_only_to_convert(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`kao analyze` with an empty cache (models converted on the way) prints nothing on stderr,
    LiteRT's XNNPACK INFO line included; once conversions are cached, analysing imports neither
    onnx nor scipy."""
    photo = shared_file(PHOTO)
    monkeypatch.setenv("KAO_CACHE", str(tmp_path / "cache"))
    done = subprocess.run(
        [sys.executable, "-m", "kao", "analyze", str(photo), "--out", str(tmp_path / "out")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert "5 faces" in done.stdout
    probe = (
        f"import sys, kao\nassert len(kao.analyze({str(photo)!r})) == 5\n"
        "print(sorted(m for m in ('onnx', 'scipy', 'h5py', 'fastapi') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert (done.returncode, done.stderr, done.stdout) == (0, "", "[]\n")


def test_litert_notice_is_dropped_and_other_output_kept(capfd: pytest.CaptureFixture[str]) -> None:
    """Around interpreter creation only LiteRT's XNNPACK line is dropped from file descriptor 2;
    anything else written there (a real warning or error) still reaches stderr, in order."""
    from kao.landmarks.litert import XNNPACK_NOTICE, _without_notice

    with _without_notice():
        os.write(2, b"first real line\n" + XNNPACK_NOTICE + b"\nERROR: second real line\n")
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "first real line\nERROR: second real line\nafter\n"


def test_every_command_parses_with_only_its_module(capsys: pytest.CaptureFixture[str]) -> None:
    """Each command's help works from the parser `main` builds for it (its module alone)."""
    for command in COMMANDS:
        with pytest.raises(SystemExit) as done:
            main([command.name, "--help"])
        assert done.value.code == 0, command.name
        assert f"usage: kao {command.name}" in capsys.readouterr().out
