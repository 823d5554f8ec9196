"""Models kao converts to ONNX at first use (dlib's descriptor, mini-Xception, MCNN, UltraFace's
masked-face network, Cydral's age and gender networks), cached.

A conversion is stored as `converted_dir()/<model>/<name>` with a `.json` record beside it: the
source file's sha256, the converter's version and the ONNX file's own sha256. It is made again
when either file is missing, damaged or made from another source or converter version; files
are written atomically, so a process killed mid-write leaves no half file in use. Conversions
live in their own sub-folder of the model cache, apart from the original files searched for
there: a converted copy named like its source would be reported as a corrupt copy of it by
`kao models verify`."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from kao.errors import ModelError
from kao.files import replace_atomically
from kao.models.store import cache_dir, sha256_of

_lock = threading.Lock()


def record_path(path: Path) -> Path:
    """The record (`.json`) beside the converted file `path`."""
    return path.with_name(path.name + ".json")


def _cached_ok(path: Path, record: dict[str, object]) -> bool:
    """True when `path` and its record match `record` (source sha256, converter version) and
    the ONNX file still has the sha256 recorded at conversion."""
    try:
        stored = json.loads(record_path(path).read_text(encoding="utf-8"))
        return (
            isinstance(stored, dict)
            and all(stored.get(key) == value for key, value in record.items())
            and stored.get("onnx_sha256") == sha256_of(path)
        )
    except (OSError, ValueError):
        return False


def _write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to a part file beside `path`, then move it into place."""
    with replace_atomically(path) as stream:
        stream.write(data)


def converted_dir() -> Path:
    """The folder of conversions: ``converted/`` inside the model cache (`cache_dir()`), where
    the search for a model's files (`<folder>/<model>/<file>`) never looks."""
    return cache_dir() / "converted"


def converted(
    model: str, name: str, source: Path, version: int, convert: Callable[[Path], bytes]
) -> Path:
    """The path of `convert(source)` (serialized ONNX bytes), cached as
    `converted_dir()/<model>/<name>` and converted again only when the cached copy does not match
    `source`'s sha256 and converter `version`. Raises ModelError when the cache is not
    writable."""
    path = converted_dir() / model / name
    record: dict[str, object] = {"source_sha256": sha256_of(source), "converter": version}
    with _lock:
        if _cached_ok(path, record):
            return path
        data = convert(source)
        record["onnx_sha256"] = hashlib.sha256(data).hexdigest()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            _write_atomically(path, data)
            _write_atomically(record_path(path), json.dumps(record, indent=1).encode("utf-8"))
        except OSError as error:
            raise ModelError(
                f"{path}: cannot write the converted model ({error.strerror or error}); set "
                "KAO_CACHE to a writable folder"
            ) from error
    return path


def without_denormals(source: Path) -> bytes:
    """The ONNX model at `source` with its subnormal float32 weights (|w| < 1.2e-38) set to 0.

    Such weights change no output visibly, but each multiplication by one takes the CPU's slow
    path: the 1,332 subnormal weights of Cydral's age network made its first convolution 50
    times slower (10.5 ms of its 11.7 ms per face, measured with ONNX Runtime's profiler)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(source))
    tiny = np.finfo(np.float32).tiny
    for index, tensor in enumerate(model.graph.initializer):
        if tensor.data_type != onnx.TensorProto.FLOAT:
            continue
        weights = numpy_helper.to_array(tensor)
        subnormal = (weights != 0) & (np.abs(weights) < tiny)
        if subnormal.any():
            flushed = numpy_helper.from_array(np.where(subnormal, 0, weights), tensor.name)
            model.graph.initializer[index].CopyFrom(flushed)
    return model.SerializeToString()
