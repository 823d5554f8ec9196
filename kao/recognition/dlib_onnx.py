"""dlib's ResNet face descriptor (`dlib_face_recognition_resnet_model_v1.dat`) converted to ONNX
and run with ONNX Runtime: the same 128-d vectors as dlib (max abs difference ~4e-7), about
12 ms per chip on a 2-core CPU instead of the ~170 ms of the BLAS-less dlib wheel.

The .dat file is read in pure Python following dlib's serialisation (dlib/serialize.h,
dlib/dnn/core.h, dlib/dnn/layers.h, dlib/cuda/tensor.h): the network type is compiled into dlib,
not stored, so the file is read against the layer list of `anet_type` in dlib's
examples/dnn_face_recognition_ex.cpp and every stored hyper-parameter is checked against it.

File layout, outermost object first (dlib writes an `add_layer` as: version, the whole
sub-network, then the layer's own details and state):

- `add_loss_layer` version (int 1), `loss_metric_2` (margin, distance threshold as floats);
- one version int for each of the 129 wrappers below the loss, outermost first (`add_layer`
  1-2, `add_tag_layer` and `add_skip_layer` 1: tags and skips store no id and no data);
- the innermost `add_layer` (the one over the input layer) version (2-3), the input layer
  (`input_rgb_image_sized`: the R, G, B means and the size), its `con_` details and state;
- then, innermost first, every other `add_layer`'s details followed by its state (three bools,
  two or three usually empty tensors).

Encodings: ints are a control byte (size in the low bits, 0x80 = negative) then that many
little-endian bytes; a float is such an int64 mantissa and int16 exponent (value
mantissa * 2**exponent); a bool is the ASCII byte '0' or '1'; a string is its length then its
bytes; a tensor is version 2, four int64 dimensions (n, k, rows, cols), then n*k*rows*cols
little-endian IEEE float32 values. The shipped file (2017) holds `con_4`, `affine_` (already
folded batch norm), `relu_`, `avg_pool_2`, `max_pool_2`, `fc_2`, add_layer version 2 and input
add_layer version 3, with every training-state tensor empty.

The input layer makes planar (N, 3, 150, 150) R, G, B planes of (pixel - mean) / 256. The
residual shortcuts of the down-sampling blocks add tensors of different sizes (32 -> 64
channels; a 3 x 3 block output onto a 4 x 4 pooled shortcut where 8 x 8 is halved): dlib pads
the smaller with zeros at the end of each dimension, and so does the ONNX graph.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from kao.errors import KaoError, ModelError
from kao.models import model_path
from kao.models.converted import converted
from kao.models.runtime import onnx_session

SPEC_NAME = "dlib_face_recognition"
SOURCE_FILE = "dlib_face_recognition_resnet_model_v1.dat"
ONNX_FILE = "dlib_resnet_v1.onnx"
CONVERTER_VERSION = 1
"""Bumped whenever `build_onnx` changes its output, so that cached conversions are redone."""
OPSET = 17
IR_VERSION = 8
INPUT_NAME = "chips"
OUTPUT_NAME = "descriptor"
CHIP_SIZE = 150
DIMENSION = 128
BATCH = 32
"""Chips per ONNX Runtime call in `DlibOnnxNetwork.descriptors` (bounds the activation memory:
about 1 MiB of float32 activations per chip at the widest layer)."""

# ----------------------------------------------------------------------------------------------
# The parsed network: one entry per dlib layer, input to output.


@dataclass(frozen=True)
class Conv:
    """`con_`: cross-correlation with zero padding, then the bias, then ReLU if `relu` (dlib's
    fused `con_6` flag). `filters` (out, in, rows, cols) float32, `bias` (out,) or None."""

    filters: np.ndarray
    bias: np.ndarray | None
    stride: tuple[int, int]
    padding: tuple[int, int]
    relu: bool


@dataclass(frozen=True)
class Affine:
    """`affine_` in CONV mode: `gamma[c] * x + beta[c]` per channel, both (channels,) float32."""

    gamma: np.ndarray
    beta: np.ndarray


@dataclass(frozen=True)
class Relu:
    """`relu_`: max(x, 0)."""


@dataclass(frozen=True)
class Identity:
    """A layer stored as disabled (`relu_2` or `affine_2` with its `disabled` flag set)."""

    what: str


@dataclass(frozen=True)
class Pool:
    """`max_pool_` / `avg_pool_`; `size` (rows, cols) is (0, 0) for the `*_pool_everything`
    layers, whose window is the whole input. The average ignores padding (dlib clips the
    window to the image)."""

    kind: Literal["max", "avg"]
    size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]


@dataclass(frozen=True)
class Tag:
    """`tagN`: remembers its input; later `skipN` / `add_prevN` refer to the nearest one."""

    id: int


@dataclass(frozen=True)
class Skip:
    """`skipN`: outputs the output of the nearest `tagN` below, ignoring its own input."""

    id: int


@dataclass(frozen=True)
class AddPrev:
    """`add_prevN`: its input plus the nearest `tagN`'s output. When the two differ in size the
    output takes the larger of each dimension and the missing part of either counts as zero."""

    id: int


@dataclass(frozen=True)
class FullyConnected:
    """`fc_`: the input flattened in (channel, row, col) order times `weights` (inputs, outputs)
    float32, plus `bias` (outputs,) unless None (`fc_no_bias`)."""

    weights: np.ndarray
    bias: np.ndarray | None


Layer = Conv | Affine | Relu | Identity | Pool | Tag | Skip | AddPrev | FullyConnected


@dataclass(frozen=True)
class DlibResnet:
    """The dlib face descriptor network read from its .dat file.

    `means` are the R, G, B means (float32 values, 0-255 scale) that the input layer subtracts
    before dividing by 256; `size` is the input (rows, cols) in px; `layers` run input to output;
    `margin` and `distance_threshold` are the metric loss's training settings (unused when
    computing descriptors)."""

    means: tuple[float, float, float]
    size: tuple[int, int]
    layers: tuple[Layer, ...]
    margin: float
    distance_threshold: float


# ----------------------------------------------------------------------------------------------
# The architecture the file must hold: dlib's anet_type, input to output.


@dataclass(frozen=True)
class _Expect:
    kind: Literal["con", "affine", "relu", "max_pool", "avg_pool", "tag", "skip", "add_prev", "fc"]
    filters: int = 0
    size: int = 0
    stride: int = 1
    id: int = 0


def _con(filters: int, size: int, stride: int) -> _Expect:
    return _Expect("con", filters=filters, size=size, stride=stride)


_AFFINE = _Expect("affine")
_RELU = _Expect("relu")


def _block(filters: int, stride: int) -> list[_Expect]:
    """BN<con<N,3,3,1,1, relu<BN<con<N,3,3,stride,stride, SUB>>>>> with BN = affine."""
    return [_con(filters, 3, stride), _AFFINE, _RELU, _con(filters, 3, 1), _AFFINE]


def _ares(filters: int) -> list[_Expect]:
    """relu<add_prev1<block<N,affine,1, tag1<SUB>>>>."""
    return [_Expect("tag", id=1), *_block(filters, 1), _Expect("add_prev", id=1), _RELU]


def _ares_down(filters: int) -> list[_Expect]:
    """relu<add_prev2<avg_pool<2,2,2,2, skip1<tag2<block<N,affine,2, tag1<SUB>>>>>>>."""
    return [
        _Expect("tag", id=1),
        *_block(filters, 2),
        _Expect("tag", id=2),
        _Expect("skip", id=1),
        _Expect("avg_pool", size=2, stride=2),
        _Expect("add_prev", id=2),
        _RELU,
    ]


_ANET: tuple[_Expect, ...] = (
    _con(32, 7, 2),
    _AFFINE,
    _RELU,
    _Expect("max_pool", size=3, stride=2),
    *_ares(32) * 3,  # alevel4
    *_ares_down(64),  # alevel3
    *_ares(64) * 3,
    *_ares_down(128),  # alevel2
    *_ares(128) * 2,
    *_ares_down(256),  # alevel1
    *_ares(256) * 2,
    *_ares_down(256),  # alevel0
    _Expect("avg_pool", size=0, stride=1),  # avg_pool_everything
    _Expect("fc", filters=DIMENSION),  # fc_no_bias<128>
)


def _default_padding(size: int, stride: int) -> int:
    """dlib's default for con_ and the pools: 0 when strided, else half the window."""
    return 0 if stride != 1 else size // 2


