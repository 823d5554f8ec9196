"""ONNX Runtime sessions: created lazily, once per model file, thread count and device, shared
between threads.

The device: "cpu" (ONNX Runtime's CPU execution provider), "cuda" (its CUDA execution
provider, with the CPU for the nodes CUDA does not run; needs the `kao[gpu]` extra,
onnxruntime-gpu, and an NVIDIA GPU) or "auto" (CUDA when this onnxruntime offers it, else the
CPU). `KAO_DEVICE` sets the default (auto when unset); the per-image commands' `--device`
sets it for the command and its worker processes.

Threads and spinning (`session_threads`): `KAO_THREADS` when set, else the cores this process
may run on that were idle when the session was made (`idle_cores`: /proc/stat sampled over
`IDLE_WINDOW_S`), so that another busy process does not make a session split each run over a
core it shares, which took 38 ms per 640 x 480 detection against 19 ms for one thread with one
of two cores busy. ONNX Runtime's worker threads spin while waiting for work only when
`KAO_SPINNING` = 1 (default `SPINNING`)."""

from __future__ import annotations

import math
import os
import threading
import time
from pathlib import Path
from typing import Any

import onnxruntime as ort

from kao.errors import KaoError, ModelError
from kao.models.precision import asked_precision, choose_precision, cpu_info

DEVICES = ("auto", "cpu", "cuda")
"""What `--device` and `KAO_DEVICE` accept."""
CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"

IDLE_WINDOW_S = 0.1
"""How long /proc/stat is watched to count idle cores, seconds."""
IDLE_REUSE_S = 10.0
"""How long one count of idle cores serves the sessions made after it, seconds."""
SPINNING = False
"""Whether ONNX Runtime's worker threads spin waiting for work when `KAO_SPINNING` is unset."""

_sessions: dict[tuple[Path, int, bool, str], ort.InferenceSession] = {}
_lock = threading.Lock()
_idle: tuple[float, float | None] | None = None
"""(time.monotonic() of the count, idle cores) of the last `idle_cores` count."""


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def _cpu_times(cpus: set[int]) -> tuple[float, float] | None:
    """(idle, total) clock ticks summed over `cpus` from /proc/stat; None where it cannot be
    read (not Linux)."""
    try:
        lines = Path("/proc/stat").read_text(encoding="ascii").splitlines()
    except OSError:
        return None
    idle = total = 0.0
    for line in lines:
        name, *fields = line.split()
        if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
            ticks = [float(f) for f in fields[:8]]  # user nice system idle iowait irq softirq steal
            idle += ticks[3] + ticks[4]
            total += sum(ticks)
    return (idle, total) if total else None


def idle_cores(window: float = IDLE_WINDOW_S) -> float | None:
    """How many of the cores this process may run on were idle over the last `window` seconds
    (0 to `usable_cores()`), counted from /proc/stat while this thread sleeps; None where
    /proc/stat cannot be read. A count serves `IDLE_REUSE_S` seconds (the sessions a model
    loads are made one after another)."""
    global _idle
    if _idle is not None and time.monotonic() - _idle[0] < IDLE_REUSE_S:
        return _idle[1]
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
    before = _cpu_times(cpus)
    time.sleep(window if before else 0)
    after = _cpu_times(cpus)
    count = None
    if before and after and after[1] > before[1]:
        count = len(cpus) * (after[0] - before[0]) / (after[1] - before[1])
    _idle = (time.monotonic(), count)
    return count


def choose_threads(cores: int, idle: float | None) -> int:
    """Intra-op threads for a session on a machine with `cores` usable cores of which `idle`
    (None: unknown) are idle: the idle cores rounded to the nearest whole core, at least 1 and
    at most `cores`; all `cores` when unknown."""
    if idle is None:
        return cores
    return max(1, min(cores, math.floor(idle + 0.5)))


def _flag(name: str, default: bool) -> bool:
    """Environment variable `name` as a boolean ("1", "true", "yes", "on" / "0", "false",
    "no", "off", any case), `default` when unset; KaoError naming it for another value."""
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise KaoError(f"{name}: expected 1 or 0, got {value!r}")


def default_spinning() -> bool:
    """Whether sessions' worker threads spin waiting for work: `KAO_SPINNING`, else
    `SPINNING`."""
    return _flag("KAO_SPINNING", SPINNING)


def default_threads() -> int:
    """Intra-op threads per session: `KAO_THREADS` if set, else `choose_threads` of this
    process's usable cores and how many of them are idle now (`idle_cores`)."""
    value = os.environ.get("KAO_THREADS", "").strip()
    if value:
        try:
            return max(1, int(value))
        except ValueError:
            raise KaoError(f"KAO_THREADS: expected a number of threads, got {value!r}") from None
    return choose_threads(usable_cores(), idle_cores())


