"""Converts the EdgeFace checkpoints (dynamically quantized PyTorch state dicts) to float ONNX.

    python -m venv .venv-convert
    .venv-convert/bin/pip install torch==2.13.0 onnx onnxruntime numpy pillow pyyaml \
        huggingface_hub safetensors opencv-python-headless
    .venv-convert/bin/pip install --no-deps timm==1.0.31
    .venv-convert/bin/python scripts/convert_edgeface.py

For each of `edgeface_xxs_q.pt` and `edgeface_xs_q.pt` (found by kao's model store, e.g. in
../shared/models/edgeface), this builds timm's EdgeNeXt with a 512-d head (the network of
otroshi/edgeface, `backbones/timmfr.py`), loads the checkpoint with every int8 Linear layer
dequantized to float32, and writes `kao/recognition/weights/edgeface_<size>.onnx` (input
"input": (N, 3, 112, 112) float32, output "embedding": (N, 512), not normalised) and
`edgeface_<size>_reference.npz`: `REFERENCE_INPUTS` seeded synthetic images ("images",
(N, 112, 112, 3) uint8) and the float PyTorch network's outputs for them ("embeddings",
(N, 512) float32; `tests/test_edgeface.py` checks the ONNX network against them). It prints
the largest difference between ONNX Runtime and PyTorch, and the cosine similarity between the
float network and the original quantized one. A separate environment keeps torch out of kao's
own (kao itself runs the ONNX files only); the script imports kao from this checkout.

timm imports torchvision, whose only PyPI builds for torch 2.13 need CUDA libraries; EdgeNeXt
itself uses none of it, so when torchvision cannot be imported an empty stand-in module is put
in its place (`_stand_in_torchvision`)."""

from __future__ import annotations

import argparse
import importlib.abc
import importlib.machinery
import sys
import types
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kao.models import model_path  # noqa: E402
from kao.recognition.edgeface import normalise  # noqa: E402

if TYPE_CHECKING:
    import torch

WEIGHTS = ROOT / "kao" / "recognition" / "weights"
NETWORKS = {"xxs": "edgenext_xx_small", "xs": "edgenext_x_small"}
"""Size -> timm architecture."""
REFERENCE_SEED = 17
REFERENCE_INPUTS = 3
OPSET = 17


def reference_images(seed: int = REFERENCE_SEED, count: int = REFERENCE_INPUTS) -> np.ndarray:
    """Seeded test images, (count, 112, 112, 3) uint8: smooth colour gradients plus noise."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0.0, 1.0, 112, dtype=np.float64)
    images = []
    for _ in range(count):
        colours = rng.uniform(0, 255, (3, 3))
        base = (
            colours[0] * ramp[:, None, None]
            + colours[1] * ramp[None, :, None]
            + colours[2] * (1 - ramp[:, None, None])
        ) / 2
        images.append(np.clip(base + rng.normal(0, 20, (112, 112, 3)), 0, 255))
    return np.round(np.stack(images)).astype(np.uint8)


class _Placeholder(type):
    """A class whose every attribute is another placeholder class."""

    def __getattr__(cls, attr: str) -> type:
        return _placeholder(attr)


def _placeholder(attr: str) -> type:
    if attr.startswith("__"):
        raise AttributeError(attr)
    return _Placeholder(attr, (), {})


class _StandIn(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds every `torchvision` module as an empty package of placeholders."""

    def find_spec(
        self, name: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if name == "torchvision" or name.startswith("torchvision."):
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = types.ModuleType(spec.name)
        module.__path__ = []
        module.__getattr__ = _placeholder  # type: ignore[method-assign]
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        return None


def _stand_in_torchvision() -> None:
    """Lets timm import when torchvision cannot be (see the module docstring)."""
    try:
        import torchvision  # noqa: F401
    except (ImportError, RuntimeError, OSError):
        for name in [m for m in sys.modules if m.split(".")[0] == "torchvision"]:
            del sys.modules[name]
        sys.meta_path.insert(0, _StandIn())


def float_state(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """The state dict of the float network: each dynamically quantized Linear's packed
    (int8 weight, float bias) becomes `weight`, `bias` (its output scale and zero point, unused
    by dynamic quantization, are dropped), and so do the "model." prefixes."""
    packed = "._packed_params._packed_params"
    quantized = {key.removesuffix(packed) for key in checkpoint if key.endswith(packed)}
    state = {}
    for key, value in checkpoint.items():
        stem, _, leaf = key.rpartition(".")
        if key.endswith(packed):
            weight, bias = value
            layer = key.removesuffix(packed).removeprefix("model.")
            state[f"{layer}.weight"] = weight.dequantize()
            state[f"{layer}.bias"] = bias.detach().clone()
        elif key.endswith("._packed_params.dtype") or (
            stem in quantized and leaf in ("scale", "zero_point")
        ):
            continue
        else:
            state[key.removeprefix("model.")] = value
    return state


def build(size: str, quantized: bool) -> torch.nn.Module:
    """EdgeFace `size` ("xxs" or "xs") as timm's EdgeNeXt with a 512-d head, in eval mode:
    float (dequantized weights) or, with `quantized`, as published (int8 Linear layers)."""
    import timm
    import torch

    network = timm.create_model(NETWORKS[size])
    network.reset_classifier(512)
    checkpoint = torch.load(
        model_path("edgeface", f"edgeface_{size}_q.pt"), map_location="cpu", weights_only=False
    )
    if quantized:
        network = torch.ao.quantization.quantize_dynamic(
            network, qconfig_spec={torch.nn.Linear}, dtype=torch.qint8
        )
        # Loaded as saved (keys "model.*", with their format versions) into the same nesting.
        wrapper = torch.nn.Module()
        wrapper.model = network
        wrapper.load_state_dict(checkpoint, strict=True)
    else:
        network.load_state_dict(float_state(checkpoint), strict=True)
    return network.eval()


def convert(size: str) -> None:
    """Write the ONNX file and reference outputs of EdgeFace `size` and print the checks."""
    import onnxruntime as ort
    import torch

    network = build(size, quantized=False)
    images = reference_images()
    inputs = normalise(images)
    with torch.no_grad():
        expected = network(torch.from_numpy(inputs)).numpy()
        published = build(size, quantized=True)(torch.from_numpy(inputs)).numpy()
    target = WEIGHTS / f"edgeface_{size}.onnx"
    WEIGHTS.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        network,
        (torch.from_numpy(inputs),),
        str(target),
        input_names=["input"],
        output_names=["embedding"],
        dynamic_axes={"input": {0: "batch"}, "embedding": {0: "batch"}},
        opset_version=OPSET,
        dynamo=False,
    )
    session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    (actual,) = session.run(None, {"input": inputs})
    np.savez_compressed(
        WEIGHTS / f"edgeface_{size}_reference.npz",
        images=images,
        embeddings=expected.astype(np.float32),
    )

    def unit(m: np.ndarray) -> np.ndarray:
        return m / np.linalg.norm(m, axis=1, keepdims=True)

    print(
        f"{target.name}: {target.stat().st_size / 1e6:.2f} MB; ONNX Runtime vs PyTorch max abs "
        f"diff {np.abs(actual - expected).max():.2e} (outputs up to {np.abs(expected).max():.2f}); "
        f"cosine float vs int8 network min "
        f"{np.min(np.sum(unit(expected) * unit(published), axis=1)):.5f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=(*NETWORKS, "all"), default="all")
    size = parser.parse_args().size
    _stand_in_torchvision()
    for each in NETWORKS if size == "all" else (size,):
        convert(each)


if __name__ == "__main__":
    main()