# ----------------------------------------------------------------------------------------------
# dlib's serialisation format.


class _Reader:
    """Reads dlib-serialised values from `data`; every failure is a ModelError naming the file,
    what was being read and the byte offset."""

    def __init__(self, data: bytes, source: str) -> None:
        self.data = memoryview(data)
        self.pos = 0
        self.source = source

    def error(self, what: str, at: int | None = None) -> ModelError:
        return ModelError(
            f"{self.source}: not a dlib ResNet face descriptor file: {what} "
            f"(at byte {self.pos if at is None else at} of {len(self.data)})"
        )

    def take(self, count: int, what: str) -> memoryview:
        if count > len(self.data) - self.pos:
            raise self.error(f"file ends in the middle of {what} (truncated?)")
        chunk = self.data[self.pos : self.pos + count]
        self.pos += count
        return chunk

    def _int(self, what: str, *, signed: bool) -> int:
        start = self.pos
        control = self.take(1, what)[0]
        size = control & (0x0F if signed else 0x8F)
        if size == 0 or size > 8:
            raise self.error(f"bad integer control byte 0x{control:02x} in {what}", start)
        value = int.from_bytes(self.take(size, what), "little")
        return -value if signed and control & 0x80 else value

    def int(self, what: str) -> int:
        """A signed integer (int, long, int64)."""
        return self._int(what, signed=True)

    def uint(self, what: str) -> int:
        """An unsigned integer (unsigned long, size_t)."""
        return self._int(what, signed=False)

    def float(self, what: str) -> float:
        """A float or double in dlib's portable format (mantissa * 2**exponent), as a Python
        float; callers that read a C++ float round it with np.float32."""
        if self.pos < len(self.data) and self.data[self.pos] & 0x70:
            raise self.error(f"{what} is in dlib's old text float format, which is not supported")
        mantissa = self.int(what)
        exponent = self.int(what)
        if exponent >= 32000:
            return {32000: math.inf, 32001: -math.inf}.get(exponent, math.nan)
        try:
            return math.ldexp(float(mantissa), exponent)
        except OverflowError:
            raise self.error(f"{what} is out of range") from None

    def float32(self, what: str) -> float:
        return float(np.float32(self.float(what)))

    def bool(self, what: str) -> bool:
        value = bytes(self.take(1, what))
        if value not in (b"0", b"1"):
            raise self.error(f"bad bool {value!r} in {what}", self.pos - 1)
        return value == b"1"

    def string(self, what: str) -> str:
        size = self.uint(what)
        return bytes(self.take(size, what)).decode("latin-1")

    def version(self, what: str, allowed: Sequence[str]) -> str:
        start = self.pos
        version = self.string(f"{what} version")
        if version not in allowed:
            raise self.error(f"expected {' or '.join(allowed)}, found {version[:40]!r}", start)
        return version

    def dims(self, what: str) -> tuple[int, int, int, int]:
        dims = tuple(self.int(f"{what} size") for _ in range(4))
        if min(dims) < 0:
            raise self.error(f"negative size {dims} in {what}")
        return dims  # type: ignore[return-value]

    def tensor(self, what: str) -> np.ndarray:
        """A resizable_tensor -> (n, k, rows, cols) float32 array."""
        start = self.pos
        if (version := self.int(what)) != 2:
            raise self.error(f"unknown tensor version {version} in {what}", start)
        dims = self.dims(what)
        count = math.prod(dims)
        raw = self.take(4 * count, what)
        return np.frombuffer(raw, "<f4").astype(np.float32).reshape(dims)

    def alias(self, what: str) -> tuple[int, int, int, int]:
        """An alias_tensor: only its shape (n, k, rows, cols) is stored."""
        start = self.pos
        if (version := self.int(what)) != 1:
            raise self.error(f"unknown alias_tensor version {version} in {what}", start)
        return self.dims(what)


