"""MCNN crowd density (Zhang et al., CVPR 2016) converted from its HDF5 PyTorch state dict to ONNX
at first use and run with ONNX Runtime.

The files (`mcnn_shtechA_660.h5`, `mcnn_shtechB_110.h5`) hold one dataset per tensor of the
state dict, named `DME.branch{1,2,3}.{0,2,4,5}.conv.{weight,bias}` and `DME.fuse.0.conv.*`. The
indices place the layers in each column's `nn.Sequential`: 1 and 3 are 2 x 2 max pools (no
weights), every conv is followed by ReLU, convs are 'same' padded ((k - 1) / 2) with stride 1:

- column 1: conv 9x9 1->16, pool, conv 7x7 16->32, pool, conv 7x7 32->16, conv 7x7 16->8;
- column 2: conv 7x7 1->20, pool, conv 5x5 20->40, pool, conv 5x5 40->20, conv 5x5 20->10;
- column 3: conv 5x5 1->24, pool, conv 3x3 24->48, pool, conv 3x3 48->24, conv 3x3 24->12;
- the 8 + 10 + 12 = 30 channels concatenated, then conv 1x1 30->1 and ReLU: the density map.

Every kernel size and channel count is read from the file and checked against this layout. The
input is one grey plane in 0-255 (not normalised), as the network was trained (OpenCV's
`imread(path, 0)`: Y = 0.299 R + 0.587 G + 0.114 B); the output is people per output pixel,
one output pixel per 4 x 4 input pixels (floor(H / 4) x floor(W / 4)); its sum is the count.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from kao.errors import KaoError, ModelError
from kao.models import model_path
from kao.models.converted import converted
from kao.models.runtime import onnx_session

SPEC_NAME = "mcnn_crowd"
SOURCE_FILES: dict[str, str] = {"A": "mcnn_shtechA_660.h5", "B": "mcnn_shtechB_110.h5"}
"""The two trainings: ShanghaiTech part A (dense crowds), part B (sparse street scenes)."""
Part = Literal["A", "B"]
CONVERTER_VERSION = 1
"""Bumped whenever `build_onnx` changes its output, so that cached conversions are redone."""
OPSET = 17
IR_VERSION = 8
INPUT_NAME = "grey"
OUTPUT_NAME = "density"
STRIDE = 4
"""Input pixels per output pixel along each side (two 2 x 2 max pools)."""
COLUMNS: tuple[tuple[int, ...], ...] = ((16, 32, 16, 8), (20, 40, 20, 10), (24, 48, 24, 12))
"""Output channels of the four convs of each column."""
KERNELS: tuple[tuple[int, ...], ...] = ((9, 7, 7, 7), (7, 5, 5, 5), (5, 3, 3, 3))
"""Kernel sizes of the four convs of each column."""
LAYER_INDICES = (0, 2, 4, 5)
"""Positions of the four convs in each column's nn.Sequential (1 and 3 are the pools)."""
POOL_AFTER = (True, True, False, False)
"""Whether a 2 x 2 max pool follows each conv of a column."""


@dataclass(frozen=True)
class Conv:
    """A conv layer: `weight` (out, in, k, k) float32, `bias` (out,) float32; stride 1, padding
    (k - 1) / 2, followed by ReLU."""

    weight: np.ndarray
    bias: np.ndarray


@dataclass(frozen=True)
class Mcnn:
    """The MCNN weights: `columns[c][i]` is conv i of column c; `fuse` the final 1x1 conv."""

    columns: tuple[tuple[Conv, ...], ...]
    fuse: Conv


def read_mcnn(path: str | os.PathLike[str]) -> Mcnn:
    """Read an MCNN HDF5 state dict; ModelError naming the file and the tensor when it is
    unreadable or is not this architecture."""
    import h5py

    path = Path(path)

    def conv(h5: h5py.File, name: str, shape: tuple[int, int, int, int]) -> Conv:
        try:
            weight = np.asarray(h5[f"{name}.conv.weight"], np.float32)
            bias = np.asarray(h5[f"{name}.conv.bias"], np.float32)
        except KeyError as error:
            raise ModelError(f"{path}: not an MCNN state dict: no tensor {name}.conv") from error
        if weight.shape != shape or bias.shape != shape[:1]:
            raise ModelError(
                f"{path}: {name}.conv has weight {weight.shape} and bias {bias.shape}, "
                f"expected {shape} and {shape[:1]}"
            )
        return Conv(weight, bias)

    try:
        with h5py.File(path, "r") as h5:
            columns = []
            for number, (channels, kernels) in enumerate(zip(COLUMNS, KERNELS, strict=True), 1):
                inputs, layers = 1, []
                for index, out, k in zip(LAYER_INDICES, channels, kernels, strict=True):
                    layers.append(conv(h5, f"DME.branch{number}.{index}", (out, inputs, k, k)))
                    inputs = out
                columns.append(tuple(layers))
            fuse = conv(h5, "DME.fuse.0", (1, sum(c[-1] for c in COLUMNS), 1, 1))
    except OSError as error:
        raise ModelError(f"{path}: cannot read as HDF5: {error}") from error
    return Mcnn(tuple(columns), fuse)


