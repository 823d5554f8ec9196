"""The baseline emotion model: mini-Xception (Arriaga et al. 2017, oarriaga/face_classification,
`fer2013_mini_XCEPTION.102-0.66.hdf5`, 66% on FER2013 as published), run without TensorFlow.

The Keras 2 HDF5 file holds the model's layer graph as JSON (`model_config`) and each layer's
weights under `model_weights/<layer>/`. `build_onnx` reads both with h5py and writes the same
network as an ONNX graph, layer by layer, following the inbound links of the functional model:
Conv2D and SeparableConv2D (a depthwise convolution, one group per channel, then a 1 x 1
convolution) with Keras's padding ("same" is TensorFlow's: the odd pixel at the end,
`SAME_UPPER`), BatchNormalization, ReLU and softmax activations, 3 x 3 stride-2 max pooling,
Add, global average pooling. Keras is channels-last; the graph is channels-first, so kernels
(rows, cols, in, out) become (out, in, rows, cols). The conversion is made at first use and
cached beside the model store's other conversions (see `kao.recognition.dlib_onnx`).

Input: (N, 1, 64, 64) grey scaled to [-1, 1]; output: (N, 7) probabilities in the model's own
class order `CLASSES` (not kao's)."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from kao.attributes.emotion import resize_grey
from kao.errors import ModelError
from kao.face import EMOTIONS
from kao.models import model_path
from kao.models.converted import converted
from kao.models.runtime import onnx_session

SPEC_NAME = "mini_xception"
SOURCE_FILE = "fer2013_mini_XCEPTION.102-0.66.hdf5"
ONNX_FILE = "fer2013_mini_xception.onnx"
CONVERTER_VERSION = 1
"""Bumped whenever `build_onnx` changes its output, so that cached conversions are redone."""
CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprised", "neutral")
"""The model's output order (its training labels; "surprise" named as kao names it)."""
TO_KAO = np.array([CLASSES.index(name) for name in EMOTIONS])
"""Column of the model's output for each of `kao.face.EMOTIONS`."""
SIZE = 64
INPUT_NAME = "grey"
OUTPUT_NAME = "probabilities"


def _weights(group: h5py.Group, layer: str) -> dict[str, np.ndarray]:
    """The weights of `layer`, by their Keras names (kernel, bias, gamma, moving_mean, ...)."""
    if layer not in group:
        raise ModelError(f"mini-Xception HDF5: no weights for layer {layer!r}")
    entry = group[layer]
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in entry.attrs["weight_names"]]
    return {name.rsplit("/", 1)[-1].split(":")[0]: np.asarray(entry[name]) for name in names}


def _pads(config: dict[str, Any]) -> dict[str, Any]:
    padding = config.get("padding", "valid")
    if padding == "same":
        return {"auto_pad": "SAME_UPPER"}
    if padding == "valid":
        return {"pads": [0, 0, 0, 0]}
    raise ModelError(f"mini-Xception HDF5: padding {padding!r} is not supported")