def _check(reader: _Reader, ok: bool, what: str, start: int) -> None:
    if not ok:
        raise reader.error(what, start)


def _read_con(r: _Reader, e: _Expect, name: str) -> Conv:
    start = r.pos
    version = r.version(name, ("con_4", "con_5", "con_6"))
    params = r.tensor(f"{name} params").reshape(-1)
    filters = r.int(f"{name} num_filters")
    rows, cols = r.int(f"{name} nr"), r.int(f"{name} nc")
    stride = (r.int(f"{name} stride_y"), r.int(f"{name} stride_x"))
    padding = (r.int(f"{name} padding_y"), r.int(f"{name} padding_x"))
    shape = r.alias(f"{name} filters")
    bias_shape = r.alias(f"{name} biases")
    for field in ("learning_rate", "weight_decay", "bias_learning_rate", "bias_weight_decay"):
        r.float(f"{name} {field}_multiplier")
    use_bias = r.bool(f"{name} use_bias") if version in ("con_5", "con_6") else True
    use_relu = r.bool(f"{name} use_relu") if version == "con_6" else False
    pad = _default_padding(e.size, e.stride)
    expected = (e.filters, e.size, e.size, e.stride, e.stride, pad, pad)
    found = (filters, rows, cols, *stride, *padding)
    _check(
        r,
        found == expected,
        f"{name}: (filters, nr, nc, strides, paddings) {found}, expected {expected}",
        start,
    )
    count = math.prod(shape)
    _check(
        r,
        shape[0] == filters
        and shape[2:] == (rows, cols)
        and (not use_bias or math.prod(bias_shape) == filters)
        and params.size == count + (filters if use_bias else 0),
        f"{name}: inconsistent parameter sizes (params {params.size}, filters {shape})",
        start,
    )
    return Conv(
        params[:count].reshape(shape),
        params[count : count + filters].copy() if use_bias else None,
        stride,
        padding,
        use_relu,
    )


