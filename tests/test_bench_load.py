"""Speed on a busy machine and on any CPU: the sessions' thread and spinning policy, the
precision of 8-bit networks chosen from the CPU's flags (and the float network made from the
8-bit one), the overrides `KAO_THREADS`, `KAO_SPINNING`, `KAO_PRECISION`, and the background
load of `kao bench ... --background-load` (started, stopped, never orphaned). No timing is
asserted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from kao.attributes.emotion import WEIGHTS, EmotionClassifier
from kao.cli import main
from kao.errors import KaoError
from kao.evaluation.background_load import BackgroundLoad
from kao.evaluation.bench_speed import bench_detect
from kao.models import precision, runtime
from kao.models.precision import choose_precision, dequantized, parse_cpuinfo
from kao.models.runtime import choose_threads, onnx_session
from tests.conftest import WIDER, needs_face_recognition, shared_file

EPYC = """processor	: 0
vendor_id	: AuthenticAMD
model name	: AMD EPYC 7763 64-Core Processor
flags		: fpu sse2 avx avx2 fma bmi2 sha_ni
processor	: 1
model name	: AMD EPYC 7763 64-Core Processor
flags		: fpu sse2 avx avx2 fma bmi2 sha_ni avx512_vnni
"""
"""/proc/cpuinfo of a CPU without VNNI (the second processor's made-up flag must be ignored:
the first processor speaks for all)."""
GRAVITON = """processor	: 0
BogoMIPS	: 243.75
Features	: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp asimddp
CPU implementer	: 0x41
"""
"""/proc/cpuinfo of an ARM CPU with the dot-product extension (no model name)."""


@pytest.fixture
def fresh_sessions(monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty session cache and no remembered idle count for the test."""
    monkeypatch.setattr(runtime, "_sessions", {})
    monkeypatch.setattr(runtime, "_idle", None)


@pytest.mark.parametrize(
    ("cores", "idle", "threads"),
    [
        (2, 2.0, 2),
        (2, 1.9, 2),
        (2, 0.97, 1),
        (2, 0.0, 1),
        (2, None, 2),
        (16, 7.6, 8),
        (4, 9.0, 4),
        (6, 5.0, 4),
        (6, 5.6, 6),
        (12, 11.2, 8),
        (3, 2.2, 2),
    ],
)
def test_threads_follow_the_idle_cores(cores: int, idle: float | None, threads: int) -> None:
    assert choose_threads(cores, idle) == threads


