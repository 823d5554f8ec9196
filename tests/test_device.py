"""Where the models run (`--device`, `KAO_DEVICE`): the execution provider chosen for each
device, the session cache keyed by device, the option reaching pool workers, and faces run as
one batch giving each face's own result. The tests run on the CPU: CUDA is simulated where a
test needs onnxruntime to offer it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from kao.attributes.emotion import EmotionClassifier
from kao.attributes.mask import MaskClassifier
from kao.cli import main
from kao.detection import FaceDetector
from kao.errors import KaoError, ModelError
from kao.image import load_image
from kao.models import runtime
from kao.models.runtime import CPU, CUDA, onnx_session, providers, resolve_device
from kao.recognition import FaceEmbedder
from kao.recognition.edgeface import WEIGHTS
from tests.conftest import LFW, shared_file

MODEL = WEIGHTS / "edgeface_xxs.onnx"
CROWD = "data/widerface_val_subset/images/0_Parade_Parade_0_102.jpg"
"""A WIDER photo with many faces."""
NO_CUDA = pytest.mark.skipif(
    CUDA in ort.get_available_providers(), reason="this onnxruntime offers CUDA"
)


@pytest.fixture
def fresh_sessions(monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty session cache for the test (the shared one is left as it was)."""
    monkeypatch.setattr(runtime, "_sessions", {})


@pytest.fixture
def cuda_offered(monkeypatch: pytest.MonkeyPatch) -> None:
    """onnxruntime claims to offer CUDA, as onnxruntime-gpu does."""
    monkeypatch.setattr(ort, "get_available_providers", lambda: [CUDA, CPU])


