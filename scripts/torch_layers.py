"""Torch building blocks shared by kao's training scripts (train_emotion.py, train_mask.py):
convolution + batch norm layers, a residual block, an ONNX graph writer that folds the batch
norms into the convolutions, and the machine / commit record of a training log. Needs the
`train` extra (PyTorch)."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import helper, numpy_helper
from torch import nn


class ConvBN(nn.Module):
    """Convolution (no bias) then batch norm, then ReLU if `relu`."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1, relu: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return F.relu(x) if self.relu else x


class Block(nn.Module):
    """Residual block: relu(conv-bn-relu-conv-bn(x) + shortcut(x))."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.a = ConvBN(cin, cout)
        self.b = ConvBN(cout, cout, relu=False)
        self.shortcut = ConvBN(cin, cout, kernel=1, relu=False) if cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.shortcut(x) if self.shortcut is not None else x
        return F.relu(self.b(self.a(x)) + skip)


class GraphWriter:
    """Collects ONNX nodes and initialisers while walking the trained network."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.weights: list[onnx.TensorProto] = []
        self.count = 0

    def name(self, what: str) -> str:
        self.count += 1
        return f"{what}_{self.count}"

    def constant(self, array: np.ndarray, what: str) -> str:
        name = self.name(what)
        self.weights.append(numpy_helper.from_array(array.astype(np.float32), name))
        return name

    def node(self, op: str, inputs: list[str], **attributes: object) -> str:
        output = self.name(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [output], **attributes))
        return output

    def gemm(self, linear: nn.Linear, x: str, output: str | None = None) -> str:
        """x @ W.T + b of `linear`, into `output` (default: a new name)."""
        weight = linear.weight.detach().numpy().T
        bias = linear.bias.detach().numpy()
        output = output or self.name("gemm")
        inputs = [x, self.constant(weight, "fc_w"), self.constant(bias, "fc_b")]
        self.nodes.append(helper.make_node("Gemm", inputs, [output]))
        return output

    def conv_bn(self, layer: ConvBN, x: str) -> str:
        """The convolution with its batch norm folded in: w * g / s, b = beta - mean * g / s."""
        bn, conv = layer.bn, layer.conv
        factor = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach().numpy()
        weight = conv.weight.detach().numpy() * factor[:, None, None, None]
        bias = bn.bias.detach().numpy() - bn.running_mean.numpy() * factor
        pad = conv.padding[0]
        y = self.node(
            "Conv",
            [x, self.constant(weight, "w"), self.constant(bias, "b")],
            kernel_shape=list(conv.kernel_size),
            strides=list(conv.stride),
            pads=[pad] * 4,
        )
        return self.node("Relu", [y]) if layer.relu else y

    def layer(self, layer: nn.Module, x: str) -> str:
        if isinstance(layer, ConvBN):
            return self.conv_bn(layer, x)
        if isinstance(layer, Block):
            skip = self.conv_bn(layer.shortcut, x) if layer.shortcut is not None else x
            y = self.conv_bn(layer.b, self.conv_bn(layer.a, x))
            return self.node("Relu", [self.node("Add", [y, skip])])
        if isinstance(layer, nn.MaxPool2d):
            return self.node("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])
        raise TypeError(f"no ONNX export for {type(layer).__name__}")


def save_model(graph: onnx.GraphProto, producer: str, metadata: dict[str, str], path: Path) -> None:
    """Write `graph` as a checked opset-17 ONNX model made by `producer`, with `metadata`."""
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    proto.producer_name = producer
    helper.set_model_props(proto, metadata)
    onnx.checker.check_model(proto)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(proto, str(path))


def machine() -> dict[str, object]:
    cpu = platform.processor()
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        cpu = next(line.split(":", 1)[1].strip() for line in lines if "model name" in line)
    except (OSError, StopIteration):
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


def git_commit() -> str:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        )
        return result.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