def _read_affine(r: _Reader, name: str) -> Affine | Identity:
    start = r.pos
    version = r.version(name, ("affine_", "affine_2", "bn_con2", "bn_fc2"))
    _check(
        r,
        version.startswith("affine"),
        f"{name}: batch normalisation layers (a network saved while training) are not "
        f"supported, found {version!r}",
        start,
    )
    params = r.tensor(f"{name} params").reshape(-1)
    gamma = r.alias(f"{name} gamma")
    beta = r.alias(f"{name} beta")
    mode = r.int(f"{name} mode")
    disabled = r.bool(f"{name} disabled") if version == "affine_2" else False
    if disabled:
        return Identity("affine (disabled)")
    _check(r, mode == 0, f"{name}: expected CONV mode (0), found mode {mode}", start)
    channels = gamma[1]
    _check(
        r,
        gamma == beta == (1, channels, 1, 1) and params.size == 2 * channels,
        f"{name}: inconsistent parameter sizes (params {params.size}, gamma {gamma})",
        start,
    )
    return Affine(params[:channels].copy(), params[channels:].copy())


def _read_relu(r: _Reader, name: str) -> Relu | Identity:
    version = r.version(name, ("relu_", "relu_2"))
    if version == "relu_2" and r.bool(f"{name} disabled"):
        return Identity("relu (disabled)")
    return Relu()


