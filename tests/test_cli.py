"""`kao detect` end to end: text, JSON, annotated copies, folders and bad inputs in a batch."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from kao.cli import main
from kao.cli.batch import run_batch
from kao.detection import FaceDetector
from tests.conftest import shared_file

GROUP = "data/widerface_val_subset/images/0_Parade_Parade_0_194.jpg"  # 5 faces
PORTRAIT = "data/lfw/lfw-deepfunneled/Aaron_Peirsol/Aaron_Peirsol_0001.jpg"  # 1 face
LFW_PORTRAIT = "data/lfw/lfw-deepfunneled/Abdoulaye_Wade/Abdoulaye_Wade_0001.jpg"  # 1 face


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    """A folder with two real photos (one in a sub-folder) and a hidden file."""
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(shared_file(GROUP), folder / "group.jpg")
    shutil.copy(shared_file(PORTRAIT), folder / "sub" / "portrait.JPG")
    (folder / ".hidden.jpg").write_bytes(b"not an image")
    return folder


def test_text_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["detect", str(shared_file(GROUP))]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("0_Parade_Parade_0_194.jpg: 5 faces")
    assert len(lines) == 11  # a line per face and a line of its quality
    assert lines[1].startswith("  face 1: box [") and "score 0." in lines[1]
    assert lines[2].startswith("    quality 0.") and "weakest: " in lines[2]


def test_json_output_on_a_folder(photos: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["detect", str(photos), "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [Path(r["image"]).name for r in records] == ["group.jpg", "portrait.JPG"]
    group, portrait = records
    assert (group["width"], group["height"]) == (416, 416)
    assert len(group["faces"]) == 5 and len(portrait["faces"]) == 1
    face = portrait["faces"][0]
    assert set(face) == {"box", "score", "keypoints", "quality"}
    assert 0 < face["quality"]["score"] <= 1 and face["quality"]["landmarks"] is None
    assert len(face["box"]) == 4 and len(face["keypoints"]) == 5
    assert all(len(point) == 2 for point in face["keypoints"])


def test_out_writes_annotated_copies(
    photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "annotated"
    assert main(["detect", str(photos), "--out", str(out)]) == 0
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == ["group.jpg", "sub/portrait.JPG"]
    original = np.asarray(Image.open(photos / "group.jpg").convert("RGB"), np.int16)
    drawn = np.asarray(Image.open(out / "group.jpg").convert("RGB"), np.int16)
    assert drawn.shape == original.shape
    changed = np.abs(drawn - original).max(axis=2) > 60
    assert 0.002 < changed.mean() < 0.2  # boxes and labels drawn, the photo still there
    assert "annotated:" in capsys.readouterr().out


def test_filters(capsys: pytest.CaptureFixture[str]) -> None:
    image = str(shared_file("data/widerface_val_subset/images/0_Parade_Parade_0_102.jpg"))
    main(["detect", image, "--json", "--min-score", "0.3"])
    loose = json.loads(capsys.readouterr().out)[0]["faces"]
    main(["detect", image, "--json", "--min-score", "0.85", "--min-size", "9"])
    strict = json.loads(capsys.readouterr().out)[0]["faces"]
    assert 0 < len(strict) < len(loose)
    assert all(f["score"] >= 0.85 for f in strict)


def test_bad_inputs_do_not_stop_the_batch(
    photos: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes((photos / "group.jpg").read_bytes()[:2000])
    text = tmp_path / "notes.png"
    text.write_text("hello")
    empty = tmp_path / "empty_folder"
    empty.mkdir()
    args = [str(truncated), str(text), str(tmp_path / "missing.jpg"), str(empty), str(photos)]
    assert main(["detect", "--json", *args]) == 1
    captured = capsys.readouterr()
    records = {Path(r["image"]).name: r for r in json.loads(captured.out)}
    assert "truncated or corrupt" in records["truncated.jpg"]["error"]
    assert "not an image" in records["notes.png"]["error"]
    assert "no such file" in records["missing.jpg"]["error"]
    assert "no images found" in records["empty_folder"]["error"]
    assert len(records["group.jpg"]["faces"]) == 5  # the good images were still processed
    assert "truncated.jpg: truncated or corrupt" in captured.err


def test_bad_option_values(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["detect", str(shared_file(PORTRAIT)), "--min-score", "2"]) == 1
    assert "--min-score must be between 0 and 1" in capsys.readouterr().err


def test_the_installed_command_runs(tmp_path: Path) -> None:
    image = str(shared_file(PORTRAIT))
    done = subprocess.run(
        [sys.executable, "-m", "kao", "detect", image, "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)[0]["faces"]) == 1
    failed = subprocess.run(
        [sys.executable, "-m", "kao", "detect", str(tmp_path / "nope.jpg")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert failed.returncode == 1
    assert "nope.jpg: no such file or directory" in failed.stderr
    assert "Traceback" not in failed.stderr


def test_every_help_page_prints(capsys: pytest.CaptureFixture[str]) -> None:
    """`kao X --help` exits 0 for every command and sub-command (a bare % once crashed one)."""
    from kao.cli import build_parser

    def commands(parser: object, prefix: list[str]) -> list[list[str]]:
        found = [prefix]
        for action in getattr(parser, "_actions", []):
            if isinstance(action.choices, dict):  # a sub-command's parsers
                for name, sub in action.choices.items():
                    found += commands(sub, [*prefix, name])
        return found

    every = commands(build_parser(), [])
    assert ["eval", "identify"] in every
    for command in every:
        with pytest.raises(SystemExit) as done:
            main([*command, "--help"])
        assert done.value.code == 0, command
        assert "usage: kao" in capsys.readouterr().out


def test_counts_agree_with_their_nouns() -> None:
    from kao.cli.text import counted

    assert [counted(n, "face") for n in (0, 1, 2)] == ["0 faces", "1 face", "2 faces"]
    assert counted(1, "person") == "1 person" and counted(3, "person") == "3 persons"


def test_a_face_prints_in_one_short_line() -> None:
    from kao.face import Face, Label

    face = Face(
        np.array([10, 20, 110, 140], np.float32),
        0.98765,
        np.zeros((5, 2), np.float32),
        embedding=np.full(128, 128**-0.5, np.float32),
        age=33.64,
        gender=Label("male", 0.99),
    )
    text = repr(face)
    assert text.startswith("Face(box=[10.0, 20.0, 110.0, 140.0], score=0.988")
    assert "embedding=<128 float32>" in text and "age=33.6" in text and len(text) < 200


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    import kao

    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out == f"kao {kao.__version__}\n"


def test_the_detector_is_chosen_by_one_option_name() -> None:
    from kao.cli import build_parser

    parser = build_parser()
    for command in (
        ["detect", "a.jpg"],
        ["video", "a.mp4"],
        ["bench", "detect"],
        ["bench", "video"],
        ["eval", "widerface", "--data", "w"],
    ):
        assert parser.parse_args([*command, "--detector", "yunet-2023"]).detector == "yunet-2023"
        with pytest.raises(SystemExit):
            parser.parse_args([*command, "--model", "yunet-2023"])


@pytest.fixture
def folder_with_a_bad_file(photos: Path) -> Path:
    """`photos` with a third photo and a file named like a photo that is not one."""
    shutil.copy(shared_file(LFW_PORTRAIT), photos / "sub" / "wade.jpg")
    (photos / "broken.jpg").write_bytes(b"not a photo")
    return photos


@pytest.mark.parametrize(
    ("command", "key"), [("detect", "faces"), ("analyze", "faces"), ("count", "count")]
)
def test_jsonl_prints_one_line_per_image(
    command: str, key: str, folder_with_a_bad_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([command, "--jsonl", str(folder_with_a_bad_file)]) == 1
    captured = capsys.readouterr()
    records = {Path(r["image"]).name: r for r in map(json.loads, captured.out.splitlines())}
    assert sorted(records) == ["broken.jpg", "group.jpg", "portrait.JPG", "wade.jpg"]
    assert records["broken.jpg"] == {
        "image": str(folder_with_a_bad_file / "broken.jpg"),
        "error": "not an image or unsupported format",
    }
    assert all(key in records[name] for name in ("group.jpg", "portrait.JPG", "wade.jpg"))
    assert "broken.jpg: not an image" in captured.err
    assert main([command, "--json", str(folder_with_a_bad_file)]) == 1
    assert json.loads(capsys.readouterr().out) == list(records.values())  # same records


def test_jsonl_writes_each_image_before_the_next_is_read(
    folder_with_a_bad_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The lines on stdout when each image is handed to the command's processing: every
    image done before it is already there (JSON Lines stream; --json holds them all)."""
    detector = FaceDetector()
    lines_before: list[int] = []  # lines printed before each image was processed

    def process(rgb: np.ndarray) -> tuple[dict[str, Any], Callable[[], np.ndarray]]:
        printed = len(capsys.readouterr().out.splitlines())
        lines_before.append(printed + (lines_before[-1] if lines_before else 0))
        return {"faces": [face.to_dict() for face in detector.detect(rgb)]}, lambda: rgb

    outputs = {}
    for output in ("jsonl", "json"):
        capsys.readouterr()
        lines_before.clear()
        assert run_batch([str(folder_with_a_bad_file)], process, print, out=None, output=output)
        outputs[output] = list(lines_before)
    assert outputs == {"jsonl": [1, 2, 3], "json": [0, 0, 0]}  # broken.jpg's line comes first


def test_json_and_jsonl_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["detect", "--json", "--jsonl", str(shared_file(PORTRAIT))])
    assert "--jsonl: not allowed with argument --json" in capsys.readouterr().err


def test_age_transform_numbers_faces_from_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--face N` counts as `kao detect` prints faces: 0 is no face, 5 the last of 5."""
    group, out = str(shared_file(GROUP)), str(tmp_path / "aged.jpg")
    for number in (0, 6):
        assert main(["age-transform", group, "--face", str(number), "--out", out]) == 1
        message = f"face {number} asked for, but 5 found (numbered 1 to 5)"
        assert message in capsys.readouterr().err
    assert not Path(out).exists()
