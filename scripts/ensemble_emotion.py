"""Merge emotion networks trained by train_emotion.py into one ONNX graph that averages them.

    python scripts/ensemble_emotion.py MEMBER.onnx MEMBER.onnx ... --int8 512 \
        --out kao/attributes/weights/emotion.onnx --log docs/training/emotion_ensemble.json

The members must share the validation split (`--split-seed`) and so the pixel normalisation and
the reference images; they differ by `--seed` (initial weights, batches, augmentation). The
merged graph has the members' input and output ("grey" (N, 1, 48, 48) 0-255 -> "logits"
(N, 7)): its logits are the log of the members' mean softmax probabilities, so a softmax of
them gives that mean. Its metadata keeps the members' (classes, normalisation, reference
indices) with the reference logits of the ensemble, and each member's summary.

With `--int8 COUNT` the merged graph is quantized (ONNX Runtime's static quantization, QDQ
format): the members' weights become 8-bit integers in a 7-bit range (so that CPUs without
VNNI do not saturate), one scale per output channel, and their activations 8-bit, with ranges
calibrated on COUNT training images drawn with the split seed (never validation images); the
softmax average stays float. A quarter of the size and about a third of the time; the float
ensemble goes to `--float-out`.

The log holds each member's and the ensemble's flip-averaged accuracy on the shared validation
images of train.npz (never public_test.npz), float and quantized."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, compose, helper, numpy_helper
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from torch_layers import save_model

from kao.attributes.emotion import softmax
from kao.evaluation.fer2013 import validation_split

SHARED_KEYS = ("classes", "pixel_mean", "pixel_std", "reference_indices")
"""Metadata the members must agree on."""
QUANTIZED_OPS = ["Conv", "Gemm", "Relu", "Add", "MaxPool", "GlobalAveragePool"]
"""The members' operators that `--int8` runs in 8 bits (not the ensemble's Softmax, Sum, Log)."""
CALIBRATION_BATCH = 32
"""Images per calibration run."""


def metadata(model: onnx.ModelProto) -> dict[str, str]:
    return {p.key: p.value for p in model.metadata_props}


def log_mean_softmax(logits: list[np.ndarray]) -> np.ndarray:
    """The log of the mean softmax of K (N, C) logit arrays -> (N, C)."""
    return np.log(np.mean([softmax(x) for x in logits], axis=0))


def merge(members: list[onnx.ModelProto]) -> onnx.GraphProto:
    """One graph running every member on the shared input and averaging their softmaxes."""
    nodes, weights, probabilities = [], [], []
    for i, member in enumerate(members):
        prefixed = compose.add_prefix(member, f"m{i}_")
        nodes.append(helper.make_node("Identity", ["grey"], [f"m{i}_grey"]))
        nodes.extend(prefixed.graph.node)
        weights.extend(prefixed.graph.initializer)
        nodes.append(helper.make_node("Softmax", [f"m{i}_logits"], [f"m{i}_p"], axis=1))
        probabilities.append(f"m{i}_p")
    weights.append(numpy_helper.from_array(np.array([1 / len(members)], np.float32), "share"))
    nodes.append(helper.make_node("Sum", probabilities, ["p_sum"]))
    nodes.append(helper.make_node("Mul", ["p_sum", "share"], ["p_mean"]))
    nodes.append(helper.make_node("Log", ["p_mean"], ["logits"]))
    classes = len(json.loads(metadata(members[0])["classes"]))
    return helper.make_graph(
        nodes,
        "kao_emotion_ensemble",
        list(members[0].graph.input),
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", classes])],
        weights,
    )


class Calibration(CalibrationDataReader):
    """(N, 48, 48) uint8 grey images fed to the quantizer in batches of CALIBRATION_BATCH."""

    def __init__(self, grey: np.ndarray) -> None:
        batches = range(0, len(grey), CALIBRATION_BATCH)
        self._feeds = iter(
            [{"grey": grey[i : i + CALIBRATION_BATCH, None].astype(np.float32)} for i in batches]
        )

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._feeds, None)


def quantize(source: Path, out: Path, calibration: np.ndarray) -> None:
    """Write `source` to `out` with int8 per-channel weights (7-bit range) and uint8 activations
    for QUANTIZED_OPS, their ranges calibrated on `calibration` (N, 48, 48) uint8 grey."""
    quantize_static(
        source,
        out,
        Calibration(calibration),
        quant_format=QuantFormat.QDQ,
        op_types_to_quantize=QUANTIZED_OPS,
        per_channel=True,
        reduce_range=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
    )


def flip_accuracy(session: ort.InferenceSession, grey: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy of the mean softmax of each image and its mirror image."""
    batch = grey[:, None].astype(np.float32)
    logits = [
        session.run(["logits"], {"grey": np.ascontiguousarray(b)})[0]
        for b in (batch, batch[..., ::-1])
    ]
    return float((log_mean_softmax(logits).argmax(axis=1) == labels).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("members", type=Path, nargs="+")
    parser.add_argument("--data", type=Path, default=Path("../shared/data/fer2013/train.npz"))
    parser.add_argument("--out", type=Path, default=Path("kao/attributes/weights/emotion.onnx"))
    parser.add_argument("--log", type=Path, default=Path("docs/training/emotion_ensemble.json"))
    parser.add_argument("--split-seed", type=int, default=2013)
    parser.add_argument("--val-fraction", type=float, default=0.1)
    parser.add_argument(
        "--int8",
        type=int,
        default=0,
        metavar="COUNT",
        help="quantize to 8 bits, calibrated on COUNT training images",
    )
    parser.add_argument(
        "--float-out",
        type=Path,
        default=Path(".data/emotion_float.onnx"),
        help="where --int8 writes the float ensemble",
    )
    args = parser.parse_args()
    data = np.load(args.data)
    train_idx, val_idx = validation_split(
        data["labels"].astype(np.int64), args.val_fraction, args.split_seed
    )
    members = [onnx.load(str(path)) for path in args.members]
    metas = [metadata(m) for m in members]
    for path, meta in zip(args.members[1:], metas[1:], strict=True):
        differs = [k for k in SHARED_KEYS if meta.get(k) != metas[0].get(k)]
        if differs:
            raise SystemExit(f"{path}: {', '.join(differs)} differ from {args.members[0]}")
    reference = log_mean_softmax([np.array(json.loads(m["reference_logits"])) for m in metas])
    save_model(
        merge(members),
        "kao scripts/ensemble_emotion.py",
        {k: metas[0][k] for k in SHARED_KEYS}
        | {
            "reference_logits": json.dumps(reference.round(6).tolist()),
            "members": json.dumps(
                [{"seed": m["seed"], "val_accuracy_flip": m["val_accuracy_flip"]} for m in metas]
            ),
        },
        args.float_out if args.int8 else args.out,
    )
    if args.int8:
        drawn = np.random.default_rng(args.split_seed).choice(train_idx, args.int8, replace=False)
        quantize(args.float_out, args.out, data["images"][np.sort(drawn)])

    grey, labels = data["images"][val_idx], data["labels"][val_idx]
    accuracy = {
        str(path): flip_accuracy(ort.InferenceSession(str(path)), grey, labels)
        for path in [*args.members, *([args.float_out] if args.int8 else []), args.out]
    }
    report = {
        "val_images": len(val_idx),
        "int8_calibration_images": args.int8,
        "val_accuracy_flip": accuracy,
    }
    args.log.parent.mkdir(parents=True, exist_ok=True)
    args.log.write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