def _read_pool(r: _Reader, e: _Expect, name: str) -> Pool:
    start = r.pos
    kind: Literal["max", "avg"] = "max" if e.kind == "max_pool" else "avg"
    r.version(name, (f"{kind}_pool_2",))
    values = tuple(r.int(f"{name} {field}") for field in ("nr", "nc", "sy", "sx", "py", "px"))
    pad = _default_padding(e.size, e.stride)
    expected = (e.size, e.size, e.stride, e.stride, pad, pad)
    _check(
        r,
        values == expected,
        f"{name}: (nr, nc, strides, paddings) {values}, expected {expected}",
        start,
    )
    return Pool(kind, values[0:2], values[2:4], values[4:6])  # type: ignore[arg-type]


def _read_fc(r: _Reader, e: _Expect, name: str) -> FullyConnected:
    start = r.pos
    version = r.version(name, ("fc_2", "fc_3"))
    outputs = r.uint(f"{name} num_outputs")
    inputs = r.uint(f"{name} num_inputs")
    params = r.tensor(f"{name} params").reshape(-1)
    weights = r.alias(f"{name} weights")
    r.alias(f"{name} biases")
    bias_mode = r.int(f"{name} bias_mode")
    for field in ("learning_rate", "weight_decay", "bias_learning_rate", "bias_weight_decay"):
        r.float(f"{name} {field}_multiplier")
    if version == "fc_3":
        r.bool(f"{name} use_bias")  # only meaningful with a bias (bias_mode 0)
    _check(
        r,
        outputs == e.filters and bias_mode == 1,
        f"{name}: expected fc_no_bias with "
        f"{e.filters} outputs, found {outputs} outputs, bias mode {bias_mode}",
        start,
    )
    _check(
        r,
        weights == (inputs, outputs, 1, 1) and params.size == inputs * outputs,
        f"{name}: inconsistent parameter sizes (params {params.size}, weights {weights})",
        start,
    )
    return FullyConnected(params.reshape(inputs, outputs), None)


def _read_details(r: _Reader, e: _Expect, index: int) -> Layer:
    name = f"layer {index} ({e.kind})"
    if e.kind == "con":
        return _read_con(r, e, name)
    if e.kind == "affine":
        return _read_affine(r, name)
    if e.kind == "relu":
        return _read_relu(r, name)
    if e.kind in ("max_pool", "avg_pool"):
        return _read_pool(r, e, name)
    if e.kind == "add_prev":
        r.version(name, ("add_prev_",))
        return AddPrev(e.id)
    return _read_fc(r, e, name)


def _read_state(r: _Reader, name: str, tensors: int) -> None:
    """The training state an add_layer stores after its details: three bools
    (this_layer_setup_called, gradient_input_is_stale, get_output_and_gradient_input_disabled)
    then `tensors` tensors (x_grad, cached_output, params_grad / grad_final), all ignored."""
    for _ in range(3):
        r.bool(f"{name} state")
    for _ in range(tensors):
        r.tensor(f"{name} state tensor")


