"""ONNX Runtime sessions: created lazily, once per model file, thread count and device, shared
between threads.

The device: "cpu" (ONNX Runtime's CPU execution provider), "cuda" (its CUDA execution
provider, with the CPU for the nodes CUDA does not run; needs the `kao[gpu]` extra,
onnxruntime-gpu, and an NVIDIA GPU) or "auto" (CUDA when this onnxruntime offers it, else the
CPU). `KAO_DEVICE` sets the default (auto when unset); the per-image commands' `--device`
sets it for the command and its worker processes.

Threads: `KAO_THREADS` (or a model's `threads` argument) fixes them. Otherwise a session on
the CPU is an `AdaptiveSession`: each run goes to a session of the model with as many threads
as cores are idle of other processes' work now (`LoadMonitor`: /proc/stat and this process's
own CPU time, sampled at most every `MONITOR_PERIOD_S`), so that another busy process never
makes a run split its work over a core it shares, which took 38 ms per 640 x 480 detection
against 19 ms for one thread with one of two cores busy. Sessions made with a fixed count and
where /proc/stat cannot be read (not Linux) use `default_threads()`. ONNX Runtime's worker
threads spin while waiting for work only when `KAO_SPINNING` = 1 (default `SPINNING`)."""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
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
MONITOR_PERIOD_S = 0.5
"""How often an `AdaptiveSession` counts the idle cores again, at most, seconds."""

_sessions: dict[tuple[Path, int | None, bool, str], Any] = {}
_lock = threading.RLock()
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


def others_busy(
    before: tuple[float, float, float, float], after: tuple[float, float, float, float]
) -> float:
    """Cores other processes kept busy between two samples (monotonic seconds, idle ticks and
    all ticks of the usable cores from /proc/stat, this process's CPU seconds): the usable
    cores' busy share times their number, minus this process's CPU seconds per second, at
    least 0."""
    wall = after[0] - before[0]
    ticks = after[2] - before[2]
    if wall <= 0 or ticks <= 0:
        return 0.0
    cores = usable_cores()
    busy = cores * (1 - (after[1] - before[1]) / ticks)
    own = (after[3] - before[3]) / wall
    return max(0.0, busy - own)


class LoadMonitor:
    """How many of this process's usable cores other processes leave idle, counted again at
    most every `period` seconds from /proc/stat and this process's CPU time (the first count:
    `idle_cores()`). Safe to share between threads."""

    def __init__(self, period: float = MONITOR_PERIOD_S) -> None:
        self.period = period
        self._lock = threading.Lock()
        self._sample: tuple[float, float, float, float] | None = None
        self._idle: float | None = None

    def _take(self) -> tuple[float, float, float, float] | None:
        """(monotonic seconds, idle ticks, all ticks, this process's CPU seconds), None where
        /proc/stat cannot be read."""
        cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
        ticks = _cpu_times(cpus)
        if ticks is None:
            return None
        times = os.times()
        return (time.monotonic(), ticks[0], ticks[1], times.user + times.system)

    def idle(self) -> float | None:
        """Usable cores minus those other processes kept busy since the last count (None
        where unknown)."""
        with self._lock:
            now = time.monotonic()
            if self._sample is not None and now - self._sample[0] < self.period:
                return self._idle
            sample = self._take()
            if self._sample is None or sample is None:
                self._idle = idle_cores()
            else:
                self._idle = usable_cores() - others_busy(self._sample, sample)
            self._sample = sample
            return self._idle

    def threads(self) -> int:
        """`choose_threads` of the usable cores and `idle()`."""
        return choose_threads(usable_cores(), self.idle())


_monitor = LoadMonitor()


class AdaptiveSession:
    """One model's sessions with 1 to `usable_cores()` intra-op threads, each made when first
    needed by `make(threads)`; `run` uses the one `monitor.threads()` names now. Other
    attributes (inputs, outputs, metadata, providers) are the first session's. Safe to share
    between threads."""

    def __init__(
        self, make: Callable[[int], ort.InferenceSession], monitor: LoadMonitor | None = None
    ) -> None:
        self._make = make
        self._made: dict[int, ort.InferenceSession] = {}
        self.monitor = monitor or _monitor
        self.threads = self.monitor.threads()
        """The thread count of the last run (of the session made first, before any)."""
        self._first = self.session(self.threads)

    def session(self, threads: int) -> ort.InferenceSession:
        """The session with `threads` intra-op threads, made on first use."""
        session = self._made.get(threads)
        if session is None:
            session = self._made[threads] = self._make(threads)
        return session

    def run(self, output_names: Any, input_feed: dict[str, Any], run_options: Any = None) -> Any:
        """`InferenceSession.run` on the session with `monitor.threads()` threads."""
        self.threads = self.monitor.threads()
        return self.session(self.threads).run(output_names, input_feed, run_options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._first, name)


def choose_threads(cores: int, idle: float | None) -> int:
    """Intra-op threads for a run on a machine with `cores` usable cores of which `idle`
    (None: unknown) are idle: the idle cores rounded to the nearest whole core, then down to a
    power of two or `cores` itself (so that an `AdaptiveSession` holds a few sessions, not one
    per count: 1, 2, 4, 6 on 6 cores), at least 1; all `cores` when unknown."""
    if idle is None:
        return cores
    wanted = max(1, min(cores, math.floor(idle + 0.5)))
    return wanted if wanted == cores else 1 << (wanted.bit_length() - 1)


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
) -> ort.InferenceSession | AdaptiveSession:
    """The shared session for the ONNX file at `path` (safe to run from several threads at
    once), spinning as `default_spinning()` says, on `device` (one of `DEVICES`, default
    `default_device()`; see `resolve_device`): with `threads` intra-op threads, else
    `KAO_THREADS`, else on the CPU an `AdaptiveSession` (threads follow the idle cores run by
    run; where /proc/stat cannot be read, every core). ModelError when the model cannot be
    loaded, or CUDA was asked for and the session could not use it."""
    chosen = resolve_device(device)
    spinning = default_spinning()
    if threads is None and os.environ.get("KAO_THREADS", "").strip():
        threads = default_threads()
    if threads is None and chosen == "cpu" and Path("/proc/stat").is_file():
        key = (path.resolve(), None, spinning, chosen)
        with _lock:
            if key not in _sessions:
                _sessions[key] = AdaptiveSession(
                    lambda count: _session(path, count, spinning, chosen)
                )
            return _sessions[key]
    return _session(path, threads or default_threads(), spinning, chosen)


def _session(path: Path, threads: int, spinning: bool, chosen: str) -> ort.InferenceSession:
    """The cached session of `path` with `threads` intra-op threads, `spinning`, on resolved
    device `chosen` (see `onnx_session`)."""
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
    """How sessions run now: {"usable_cores", "idle_cores" (of other processes' work, as the
    shared `LoadMonitor` last counted them; None where unknown), "KAO_THREADS" (None when
    unset), "adaptive" (whether threads follow the idle cores run by run: `AdaptiveSession`),
    "threads" (the count a run would use now), "spinning" (`default_spinning()`)}; a
    setting's KaoError goes in "problem"."""
    fixed = os.environ.get("KAO_THREADS", "").strip()
    report: dict[str, Any] = {
        "usable_cores": usable_cores(),
        "idle_cores": _monitor.idle(),
        "KAO_THREADS": fixed or None,
        "adaptive": not fixed and Path("/proc/stat").is_file(),
    }
    try:
        report["threads"] = default_threads() if fixed else _monitor.threads()
        report["spinning"] = default_spinning()
    except KaoError as error:
        report["problem"] = str(error)
    return report