def build_onnx(path: str | os.PathLike[str]) -> bytes:
    """The ONNX model (serialised) of the Keras HDF5 model at `path`."""
    with h5py.File(path, "r") as file:
        config = json.loads(file.attrs["model_config"])
        group = file["model_weights"]
        nodes: list[onnx.NodeProto] = []
        weights: list[onnx.TensorProto] = []

        def constant(name: str, value: np.ndarray) -> str:
            weights.append(numpy_helper.from_array(value.astype(np.float32), name))
            return name

        def node(op: str, inputs: list[str], output: str, **attributes: Any) -> str:
            nodes.append(helper.make_node(op, inputs, [output], name=output, **attributes))
            return output

        layers = config["config"]["layers"]
        output = config["config"]["output_layers"][0][0]
        for layer in layers:
            kind, name, cfg = layer["class_name"], layer["name"], layer["config"]
            inputs = (
                [inbound[0] for inbound in layer["inbound_nodes"][0]]
                if layer["inbound_nodes"]
                else []
            )
            if kind == "InputLayer":
                node("Identity", [INPUT_NAME], name)
            elif kind in ("Conv2D", "SeparableConv2D"):
                w = _weights(group, name)
                stride = list(cfg["strides"])
                source = inputs[0]
                if kind == "SeparableConv2D":
                    depthwise = w["depthwise_kernel"].transpose(2, 3, 0, 1)  # (C, 1, kh, kw)
                    source = node(
                        "Conv",
                        [source, constant(f"{name}/depthwise", depthwise)],
                        f"{name}/depthwise_out",
                        group=depthwise.shape[0],
                        kernel_shape=list(depthwise.shape[2:]),
                        strides=stride,
                        **_pads(cfg),
                    )
                    kernel, stride, pads = w["pointwise_kernel"], [1, 1], {"pads": [0, 0, 0, 0]}
                else:
                    kernel, pads = w["kernel"], _pads(cfg)
                kernel = kernel.transpose(3, 2, 0, 1)
                conv_inputs = [source, constant(f"{name}/kernel", kernel)]
                if cfg.get("use_bias"):
                    conv_inputs.append(constant(f"{name}/bias", w["bias"]))
                node(
                    "Conv",
                    conv_inputs,
                    name,
                    kernel_shape=list(kernel.shape[2:]),
                    strides=stride,
                    **pads,
                )
                if cfg.get("activation", "linear") != "linear":
                    raise ModelError(f"mini-Xception HDF5: {name} has a fused activation")
            elif kind == "BatchNormalization":
                w = _weights(group, name)
                node(
                    "BatchNormalization",
                    [
                        inputs[0],
                        constant(f"{name}/gamma", w["gamma"]),
                        constant(f"{name}/beta", w["beta"]),
                        constant(f"{name}/mean", w["moving_mean"]),
                        constant(f"{name}/variance", w["moving_variance"]),
                    ],
                    name,
                    epsilon=float(cfg["epsilon"]),
                )
            elif kind == "Activation" and cfg["activation"] in ("relu", "softmax"):
                op = "Relu" if cfg["activation"] == "relu" else "Softmax"
                node(op, inputs, name, **({"axis": 1} if op == "Softmax" else {}))
            elif kind == "MaxPooling2D":
                node(
                    "MaxPool",
                    inputs,
                    name,
                    kernel_shape=list(cfg["pool_size"]),
                    strides=list(cfg["strides"]),
                    **_pads(cfg),
                )
            elif kind == "Add":
                node("Add", inputs, name)
            elif kind == "GlobalAveragePooling2D":
                pooled = node("GlobalAveragePool", inputs, f"{name}/pooled")
                node("Flatten", [pooled], name, axis=1)
            else:
                raise ModelError(f"mini-Xception HDF5: layer {kind} ({name}) is not supported")
    node("Identity", [output], OUTPUT_NAME)
    graph = helper.make_graph(
        nodes,
        "mini_xception",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", 1, SIZE, SIZE])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", len(CLASSES)])],
        weights,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def onnx_path(source: str | os.PathLike[str] | None = None) -> Path:
    """The ONNX conversion of the mini-Xception emotion model, made once and cached as
    `<cache_dir()>/mini_xception/fer2013_mini_xception.onnx` with a `.json` record beside it
    (source sha256, converter version, ONNX sha256); `source` defaults to the verified HDF5
    file from the model store."""
    source = Path(source) if source is not None else model_path(SPEC_NAME, SOURCE_FILE)
    return converted(SPEC_NAME, ONNX_FILE, source, CONVERTER_VERSION, build_onnx)


class MiniXception:
    """mini-Xception emotion probabilities for grey face crops (safe to share between threads)."""

    def __init__(self, threads: int | None = None) -> None:
        self._session = onnx_session(onnx_path(), threads)

    def probabilities(self, grey: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """(N, H, W) uint8 grey crops (any square size: resized to 64 x 64) -> (N, 7) float32
        probabilities in `kao.face.EMOTIONS` order."""
        x = resize_grey(grey, SIZE).astype(np.float32) / 127.5 - 1.0
        if len(x) == 0:
            return np.zeros((0, len(EMOTIONS)), np.float32)
        out = self._session.run([OUTPUT_NAME], {INPUT_NAME: x[:, None]})[0]
        return out[:, TO_KAO].astype(np.float32)