def read_dlib_resnet(path: str | os.PathLike[str]) -> DlibResnet:
    """Parse dlib's `dlib_face_recognition_resnet_model_v1.dat` (or a file of the same network
    type) into float32 numpy weights. Raises ModelError naming the file, what was wrong and
    where when it is unreadable, truncated, or not this network."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ModelError(f"{path}: cannot read: {error.strerror or error}") from error
    r = _Reader(data, str(path))
    if (version := r.int("add_loss_layer version")) != 1:
        raise r.error(f"unknown add_loss_layer version {version}", 0)
    loss = r.version("loss layer", ("loss_metric_", "loss_metric_2"))
    margin, threshold = 0.1, 0.75
    if loss == "loss_metric_2":
        margin, threshold = r.float32("loss margin"), r.float32("loss distance threshold")

    # Wrapper versions, outermost (fc) first, down to the innermost add_layer over the input.
    versions: dict[int, int] = {}
    for index in range(len(_ANET) - 1, 0, -1):
        start = r.pos
        e = _ANET[index]
        version = versions[index] = r.int(f"layer {index} wrapper version")
        allowed = (1,) if e.kind in ("tag", "skip") else (1, 2)
        _check(
            r,
            version in allowed,
            f"layer {index} ({e.kind}): unexpected wrapper version {version}",
            start,
        )
    start = r.pos
    input_version = r.int("input add_layer version")
    _check(r, input_version in (2, 3), f"unexpected input add_layer version {input_version}", start)

    r.version("input layer", ("input_rgb_image_sized",))
    means = (r.float32("red mean"), r.float32("green mean"), r.float32("blue mean"))
    start = r.pos
    size = (r.uint("input rows"), r.uint("input cols"))
    _check(r, size == (CHIP_SIZE, CHIP_SIZE), f"input size {size}, expected 150 x 150", start)
    layers: list[Layer] = [_read_details(r, _ANET[0], 0)]
    _read_state(r, "layer 0", 3)
    if input_version >= 3:
        r.uint("sample_expansion_factor")

    for index in range(1, len(_ANET)):
        e = _ANET[index]
        if e.kind == "tag":
            layers.append(Tag(e.id))
        elif e.kind == "skip":
            layers.append(Skip(e.id))
        else:
            layers.append(_read_details(r, e, index))
            _read_state(r, f"layer {index}", 3 if versions[index] == 2 else 2)
    if r.pos != len(data):
        raise r.error(f"{len(data) - r.pos} unexpected bytes after the network")
    network = DlibResnet(means, size, tuple(layers), margin, threshold)
    try:
        _shapes(network)
    except KaoError as error:
        raise ModelError(f"{path}: {error}") from error
    return network


# ----------------------------------------------------------------------------------------------
# Shapes and the ONNX graph.

Shape = tuple[int, int, int]
"""(channels, rows, cols) of one sample."""


def _walk(
    network: DlibResnet,
    emit: Callable[[int, Layer, list[tuple[str, Shape]]], tuple[str, Shape]],
    start: str = "",
) -> tuple[str, Shape]:
    """Run dlib's layer-stack semantics over `network` from the input tensor named `start`:
    `emit(index, layer, inputs)` gets the current tensor (and, for add_prev, the nearest tag's)
    as (name, shape) and returns its output. Tags remember the current tensor; skips switch to
    the nearest tag's."""
    current: tuple[str, Shape] = (start, (3, *network.size))
    tags: dict[int, tuple[str, Shape]] = {}
    for index, layer in enumerate(network.layers):
        if isinstance(layer, Tag):
            tags[layer.id] = current
        elif isinstance(layer, (Skip, AddPrev)):
            if layer.id not in tags:
                raise KaoError(f"layer {index}: no tag{layer.id} below it")
            if isinstance(layer, Skip):
                current = tags[layer.id]
            else:
                current = emit(index, layer, [current, tags[layer.id]])
        else:
            current = emit(index, layer, [current])
    return current


def _output_size(size: int, window: int, stride: int, padding: int, index: int) -> int:
    if size + 2 * padding < window:
        raise KaoError(f"layer {index}: window {window} larger than its padded input {size}")
    return 1 + (size + 2 * padding - window) // stride


def _shape_of(index: int, layer: Layer, shapes: list[Shape]) -> Shape:
    channels, rows, cols = shapes[0]
    if isinstance(layer, Conv):
        out, inputs, wr, wc = layer.filters.shape
        if inputs != channels:
            raise KaoError(f"layer {index}: filters for {inputs} channels, input has {channels}")
        return (
            out,
            _output_size(rows, wr, layer.stride[0], layer.padding[0], index),
            _output_size(cols, wc, layer.stride[1], layer.padding[1], index),
        )
    if isinstance(layer, Affine) and layer.gamma.size != channels:
        raise KaoError(f"layer {index}: {layer.gamma.size} scales for {channels} channels")
    if isinstance(layer, Pool):
        if layer.size == (0, 0):
            return (channels, 1, 1)
        return (
            channels,
            _output_size(rows, layer.size[0], layer.stride[0], layer.padding[0], index),
            _output_size(cols, layer.size[1], layer.stride[1], layer.padding[1], index),
        )
    if isinstance(layer, AddPrev):
        return tuple(max(a, b) for a, b in zip(shapes[0], shapes[1], strict=True))  # type: ignore[return-value]
    if isinstance(layer, FullyConnected):
        if layer.weights.shape[0] != channels * rows * cols:
            raise KaoError(f"layer {index}: {layer.weights.shape[0]} inputs, got {shapes[0]}")
        return (layer.weights.shape[1], 1, 1)
    return shapes[0]


def _shapes(network: DlibResnet) -> Shape:
    """The output shape of `network`; raises KaoError when its layers do not fit together."""
    return _walk(
        network, lambda i, layer, inputs: ("", _shape_of(i, layer, [s for _, s in inputs]))
    )[1]


def build_onnx(network: DlibResnet) -> bytes:
    """An ONNX model (opset 17) computing dlib's descriptors: input `chips` (N, 150, 150, 3)
    uint8 RGB, output `descriptor` (N, 128) float32, not normalised (dlib's Euclidean distance
    threshold for "same person" is 0.6). The same network always gives the same bytes."""
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError as error:
        raise ModelError(
            f"converting dlib's face descriptor to ONNX needs the onnx package (pip install "
            f"onnx): {error}"
        ) from error

    nodes: list[onnx.NodeProto] = []
    weights: list[onnx.TensorProto] = []

    def constant(name: str, value: np.ndarray) -> str:
        weights.append(numpy_helper.from_array(value, name))
        return name

    def node(op: str, inputs: Sequence[str], output: str, **attributes: object) -> str:
        nodes.append(helper.make_node(op, list(inputs), [output], name=output, **attributes))
        return output

    # input_rgb_image_sized: planar R, G, B of (pixel - mean) / 256.
    rows, cols = network.size
    pixels = node("Cast", [INPUT_NAME], "pixels", to=TensorProto.FLOAT)
    means = constant("input_means", np.asarray(network.means, np.float32))
    centred = node("Sub", [pixels, means], "centred")
    scaled = node("Div", [centred, constant("input_scale", np.float32(256.0))], "scaled")
    first = node("Transpose", [scaled], "input_nchw", perm=[0, 3, 1, 2])

    def emit(index: int, layer: Layer, inputs: list[tuple[str, Shape]]) -> tuple[str, Shape]:
        shape = _shape_of(index, layer, [s for _, s in inputs])
        x = inputs[0][0]
        name = f"l{index:03d}_{type(layer).__name__.lower()}"
        if isinstance(layer, Conv):
            args = [x, constant(f"{name}_w", layer.filters)]
            if layer.bias is not None:
                args.append(constant(f"{name}_b", layer.bias))
            out = node(
                "Conv",
                args,
                name,
                kernel_shape=list(layer.filters.shape[2:]),
                strides=list(layer.stride),
                pads=[*layer.padding, *layer.padding],
            )
            if layer.relu:
                out = node("Relu", [out], f"{name}_relu")
        elif isinstance(layer, Affine):
            gamma = constant(f"{name}_gamma", layer.gamma.reshape(1, -1, 1, 1))
            beta = constant(f"{name}_beta", layer.beta.reshape(1, -1, 1, 1))
            out = node("Add", [node("Mul", [x, gamma], f"{name}_scaled"), beta], name)
        elif isinstance(layer, Relu):
            out = node("Relu", [x], name)
        elif isinstance(layer, Identity):
            out = x
        elif isinstance(layer, Pool):
            if layer.size == (0, 0):
                op = "GlobalMaxPool" if layer.kind == "max" else "GlobalAveragePool"
                out = node(op, [x], name)
            else:
                extra = {"count_include_pad": 0} if layer.kind == "avg" else {}
                out = node(
                    "MaxPool" if layer.kind == "max" else "AveragePool",
                    [x],
                    name,
                    kernel_shape=list(layer.size),
                    strides=list(layer.stride),
                    pads=[*layer.padding, *layer.padding],
                    **extra,
                )
        elif isinstance(layer, AddPrev):
            padded = []
            for side, (tensor, have) in enumerate(inputs):
                grow = [want - got for want, got in zip(shape, have, strict=True)]
                if any(grow):
                    pads = constant(f"{name}_pads{side}", np.array([0] * 5 + grow, np.int64))
                    tensor = node("Pad", [tensor, pads], f"{name}_padded{side}")
                padded.append(tensor)
            out = node("Add", padded, name)
        else:
            assert isinstance(layer, FullyConnected)
            flat = node("Flatten", [x], f"{name}_flat", axis=1)
            out = node("MatMul", [flat, constant(f"{name}_w", layer.weights)], name)
            if layer.bias is not None:
                out = node("Add", [out, constant(f"{name}_b", layer.bias)], f"{name}_biased")
        return out, shape

    last, shape = _walk(network, emit, first)
    if not isinstance(network.layers[-1], FullyConnected):
        last = node("Flatten", [last], "flat", axis=1)
        shape = (math.prod(shape), 1, 1)
    nodes.append(helper.make_node("Identity", [last], [OUTPUT_NAME], name=OUTPUT_NAME))
    graph = helper.make_graph(
        nodes,
        "dlib_resnet_v1",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.UINT8, ["N", rows, cols, 3])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", shape[0]])],
        weights,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        ir_version=IR_VERSION,
        producer_name="kao",
        producer_version=str(CONVERTER_VERSION),
        doc_string="dlib_face_recognition_resnet_model_v1 (public domain, Davis E. King), "
        "converted from dlib's .dat by kao.recognition.dlib_onnx",
    )
    onnx.checker.check_model(model)
    return model.SerializeToString()


