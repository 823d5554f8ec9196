"""ONNX Runtime sessions: created lazily, once per model file, shared between threads."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import onnxruntime as ort

from kao.errors import ModelError

_sessions: dict[tuple[Path, int], ort.InferenceSession] = {}
_lock = threading.Lock()


def default_threads() -> int:
    """Intra-op threads per session: `KAO_THREADS` if set, else the number of CPU cores."""
    value = os.environ.get("KAO_THREADS")
    if value:
        return max(1, int(value))
    return os.cpu_count() or 1


def onnx_session(path: Path, threads: int | None = None) -> ort.InferenceSession:
    """The shared CPU session for the ONNX file at `path` (ORT sessions are safe to run from
    several threads at once)."""
    threads = threads or default_threads()
    key = (path.resolve(), threads)
    with _lock:
        session = _sessions.get(key)
        if session is None:
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            try:
                session = ort.InferenceSession(
                    str(path), options, providers=["CPUExecutionProvider"]
                )
            except Exception as error:  # ORT raises its own exception types
                raise ModelError(f"{path}: ONNX Runtime cannot load this model: {error}") from error
            _sessions[key] = session
    return session