def test_kao_threads_overrides_the_idle_count(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_count() -> float:
        raise AssertionError("KAO_THREADS is set: nothing to count")

    monkeypatch.setattr(runtime, "idle_cores", no_count)
    monkeypatch.setenv("KAO_THREADS", "3")
    assert runtime.default_threads() == 3
    monkeypatch.setenv("KAO_THREADS", "0")
    assert runtime.default_threads() == 1
    monkeypatch.setenv("KAO_THREADS", "two")
    with pytest.raises(KaoError, match="KAO_THREADS: expected a number of threads, got 'two'"):
        runtime.default_threads()
    monkeypatch.delenv("KAO_THREADS")
    monkeypatch.setattr(runtime, "idle_cores", lambda: 0.6)
    monkeypatch.setattr(runtime, "usable_cores", lambda: 2)
    assert runtime.default_threads() == 1


@pytest.mark.usefixtures("fresh_sessions")
def test_idle_cores_counts_idle_ticks_once_per_reuse_period(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Idle cores = cores x idle ticks / all ticks over the window; the count is reused."""
    samples = iter([(100.0, 200.0), (150.0, 400.0), (0.0, 1.0), (0.0, 2.0)])
    monkeypatch.setattr(runtime, "_cpu_times", lambda cpus: next(samples))
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    assert runtime.idle_cores(0.001) == pytest.approx(2 * 50 / 200)
    assert runtime.idle_cores(0.001) == pytest.approx(0.5)  # reused, not sampled again
    monkeypatch.setattr(runtime, "_idle", None)
    assert runtime.idle_cores(0.001) == 0.0
    monkeypatch.setattr(runtime, "_idle", None)
    monkeypatch.setattr(runtime, "_cpu_times", lambda cpus: None)
    assert runtime.idle_cores(0.001) is None  # no /proc/stat: every core


@pytest.mark.skipif(not Path("/proc/stat").is_file(), reason="needs Linux's /proc/stat")
@pytest.mark.usefixtures("fresh_sessions")
def test_idle_cores_is_a_count_of_this_machines_cores() -> None:
    idle = runtime.idle_cores()
    assert idle is not None and 0.0 <= idle <= runtime.usable_cores()


class FakeSession:
    """Stands in for ort.InferenceSession: keeps the options it was made with; `run` answers
    its thread count."""

    def __init__(self, path: str, options: ort.SessionOptions, providers: list[str]) -> None:
        self.options = options
        self.providers = providers

    def get_providers(self) -> list[str]:
        return self.providers

    def run(self, names: Any, feed: dict[str, Any], run_options: Any = None) -> int:
        return self.options.intra_op_num_threads


def test_other_processes_busy_cores_leave_out_this_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two cores, a 1 s interval of 200 ticks: 50 idle ticks = 1.5 cores busy, of which this
    process used 0.5 s of CPU: others kept 1.0 core busy."""
    monkeypatch.setattr(runtime, "usable_cores", lambda: 2)
    assert runtime.others_busy((10.0, 100, 1000, 3.0), (11.0, 150, 1200, 3.5)) == 1.0
    assert runtime.others_busy((10.0, 100, 1000, 3.0), (11.0, 300, 1200, 3.5)) == 0.0
    assert runtime.others_busy((10.0, 100, 1000, 3.0), (10.0, 100, 1000, 3.0)) == 0.0


class FixedMonitor:
    """A LoadMonitor whose thread count the test sets."""

    def __init__(self, threads: int) -> None:
        self.count = threads

    def threads(self) -> int:
        return self.count


@pytest.mark.usefixtures("fresh_sessions")
def test_an_adaptive_session_runs_with_the_threads_of_the_moment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ort, "InferenceSession", FakeSession)
    made: list[int] = []

    def make(threads: int) -> Any:
        made.append(threads)
        return runtime._session(WEIGHTS, threads, False, "cpu")

    monitor = FixedMonitor(2)
    session = runtime.AdaptiveSession(make, monitor)  # type: ignore[arg-type]
    assert session.run(None, {}) == 2 and session.threads == 2
    monitor.count = 1  # another process took a core
    assert session.run(None, {}) == 1 and session.threads == 1
    monitor.count = 2
    assert session.run(None, {}) == 2
    assert made == [2, 1]  # each count's session made once
    assert session.get_providers() == [runtime.CPU]  # the rest is the first session's


@pytest.mark.skipif(not Path("/proc/stat").is_file(), reason="needs Linux's /proc/stat")
@pytest.mark.usefixtures("fresh_sessions")
def test_sessions_adapt_unless_threads_are_fixed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ort, "InferenceSession", FakeSession)
    monkeypatch.setenv("KAO_DEVICE", "cpu")
    monkeypatch.delenv("KAO_THREADS", raising=False)
    adaptive = onnx_session(WEIGHTS)
    assert isinstance(adaptive, runtime.AdaptiveSession)
    assert onnx_session(WEIGHTS) is adaptive
    assert 1 <= adaptive.run(None, {}) <= runtime.usable_cores()
    assert isinstance(onnx_session(WEIGHTS, 1), FakeSession)
    monkeypatch.setenv("KAO_THREADS", "2")
    fixed = onnx_session(WEIGHTS)
    assert isinstance(fixed, FakeSession) and fixed.options.intra_op_num_threads == 2


