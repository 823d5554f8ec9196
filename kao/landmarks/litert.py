"""TensorFlow Lite models (MediaPipe's FaceMesh and iris networks) run with LiteRT
(`ai-edge-litert`, XNNPACK on the CPU).

LiteRT was chosen over converting the models to ONNX at first use: it runs the `.tflite` files
as published (nothing to convert or cache), takes about 1.2 ms (FaceMesh) and 1.0 ms (iris) per
call on one core, and `tflite2onnx` 0.4.1 cannot convert `face_landmark.tflite` (its float16
weights behind DEQUANTIZE make the converter's layout pass fail).

LiteRT's C++ code prints "INFO: Created TensorFlow Lite XNNPACK delegate for CPU." on stderr
for every interpreter it creates, and no environment variable or option turns that line off
(TF_CPP_MIN_LOG_LEVEL does not reach TFLite's minimal logger). `_without_notice` sends file
descriptor 2 to a temporary file while an interpreter is created, then writes back everything
printed there except that line, so real warnings and errors still reach stderr."""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from kao.errors import ModelError
from kao.models.runtime import default_threads

XNNPACK_NOTICE = b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
"""The line LiteRT prints (once per interpreter) that `_without_notice` drops."""

_stderr_lock = threading.Lock()


@contextmanager
def _without_notice() -> Iterator[None]:
    """Run the block with file descriptor 2 redirected to a temporary file, then write what was
    printed there back to stderr, less `XNNPACK_NOTICE`. Blocks run one at a time (fd 2 is the
    whole process's); another thread's output in the meantime is delayed, not lost."""
    with _stderr_lock, tempfile.TemporaryFile() as captured:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().splitlines(keepends=True)
            kept = b"".join(line for line in lines if line.rstrip(b"\r\n") != XNNPACK_NOTICE)
            if kept:
                os.write(2, kept)


class TfliteModel:
    """One `.tflite` file: float32 NHWC input, float32 outputs. An interpreter is not
    thread-safe, so each thread gets its own (created on first use, `KAO_THREADS` threads)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self.input_shape = tuple(
            int(v) for v in self._interpreter().get_input_details()[0]["shape"]
        )

    def _interpreter(self) -> Any:
        """This thread's LiteRT interpreter (LiteRT ships no type hints)."""
        interpreter = getattr(self._local, "interpreter", None)
        if interpreter is None:
            from ai_edge_litert.interpreter import Interpreter

            try:
                with _without_notice():
                    interpreter = Interpreter(
                        model_path=str(self.path), num_threads=default_threads()
                    )
                    interpreter.allocate_tensors()
            except (RuntimeError, ValueError) as error:
                raise ModelError(f"{self.path}: LiteRT cannot load this model: {error}") from error
            self._local.interpreter = interpreter
        return interpreter

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        """The model's outputs for `batch` (N x H x W x C float32), one array per output, each
        of shape (N, ...) (the network is called once per item: its batch size is 1)."""
        interpreter = self._interpreter()
        source = interpreter.get_input_details()[0]["index"]
        targets = [detail["index"] for detail in interpreter.get_output_details()]
        results: list[list[np.ndarray]] = [[] for _ in targets]
        for item in batch:
            interpreter.set_tensor(source, item[None].astype(np.float32, copy=False))
            interpreter.invoke()
            for result, target in zip(results, targets, strict=False):
                result.append(interpreter.get_tensor(target).reshape(-1).copy())
        return [np.stack(result) if result else np.zeros((0,)) for result in results]