# ----------------------------------------------------------------------------------------------
# The cached conversion.


def onnx_path(source: str | os.PathLike[str] | None = None) -> Path:
    """The ONNX conversion of dlib's descriptor network, made once and cached as
    `<cache_dir()>/dlib_face_recognition/dlib_resnet_v1.onnx`, with a `.json` record beside it
    (the source's sha256, the converter version, the ONNX file's own sha256). It is converted
    again when either file is missing or does not match. `source` defaults to the verified
    `dlib_face_recognition_resnet_model_v1.dat` from the model store."""
    if source is None:
        source = model_path(SPEC_NAME, SOURCE_FILE)
    return converted(
        SPEC_NAME,
        ONNX_FILE,
        Path(source),
        CONVERTER_VERSION,
        lambda s: build_onnx(read_dlib_resnet(s)),
    )


class DlibOnnxNetwork:
    """dlib's face descriptor network run by ONNX Runtime (safe to call from several threads).

    Gives dlib's `compute_face_descriptor` values (not normalised) for aligned chips made as
    `dlib.get_face_chip(image, shape, size=150, padding=0.25)` does."""

    def __init__(self, threads: int | None = None) -> None:
        self._session = onnx_session(onnx_path(), threads)

    def descriptors(self, chips: np.ndarray) -> np.ndarray:
        """(N, 150, 150, 3) uint8 RGB aligned chips -> (N, 128) float32 descriptors."""
        chips = np.asarray(chips)
        if chips.dtype != np.uint8 or chips.ndim != 4 or chips.shape[1:] != (150, 150, 3):
            raise KaoError(
                f"expected (N, 150, 150, 3) uint8 RGB chips, got {chips.shape} {chips.dtype}"
            )
        if len(chips) == 0:
            return np.zeros((0, DIMENSION), np.float32)
        parts = [
            self._session.run(
                [OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(chips[i : i + BATCH])}
            )[0]
            for i in range(0, len(chips), BATCH)
        ]
        return np.concatenate(parts).astype(np.float32, copy=False)
