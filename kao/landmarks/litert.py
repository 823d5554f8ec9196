"""TensorFlow Lite models (MediaPipe's FaceMesh and iris networks) run with LiteRT
(`ai-edge-litert`, XNNPACK on the CPU).

LiteRT was chosen over converting the models to ONNX at first use: it runs the `.tflite` files
as published (nothing to convert or cache), takes about 1.2 ms (FaceMesh) and 1.0 ms (iris) per
call on one core, and `tflite2onnx` 0.4.1 cannot convert `face_landmark.tflite` (its float16
weights behind DEQUANTIZE make the converter's layout pass fail)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from kao.errors import ModelError
from kao.models.runtime import default_threads


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
                interpreter = Interpreter(model_path=str(self.path), num_threads=default_threads())
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