def test_the_load_monitor_counts_again_after_its_period(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first count is `idle_cores()`; later ones come from the samples' differences, at
    most once a period."""
    monkeypatch.setattr(runtime, "usable_cores", lambda: 2)
    monkeypatch.setattr(runtime, "idle_cores", lambda: 2.0)
    samples = iter([(0.0, 0, 0, 0.0), (1.0, 50, 200, 0.5), (2.0, 250, 400, 1.0)])
    monitor = runtime.LoadMonitor(period=0.0)
    monkeypatch.setattr(monitor, "_take", lambda: next(samples))
    assert monitor.threads() == 2  # idle_cores()
    assert monitor.threads() == 1  # another process held a core: 1.0 idle
    assert monitor.idle() == 2.0  # it stopped
    slow = runtime.LoadMonitor(period=3600.0)
    monkeypatch.setattr(slow, "_take", lambda: (0.0, 0, 0, 0.0))
    assert slow.idle() == 2.0 and slow.idle() == 2.0


@pytest.mark.usefixtures("fresh_sessions")
def test_spinning_is_off_unless_asked_and_sessions_are_cached_per_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ort, "InferenceSession", FakeSession)
    monkeypatch.setenv("KAO_DEVICE", "cpu")
    monkeypatch.delenv("KAO_SPINNING", raising=False)
    model = WEIGHTS

    def spinning(session: Any) -> str:
        return session.options.get_session_config_entry("session.intra_op.allow_spinning")

    quiet = onnx_session(model, 2)
    assert spinning(quiet) == ("1" if runtime.SPINNING else "0")
    assert quiet.options.intra_op_num_threads == 2
    monkeypatch.setenv("KAO_SPINNING", "1")
    spins = onnx_session(model, 2)
    assert spinning(spins) == "1" and spins is not quiet
    monkeypatch.setenv("KAO_SPINNING", "off")
    assert spinning(onnx_session(model, 2)) == "0"
    monkeypatch.setenv("KAO_SPINNING", "maybe")
    with pytest.raises(KaoError, match="KAO_SPINNING: expected 1 or 0, got 'maybe'"):
        onnx_session(model, 2)


def test_cpu_flags_of_x86_and_arm() -> None:
    assert parse_cpuinfo(EPYC) == (
        "AMD EPYC 7763 64-Core Processor",
        {"fpu", "sse2", "avx", "avx2", "fma", "bmi2", "sha_ni"},
    )
    model, flags = parse_cpuinfo(GRAVITON)
    assert model is None and "asimddp" in flags


@pytest.mark.parametrize(
    ("asked", "flags", "chosen"),
    [
        ("auto", parse_cpuinfo(EPYC)[1], "fp32"),
        ("auto", parse_cpuinfo(GRAVITON)[1], "int8"),
        ("auto", {"avx2", "avx512f", "avx512_vnni"}, "int8"),
        ("auto", {"avx2", "avx_vnni"}, "int8"),
        ("auto", {"dotprod"}, "int8"),
        ("auto", set(), "fp32"),
        ("int8", parse_cpuinfo(EPYC)[1], "int8"),
        ("fp32", {"avx512_vnni"}, "fp32"),
    ],
)
def test_precision_from_the_cpu_flags(asked: str, flags: set[str], chosen: str) -> None:
    assert choose_precision(asked, flags) == chosen


def test_kao_precision_overrides_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(precision, "cpu_info", lambda: {"model": "x", "flags": ["avx2"]})
    monkeypatch.delenv("KAO_PRECISION", raising=False)
    assert precision.precision() == "fp32"
    monkeypatch.setenv("KAO_PRECISION", " INT8 ")
    assert precision.precision() == "int8"
    monkeypatch.setenv("KAO_PRECISION", "int4")
    with pytest.raises(KaoError, match="KAO_PRECISION: unknown precision 'int4'"):
        precision.precision()


def _qdq_model(tmp_path: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    """A QDQ graph as ONNX Runtime's quantizer writes it: x -> QuantizeLinear (uint8, zero point
    0: negative values clamp to 0, the Relu the quantizer dropped) -> DequantizeLinear -> Conv
    with int8 per-channel weights (axis 0) and an int32 bias. Returns (path, the float
    weights, the bias) the dequantized graph must hold."""
    weights = np.array([[[[3]], [[-5]]], [[[7]], [[2]]]], np.int8)  # (2 out, 2 in, 1, 1)
    w_scale = np.array([0.5, 0.25], np.float32)
    bias = np.array([10, -4], np.int32)
    b_scale = np.array([0.1, 0.2], np.float32)
    constants = [
        numpy_helper.from_array(np.array(0.1, np.float32), "x_scale"),
        numpy_helper.from_array(np.array(0, np.uint8), "x_zero"),
        numpy_helper.from_array(weights, "w_q"),
        numpy_helper.from_array(w_scale, "w_scale"),
        numpy_helper.from_array(np.zeros(2, np.int8), "w_zero"),
        numpy_helper.from_array(bias, "b_q"),
        numpy_helper.from_array(b_scale, "b_scale"),
        numpy_helper.from_array(np.zeros(2, np.int32), "b_zero"),
    ]
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "x_scale", "x_zero"], ["x_q"]),
        helper.make_node("DequantizeLinear", ["x_q", "x_scale", "x_zero"], ["x_dq"]),
        helper.make_node("DequantizeLinear", ["w_q", "w_scale", "w_zero"], ["w"], axis=0),
        helper.make_node("DequantizeLinear", ["b_q", "b_scale", "b_zero"], ["b"], axis=0),
        helper.make_node("Conv", ["x_dq", "w", "b"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "qdq",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 2, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 2, 2])],
        constants,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = tmp_path / "qdq.onnx"
    onnx.save(model, str(path))
    floats = weights.astype(np.float32) * w_scale[:, None, None, None]
    return path, floats, bias.astype(np.float32) * b_scale


def test_the_float_model_keeps_the_weights_and_the_clamp(tmp_path: Path) -> None:
    path, floats, bias = _qdq_model(tmp_path)
    model = onnx.load_from_string(dequantized(path))
    assert {n.op_type for n in model.graph.node} == {"Clip", "Conv"}
    values = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    np.testing.assert_array_equal(values["w"], floats)
    np.testing.assert_allclose(values["b"], bias)
    x = np.array([[[[-1.0, 0.04], [3.0, 30.0]], [[0.5, -0.2], [1.234, 2.0]]]], np.float32)
    clamped = np.clip(x, 0.0, 25.5)  # uint8 with scale 0.1, zero point 0: 0 to 25.5
    expected = np.einsum("oi,nihw->nohw", floats[:, :, 0, 0], clamped) + bias[:, None, None]
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(["y"], {"x": x})[0], expected, rtol=1e-6, atol=1e-6)
    quantized = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(quantized.run(["y"], {"x": x})[0], expected, atol=0.1)


@pytest.mark.usefixtures("private_cache", "fresh_sessions")
def test_emotion_in_both_precisions_agrees(monkeypatch: pytest.MonkeyPatch) -> None:
    """The float emotion network (made from the 8-bit one at first use, cached) gives nearly
    the 8-bit one's answers on FER2013 faces."""
    data = np.load(shared_file("data/fer2013/public_test.npz"))
    faces = list(data["images"][:200])
    answers = {}
    for chosen in ("int8", "fp32"):
        monkeypatch.setenv("KAO_PRECISION", chosen)
        classifier = EmotionClassifier(threads=1)
        assert classifier.precision == chosen
        answers[chosen] = classifier.probabilities(faces)
    converted = Path(os.environ["KAO_CACHE"]) / "converted" / "emotion" / "emotion_fp32.onnx"
    assert converted.is_file()
    ops = {n.op_type for n in onnx.load(str(converted)).graph.node}
    assert not ops & {"QuantizeLinear", "DequantizeLinear"}
    agree = (answers["int8"].argmax(axis=1) == answers["fp32"].argmax(axis=1)).mean()
    assert agree >= 0.95
    assert np.abs(answers["int8"] - answers["fp32"]).mean() < 0.02