def test_device_names_and_kao_device(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAO_DEVICE", raising=False)
    assert runtime.default_device() == "auto"
    monkeypatch.setenv("KAO_DEVICE", " CPU ")
    assert runtime.default_device() == "cpu"
    monkeypatch.setenv("KAO_DEVICE", "gpu")
    with pytest.raises(KaoError, match="KAO_DEVICE: unknown device 'gpu'; choose one of auto"):
        runtime.default_device()
    with pytest.raises(KaoError, match="unknown device 'tpu'"):
        resolve_device("tpu")


@NO_CUDA
def test_cpu_only_onnxruntime(monkeypatch: pytest.MonkeyPatch) -> None:
    """This onnxruntime has no CUDA: auto runs on the CPU, cuda is refused naming the extra."""
    monkeypatch.delenv("KAO_DEVICE", raising=False)
    assert resolve_device() == "cpu"
    assert resolve_device("auto") == "cpu"
    assert resolve_device("cpu") == "cpu"
    assert providers("cpu") == [CPU]
    with pytest.raises(ModelError, match=r"install kao\[gpu\] \(onnxruntime-gpu\)"):
        resolve_device("cuda")
    monkeypatch.setenv("KAO_DEVICE", "cuda")
    with pytest.raises(ModelError, match=r"kao\[gpu\]"):
        resolve_device()


@pytest.mark.usefixtures("cuda_offered")
def test_auto_prefers_cuda_when_offered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAO_DEVICE", raising=False)
    assert resolve_device() == "cuda"
    assert resolve_device("cpu") == "cpu"
    assert providers("cuda") == [CUDA, CPU]  # the CPU runs what CUDA does not
    monkeypatch.setenv("KAO_DEVICE", "cpu")
    assert resolve_device() == "cpu"


class FakeSession:
    """Records what an `ort.InferenceSession` was made with; runs nothing."""

    def __init__(self, path: str, options: Any, providers: list[str]) -> None:
        self.providers = providers

    def get_providers(self) -> list[str]:
        return self.providers


@pytest.mark.usefixtures("fresh_sessions", "cuda_offered")
def test_sessions_are_cached_per_device(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ort, "InferenceSession", FakeSession)
    on_cuda = onnx_session(MODEL, 1, "cuda")
    on_cpu = onnx_session(MODEL, 1, "cpu")
    assert on_cuda.get_providers() == [CUDA, CPU]
    assert on_cpu.get_providers() == [CPU]
    assert onnx_session(MODEL, 1, "auto") is on_cuda
    assert onnx_session(MODEL, 1, "cpu") is on_cpu
    monkeypatch.setenv("KAO_DEVICE", "cpu")
    assert onnx_session(MODEL, 1) is on_cpu
    assert len(runtime._sessions) == 2


@NO_CUDA
@pytest.mark.usefixtures("fresh_sessions", "cuda_offered")
@pytest.mark.filterwarnings("ignore:Specified provider 'CUDAExecutionProvider'")
def test_cuda_that_does_not_start_is_an_error() -> None:
    """A session asked for on CUDA that ONNX Runtime put on the CPU alone is refused, not
    cached (the real onnxruntime here drops the provider it lacks)."""
    with pytest.raises(ModelError, match=r"could not start its CUDAExecutionProvider"):
        onnx_session(MODEL, 1, "cuda")
    assert not runtime._sessions
    assert onnx_session(MODEL, 1, "cpu").get_providers() == [CPU]


def _kao(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kao", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


def _photos() -> list[str]:
    if not LFW.is_dir():
        pytest.skip(f"{LFW} is not available")
    return [str(path) for path in sorted(LFW.glob("Ab*/*.jpg"))[:4]]


@NO_CUDA
def test_device_option_reaches_the_pool_workers() -> None:
    """KAO_DEVICE=cuda in the environment would fail every worker; `--device cpu` overrides it
    in the workers too, and gives the plain loop's records."""
    photos = _photos()
    failing = _kao(["detect", *photos, "--jsonl", "--workers", "2"], {"KAO_DEVICE": "cuda"})
    assert failing.returncode == 1
    assert "kao[gpu]" in failing.stderr
    pooled = _kao(
        ["detect", *photos, "--jsonl", "--workers", "2", "--device", "cpu"], {"KAO_DEVICE": "cuda"}
    )
    assert pooled.returncode == 0, pooled.stderr
    plain = _kao(["detect", *photos, "--jsonl"], {"KAO_DEVICE": "cpu"})
    records = [json.loads(line) for line in pooled.stdout.splitlines()]
    assert records == [json.loads(line) for line in plain.stdout.splitlines()]
    assert [r["image"] for r in records] == photos and all(r["faces"] for r in records)


@NO_CUDA
def test_device_cuda_is_refused_at_once(capsys: pytest.CaptureFixture[str]) -> None:
    for command in (["embed", "--device", "cuda", "x.jpg"], ["serve", "--device", "cuda"]):
        with pytest.raises(SystemExit) as exit_:
            main(command)
        assert exit_.value.code == 2
        error = capsys.readouterr().err
        assert "argument --device: device cuda needs ONNX Runtime's CUDAExecutionProvider" in error
        assert "install kao[gpu] (onnxruntime-gpu)" in error


def test_models_list_reports_the_device(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KAO_DEVICE", "cpu")
    assert main(["models", "list", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)["runtime"]
    assert report["asked"] == report["device"] == "cpu" and report["problem"] is None
    assert report["providers"] == ort.get_available_providers()


@pytest.mark.parametrize("model", ["edgeface_xs", "dlib_resnet_v1"])
def test_a_batch_of_faces_gives_each_face_its_own_embedding(model: str) -> None:
    """The embedding networks run the faces of a photo as one batch: equal to one at a time."""
    embedder = FaceEmbedder(model=model)
    rgb = load_image(shared_file(CROWD))
    faces = embedder.detector.detect(rgb)[:8]
    assert len(faces) >= 4
    batch = np.stack([f.embedding for f in embedder.embed_faces(rgb, faces)])
    single = np.stack([embedder.embed_faces(rgb, [f])[0].embedding for f in faces])
    np.testing.assert_allclose(batch, single, atol=1e-5)


def test_a_batch_of_crops_gives_each_face_its_own_attributes() -> None:
    """The emotion and mask networks run all crops as one batch: equal to one at a time."""
    rgb = load_image(shared_file(CROWD))
    faces = FaceDetector().detect(rgb)[:8]
    for model in (EmotionClassifier(), MaskClassifier()):
        crops = [model.crop(rgb, face) for face in faces]
        batch = model.probabilities(crops)
        single = np.concatenate([model.probabilities([crop]) for crop in crops])
        np.testing.assert_allclose(batch, single, atol=1e-5)
