"""ONNX Runtime sessions: created lazily, once per model file, thread count and device, shared
between threads.

The device: "cpu" (ONNX Runtime's CPU execution provider), "cuda" (its CUDA execution
provider, with the CPU for the nodes CUDA does not run; needs the `kao[gpu]` extra,
onnxruntime-gpu, and an NVIDIA GPU) or "auto" (CUDA when this onnxruntime offers it, else the
CPU). `KAO_DEVICE` sets the default (auto when unset); the per-image commands' `--device`
sets it for the command and its worker processes."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import onnxruntime as ort

from kao.errors import KaoError, ModelError

DEVICES = ("auto", "cpu", "cuda")
"""What `--device` and `KAO_DEVICE` accept."""
CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"

_sessions: dict[tuple[Path, int, str], ort.InferenceSession] = {}
_lock = threading.Lock()


def default_threads() -> int:
    """Intra-op threads per session: `KAO_THREADS` if set, else the number of CPU cores."""
    value = os.environ.get("KAO_THREADS")
    if value:
        return max(1, int(value))
    return os.cpu_count() or 1


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
    several threads at once), with `threads` intra-op threads (default `default_threads()`) on
    `device` (one of `DEVICES`, default `default_device()`; see `resolve_device`). ModelError
    when the model cannot be loaded, or CUDA was asked for and the session could not use it."""
    threads = threads or default_threads()
    chosen = resolve_device(device)
    key = (path.resolve(), threads, chosen)
    with _lock:
        session = _sessions.get(key)
        if session is None:
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
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
    "onnxruntime" (version), "providers" (the execution providers it offers)}."""
    report: dict[str, Any] = {"asked": None, "device": None, "problem": None}
    try:
        report["asked"] = default_device()
        report["device"] = resolve_device()
    except KaoError as error:
        report["problem"] = str(error)
    report["onnxruntime"] = ort.__version__
    report["providers"] = list(ort.get_available_providers())
    return report
