"""`--device` on every command that runs a model: it parses, sets KAO_DEVICE for the models the
command loads, and `cuda` without onnxruntime's CUDA provider is refused before any work."""

from __future__ import annotations

import os

import onnxruntime as ort
import pytest

from kao.cli import build_parser, main
from kao.models.runtime import CUDA

MODEL_COMMANDS = (
    ["detect", "x.jpg"],
    ["analyze", "x.jpg"],
    ["embed", "x.jpg"],
    ["count", "x.jpg"],
    ["verify", "a.jpg", "b.jpg"],
    ["enroll", "--db", "x.db", "--collection", "c", "--person", "p", "x.jpg"],
    ["identify", "--db", "x.db", "--collection", "c", "x.jpg"],
    ["group", "photos"],
    ["video", "clip.mp4"],
    ["mesh", "x.jpg", "--out", "m.obj"],
    ["age-transform", "x.jpg", "--out", "a.png"],
    ["db", "reembed", "--db", "x.db", "--collection", "c", "--model", "edgeface_xs"],
    ["serve"],
)
"""A valid command line of each command that loads a model (before `--device`)."""


@pytest.mark.parametrize("command", MODEL_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_device_cpu_reaches_the_models(command: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAO_DEVICE", "cuda")
    args = build_parser().parse_args([*command, "--device", "cpu"])
    assert args.device == "cpu" and os.environ["KAO_DEVICE"] == "cpu"


@pytest.mark.skipif(CUDA in ort.get_available_providers(), reason="this onnxruntime has CUDA")
@pytest.mark.parametrize("command", MODEL_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_device_cuda_is_refused_at_once(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([*command, "--device", "cuda"])
    assert exit_.value.code == 2
    assert "argument --device: device cuda needs" in capsys.readouterr().err


def test_models_list_names_the_cpu_precision_and_threads(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KAO_THREADS", "1")
    monkeypatch.setenv("KAO_PRECISION", "fp32")
    assert main(["models", "list"]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last.startswith("cpu: ") and "8-bit networks as fp32 (KAO_PRECISION fp32)" in last
    assert "threads 1 of" in last and last.endswith("cores now (KAO_THREADS)")