def build_onnx(network: Mcnn) -> bytes:
    """An ONNX model (opset 17): input `grey` (N, 1, H, W) float32 in 0-255, output `density`
    (N, 1, floor(H / 4), floor(W / 4)) float32, people per output pixel. Same network, same
    bytes."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes: list[onnx.NodeProto] = []
    weights: list[onnx.TensorProto] = []

    def node(op: str, inputs: Sequence[str], output: str, **attributes: object) -> str:
        nodes.append(helper.make_node(op, list(inputs), [output], name=output, **attributes))
        return output

    def conv_relu(x: str, layer: Conv, name: str) -> str:
        weights.append(numpy_helper.from_array(layer.weight, f"{name}_w"))
        weights.append(numpy_helper.from_array(layer.bias, f"{name}_b"))
        pad = (layer.weight.shape[2] - 1) // 2
        out = node(
            "Conv",
            [x, f"{name}_w", f"{name}_b"],
            name,
            kernel_shape=list(layer.weight.shape[2:]),
            pads=[pad] * 4,
        )
        return node("Relu", [out], f"{name}_relu")

    outputs = []
    for c, column in enumerate(network.columns, 1):
        x = INPUT_NAME
        for i, (layer, pool) in enumerate(zip(column, POOL_AFTER, strict=True)):
            x = conv_relu(x, layer, f"c{c}_conv{i}")
            if pool:
                x = node("MaxPool", [x], f"c{c}_pool{i}", kernel_shape=[2, 2], strides=[2, 2])
        outputs.append(x)
    joined = node("Concat", outputs, "columns", axis=1)
    density = conv_relu(joined, network.fuse, "fuse")
    nodes.append(helper.make_node("Identity", [density], [OUTPUT_NAME], name=OUTPUT_NAME))
    graph = helper.make_graph(
        nodes,
        "mcnn",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", 1, "H", "W"])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", 1, "h", "w"])],
        weights,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        ir_version=IR_VERSION,
        producer_name="kao",
        producer_version=str(CONVERTER_VERSION),
        doc_string="MCNN crowd density (MIT), converted from its HDF5 state dict by kao.crowd.mcnn",
    )
    onnx.checker.check_model(model)
    return model.SerializeToString()


def onnx_path(part: Part, source: str | os.PathLike[str] | None = None) -> Path:
    """The ONNX conversion of MCNN `part` ("A" or "B"), made once and cached as
    `<cache_dir()>/mcnn_crowd/mcnn_shtech<part>.onnx` with a `.json` record beside it (source
    sha256, converter version, ONNX sha256); converted again when either is missing or does not
    match. `source` defaults to the verified HDF5 file from the model store."""
    if part not in SOURCE_FILES:
        raise KaoError(f"unknown MCNN part {part!r}; choose A or B")
    source = Path(source) if source is not None else model_path(SPEC_NAME, SOURCE_FILES[part])
    name = f"mcnn_shtech{part}.onnx"
    return converted(SPEC_NAME, name, source, CONVERTER_VERSION, lambda s: build_onnx(read_mcnn(s)))


def grey_plane(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (1, 1, H, W) float32 grey in 0-255, rounded to whole levels as an
    8-bit grey image would be (the network's training input)."""
    grey = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
    return grey.astype(np.float32)[None, None]


class McnnNetwork:
    """MCNN `part` ("A" or "B") on ONNX Runtime (safe to call from several threads)."""

    def __init__(self, part: Part, threads: int | None = None) -> None:
        self.part = part
        self._session = onnx_session(onnx_path(part), threads)

    def density(self, rgb: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB, H and W at least 4 -> (floor(H / 4), floor(W / 4)) float32
        density map, people per output pixel (each covers 4 x 4 input pixels)."""
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise KaoError(f"expected (H, W, 3) uint8 RGB, got {rgb.shape} {rgb.dtype}")
        if min(rgb.shape[:2]) < STRIDE:
            raise KaoError(f"an image of {rgb.shape[1]} x {rgb.shape[0]} px is too small to count")
        out = self._session.run([OUTPUT_NAME], {INPUT_NAME: grey_plane(rgb)})[0]
        return out[0, 0]