def test_models_list_reports_cpu_precision_and_threads(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KAO_PRECISION", "fp32")
    monkeypatch.setenv("KAO_THREADS", "1")
    assert main(["models", "list", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)["runtime"]
    assert report["precision"] == {"asked": "fp32", "chosen": "fp32"}
    assert report["threads"]["threads"] == 1 and report["threads"]["KAO_THREADS"] == "1"
    assert set(report["cpu"]) == {"model", "flags"}


def _gone(pid: int) -> bool:
    """True when process `pid` no longer runs (absent, or a zombie waiting to be reaped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def _wait_gone(pid: int, seconds: float = 20.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _gone(pid):
            return True
        time.sleep(0.1)
    return False


def test_background_load_runs_for_the_body_and_is_reaped() -> None:
    with BackgroundLoad() as load:
        assert load.process is not None
        pid = load.process.pid
        time.sleep(0.3)
        assert load.process.poll() is None
    assert load.process.returncode is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    report = load.report()
    assert report["processes"] == 1 and report["seconds"] >= 0.3
    assert report["cpu_seconds"] >= 0 and "busy_cores" in report


def test_background_load_stops_on_an_exception_and_can_be_off() -> None:
    with pytest.raises(KeyboardInterrupt), BackgroundLoad() as load:
        raise KeyboardInterrupt
    assert load.process is not None and load.process.returncode is not None
    with BackgroundLoad(enabled=False) as off:
        assert off.process is None
    assert off.report() == {"processes": 0}


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_background_load_ends_when_its_parent_is_killed() -> None:
    """A benchmark killed by SIGKILL (no cleanup runs) leaves no load behind."""
    script = (
        "import time\n"
        "from kao.evaluation.background_load import BackgroundLoad\n"
        "with BackgroundLoad() as load:\n"
        "    print(load.process.pid, flush=True)\n"
        "    time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    assert not _gone(child)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    assert _wait_gone(child)


def test_bench_detect_reports_the_load_the_sessions_and_the_cpu() -> None:
    """One photo, one round: the report names the settings measured and the load it ran under,
    and the load is gone after."""
    needs_face_recognition()
    before = {key: os.environ.get(key) for key in ("KAO_THREADS", "KAO_SPINNING")}
    report = bench_detect(
        WIDER / "images",
        photos=1,
        repeat=1,
        folder_images=1,
        detector="yunet-n",
        background_load=True,
    )
    assert set(report["median_ms_640x480"]) == {
        "kao",
        "kao_old_default",
        "kao_all_cores_no_spin",
        "kao_1_thread",
        "kao_masked_pass",
        "face_recognition_hog",
    }
    assert set(report["folder"]["images_per_s"]) == {
        "kao",
        "kao_old_default",
        "kao_all_cores_no_spin",
        "kao_1_thread",
        "face_recognition_hog",
    }
    assert report["background_load"]["processes"] == 1
    assert report["sessions"]["threads"] >= 1 and "spinning" in report["sessions"]
    machine = report["machine"]
    assert machine["precision"] in ("int8", "fp32") and isinstance(machine["cpu_flags"], list)
    assert {key: os.environ.get(key) for key in before} == before  # the old default undone
