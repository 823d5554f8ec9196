"""Precision per CPU: 8-bit networks where the CPU has 8-bit dot-product instructions, float
elsewhere.

kao ships one 8-bit network, the emotion ensemble (`kao/attributes/weights/emotion.onnx`,
ONNX QDQ format: int8 weights, uint8 activations). ONNX Runtime runs its 8-bit convolutions
fast on CPUs with 8-bit dot-product instructions (x86: AVX-512 VNNI or AVX-VNNI; ARM: the
dot-product extension, `asimddp` in Linux's flags) and slowly elsewhere (7.9 ms against about
1 ms a face on an AMD EPYC without VNNI). On such CPUs kao runs the float network instead:
`dequantized` makes it from the 8-bit file at first use (each weight `DequantizeLinear` folded
into a float32 initializer, each activation `QuantizeLinear` -> `DequantizeLinear` pair
removed), cached like kao's other conversions (`kao.models.converted`).

`KAO_PRECISION` = `int8` or `fp32` overrides the choice (`auto`, or unset: by the CPU)."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from kao.errors import KaoError

PRECISIONS = ("auto", "int8", "fp32")
"""What `KAO_PRECISION` accepts."""
INT8_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "asimddp", "dotprod"})
"""CPU flags (Linux /proc/cpuinfo names; `dotprod` for macOS's FEAT_DotProd) under which 8-bit
networks run fast."""
REPORTED_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "asimddp")
"""The flags `cpu_info` reports (the ones that pick ONNX Runtime's kernels)."""
CONVERTER_VERSION = 1
"""Version of `dequantized`: a change makes cached float copies again."""


def cpu_info() -> dict[str, Any]:
    """{"model": the CPU's name (None when unknown), "flags": the `REPORTED_FLAGS` and
    `INT8_FLAGS` it has, sorted}: from /proc/cpuinfo on Linux, `sysctl` on macOS, else
    `platform.processor()` and no flags."""
    model, flags = _linux_cpu() if Path("/proc/cpuinfo").is_file() else _other_cpu()
    wanted = set(REPORTED_FLAGS) | INT8_FLAGS
    return {"model": model, "flags": sorted(flags & wanted)}


def _linux_cpu() -> tuple[str | None, set[str]]:
    """`parse_cpuinfo` of /proc/cpuinfo."""
    return parse_cpuinfo(Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace"))


def parse_cpuinfo(text: str) -> tuple[str | None, set[str]]:
    """(model name, flags) of the first processor in the text of Linux's /proc/cpuinfo (x86:
    "model name" and "flags"; ARM: "Features", and a model in "Hardware" when at all)."""
    model: str | None = None
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "hardware") and model is None:
            model = value.strip()
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
    return model, flags


def _other_cpu() -> tuple[str | None, set[str]]:
    """(model, flags) where there is no /proc/cpuinfo: macOS's sysctl (Apple's ARM CPUs report
    hw.optional.arm.FEAT_DotProd), else `platform.processor()` without flags."""
    if platform.system() == "Darwin":
        model = _sysctl("machdep.cpu.brand_string")
        return model, {"dotprod"} if _sysctl("hw.optional.arm.FEAT_DotProd") == "1" else set()
    return platform.processor() or None, set()


def _sysctl(name: str) -> str | None:
    """The value of macOS's sysctl `name`, None when it cannot be read."""
    try:
        found = subprocess.run(["sysctl", "-n", name], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return found.stdout.strip() or None if found.returncode == 0 else None


def asked_precision() -> str:
    """`KAO_PRECISION` (one of `PRECISIONS`, any case), "auto" when unset; KaoError naming the
    variable for another value."""
    value = os.environ.get("KAO_PRECISION", "").strip().lower()
    if value and value not in PRECISIONS:
        raise KaoError(
            f"KAO_PRECISION: unknown precision {value!r}; choose one of {', '.join(PRECISIONS)}"
        )
    return value or "auto"


def choose_precision(asked: str, flags: set[str] | list[str]) -> str:
    """The precision 8-bit networks run in, "int8" or "fp32": `asked` unless it is "auto", then
    "int8" when `flags` has one of `INT8_FLAGS`, else "fp32"."""
    if asked != "auto":
        return asked
    return "int8" if INT8_FLAGS & set(flags) else "fp32"


def precision() -> str:
    """The precision for this process: `choose_precision(asked_precision(), this CPU's
    flags)`."""
    return choose_precision(asked_precision(), cpu_info()["flags"])


def in_precision(path: Path, model: str) -> tuple[Path, str]:
    """(the file to load, its precision) for the 8-bit network at `path` of `model` (its name in
    the conversion cache): `path` itself when `precision()` is "int8", else its float version
    (`dequantized`, converted once and cached). ModelError when the cache is not writable."""
    from kao.models.converted import converted

    chosen = precision()
    if chosen == "int8":
        return path, chosen
    name = f"{path.stem}_fp32.onnx"
    return converted(model, name, path, CONVERTER_VERSION, dequantized), chosen


def dequantized(source: Path) -> bytes:
    """The float version of the QDQ model at `source`, serialized: each `DequantizeLinear` of
    a constant (a weight: int8 values, per-tensor or per-channel scale and zero point) becomes
    the float32 initializer it computes, and each `QuantizeLinear` -> `DequantizeLinear` pair on
    an activation is replaced by a `Clip` to the range it can represent ((0 - zero point) * scale to
    (255 - zero point) * scale for uint8: the quantizer drops a `Relu` before a uint8 zero point
    of 0, leaving its clamp to the quantization). The weights are the 8-bit ones; only the
    activations gain precision. A model without QDQ nodes comes back
    as it is."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(source))
    graph = model.graph
    constants = {tensor.name: tensor for tensor in graph.initializer}
    folded: list[onnx.TensorProto] = []
    kept = []
    quantizers = {n.output[0]: n for n in graph.node if n.op_type == "QuantizeLinear"}
    for node in graph.node:
        if node.op_type == "DequantizeLinear" and node.input[0] in constants:
            folded.append(numpy_helper.from_array(_dequantize(node, constants), node.output[0]))
        elif node.op_type == "DequantizeLinear" and node.input[0] in quantizers:
            clip, bounds = _clip(quantizers[node.input[0]], constants, node.output[0])
            kept.append(clip)
            folded.extend(bounds)
        elif node.op_type != "QuantizeLinear":
            kept.append(node)
    used = {name for node in kept for name in node.input}
    initializers = [t for t in graph.initializer if t.name in used] + folded
    new_graph = helper.make_graph(
        kept, graph.name, graph.input, graph.output, initializers, value_info=[]
    )
    new_model = helper.make_model(new_graph, opset_imports=model.opset_import)
    new_model.ir_version = model.ir_version
    new_model.producer_name = model.producer_name
    new_model.metadata_props.extend(model.metadata_props)
    onnx.checker.check_model(new_model)
    return new_model.SerializeToString()


def _clip(quantize: Any, constants: dict[str, Any], output: str) -> tuple[Any, list[Any]]:
    """A `Clip` node from the float input of `quantize` (a `QuantizeLinear` of an activation,
    per-tensor scale and zero point) to `output`, bounded to the values it represents, and its
    two bound initializers."""
    from onnx import helper, numpy_helper

    scale = float(numpy_helper.to_array(constants[quantize.input[1]]))
    zero_point = numpy_helper.to_array(constants[quantize.input[2]])
    info = np.iinfo(zero_point.dtype)
    low, high = ((limit - int(zero_point)) * scale for limit in (info.min, info.max))
    bounds = [
        numpy_helper.from_array(np.array(value, np.float32), f"{output}_clip_{side}")
        for side, value in (("min", low), ("max", high))
    ]
    node = helper.make_node("Clip", [quantize.input[0], *(b.name for b in bounds)], [output])
    return node, bounds


def _dequantize(node: Any, constants: dict[str, Any]) -> np.ndarray:
    """The float32 values of a `DequantizeLinear` `node` of constants: (x - zero point) * scale,
    the scale and zero point broadcast along the node's `axis` (default 1) when per channel."""
    from onnx import numpy_helper

    values = numpy_helper.to_array(constants[node.input[0]]).astype(np.float32)
    scale = numpy_helper.to_array(constants[node.input[1]]).astype(np.float32)
    zero = (
        numpy_helper.to_array(constants[node.input[2]]).astype(np.float32)
        if len(node.input) > 2 and node.input[2]
        else np.zeros_like(scale)
    )
    if scale.ndim == 1 and values.ndim > 1:
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1) % values.ndim
        shape = [1] * values.ndim
        shape[axis] = -1
        scale, zero = scale.reshape(shape), zero.reshape(shape)
    return ((values - zero) * scale).astype(np.float32)