def check_device(name: str) -> str:
    """`name` (any case, spaces stripped) when it is one of `DEVICES`, else KaoError."""
    device = name.strip().lower()
    if device not in DEVICES:
        raise KaoError(f"unknown device {name!r}; choose one of {', '.join(DEVICES)}")
    return device


def default_device() -> str:
    """The device asked for by `KAO_DEVICE` (one of `DEVICES`), "auto" when it is unset."""
    value = os.environ.get("KAO_DEVICE", "").strip()
    try:
        return check_device(value) if value else "auto"
    except KaoError as error:
        raise KaoError(f"KAO_DEVICE: {error}") from None


def resolve_device(device: str | None = None) -> str:
    """The device sessions run on, "cpu" or "cuda", for `device` (one of `DEVICES`; default
    `default_device()`): "auto" is CUDA when onnxruntime offers the CUDA execution provider.
    ModelError when "cuda" is asked for and it does not."""
    device = default_device() if device is None else check_device(device)
    offered = CUDA in ort.get_available_providers()
    if device == "cuda" and not offered:
        raise ModelError(
            f"device cuda needs ONNX Runtime's {CUDA}, which this onnxruntime "
            f"{ort.__version__} lacks (it offers {', '.join(ort.get_available_providers())}): "
            "install kao[gpu] (onnxruntime-gpu) in place of onnxruntime "
            "(pip uninstall onnxruntime; pip install 'kao[gpu]'), or use --device cpu"
        )
    return "cuda" if device == "cuda" or (device == "auto" and offered) else "cpu"


def providers(device: str) -> list[str]:
    """ONNX Runtime execution providers for resolved `device` ("cpu" or "cuda"), in order of
    preference: CUDA falls back to the CPU for the nodes it does not run."""
    return [CUDA, CPU] if device == "cuda" else [CPU]


def onnx_session(
    path: Path, threads: int | None = None, device: str | None = None
) -> ort.InferenceSession:
    """The shared session for the ONNX file at `path` (ORT sessions are safe to run from
    several threads at once), with `threads` intra-op threads (default `default_threads()`),
    spinning as `default_spinning()` says, on
    `device` (one of `DEVICES`, default `default_device()`; see `resolve_device`). ModelError
    when the model cannot be loaded, or CUDA was asked for and the session could not use it."""
    threads = threads or default_threads()
    chosen = resolve_device(device)
    spinning = default_spinning()
    key = (path.resolve(), threads, spinning, chosen)
    with _lock:
        session = _sessions.get(key)
        if session is None:
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            options.add_session_config_entry(
                "session.intra_op.allow_spinning", "1" if spinning else "0"
            )
            options.log_severity_level = 3
            try:
                session = ort.InferenceSession(str(path), options, providers=providers(chosen))
            except Exception as error:  # ORT raises its own exception types
                raise ModelError(f"{path}: ONNX Runtime cannot load this model: {error}") from error
            if chosen == "cuda" and CUDA not in session.get_providers():
                raise ModelError(
                    f"{path}: ONNX Runtime could not start its {CUDA} (no usable NVIDIA GPU, "
                    "driver or CUDA libraries?); use --device cpu"
                )
            _sessions[key] = session
    return session


def device_report() -> dict[str, Any]:
    """What `kao models list` shows of the device: {"asked" (`default_device()`), "device"
    (`resolve_device()`, None when it fails), "problem" (its message, else None),
    "onnxruntime" (version), "providers" (the execution providers it offers), "cpu"
    (`kao.models.precision.cpu_info()`), "precision" (what 8-bit networks run in: {"asked":
    KAO_PRECISION or "auto", "chosen"}), "threads" (`thread_report()`)}."""
    report: dict[str, Any] = {"asked": None, "device": None, "problem": None}
    try:
        report["asked"] = default_device()
        report["device"] = resolve_device()
    except KaoError as error:
        report["problem"] = str(error)
    report["onnxruntime"] = ort.__version__
    report["providers"] = list(ort.get_available_providers())
    report["cpu"] = cpu_info()
    try:
        asked = asked_precision()
        report["precision"] = {
            "asked": asked,
            "chosen": choose_precision(asked, cpu_info()["flags"]),
        }
    except KaoError as error:
        report["precision"] = {"problem": str(error)}
    report["threads"] = thread_report()
    return report


def thread_report() -> dict[str, Any]:
    """How sessions made now would run: {"usable_cores", "idle_cores" (`idle_cores()`, None
    where unknown), "KAO_THREADS" (None when unset), "threads" (`default_threads()`),
    "spinning" (`default_spinning()`)}; a setting's KaoError goes in "problem"."""
    report: dict[str, Any] = {
        "usable_cores": usable_cores(),
        "idle_cores": idle_cores(),
        "KAO_THREADS": os.environ.get("KAO_THREADS") or None,
    }
    try:
        report["threads"] = default_threads()
        report["spinning"] = default_spinning()
    except KaoError as error:
        report["problem"] = str(error)
    return report
