"""Train the mask classifier (kao/attributes/weights/mask_classifier.onnx) on a folder with
`with_mask/` and `without_mask/` images, on the CPU in a few minutes.

    .venv/bin/python scripts/train_mask.py --data ../shared/data/mask

The files are split with a fixed seed, per class, 80 / 20; the 20 % held out are never trained
on and are recorded in kao/attributes/weights/mask_split.json for `kao eval mask`. Each image is
read as on a photo (`kao.evaluation.mask.face_crop`: kao's detector, the largest face's attribute
crop; the whole image when no face is found); the classifier is L2-regularised logistic
regression on the crop's dlib face descriptor (Newton's method, deterministic), its strength
chosen by 5-fold cross-validation on the training part, exported as a 3-node ONNX graph."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from kao.attributes import mask
from kao.attributes.dlib_features import shared_extractor
from kao.attributes.mask import mask_features
from kao.detection import FaceDetector
from kao.evaluation import mask as mask_eval

SEED = 0
HELD_OUT = 0.2
FOLDS = 3
ALPHAS = (1e-3, 1e-2)


def logistic(x: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, float]:
    """L2-regularised logistic regression (labels 0/1) by Newton's method -> (w, b)."""
    design = np.hstack([x, np.ones((len(x), 1))])
    theta = np.zeros(design.shape[1])
    penalty = alpha * np.eye(design.shape[1])
    penalty[-1, -1] = 0.0
    for _ in range(30):
        p = 1.0 / (1.0 + np.exp(-np.clip(design @ theta, -30, 30)))
        gradient = design.T @ (p - y) / len(x) + penalty @ theta
        hessian = (design * (p * (1 - p))[:, None]).T @ design / len(x) + penalty
        step = np.linalg.solve(hessian, gradient)
        theta -= step
        if np.abs(step).max() < 1e-8:
            break
    return theta[:-1], float(theta[-1])


def export(w: np.ndarray, b: float, path: Path) -> None:
    """Write p_mask = sigmoid(embedding @ w + b) as ONNX: (N, 128) -> (N, 1) float32."""
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", [mask.INPUT_NAME, "w"], ["logit_w"]),
            helper.make_node("Add", ["logit_w", "b"], ["logit"]),
            helper.make_node("Sigmoid", ["logit"], [mask.OUTPUT_NAME]),
        ],
        "kao_mask_classifier",
        [helper.make_tensor_value_info(mask.INPUT_NAME, TensorProto.FLOAT, ["N", len(w)])],
        [helper.make_tensor_value_info(mask.OUTPUT_NAME, TensorProto.FLOAT, ["N", 1])],
        initializer=[
            numpy_helper.from_array(w.astype(np.float32).reshape(-1, 1), "w"),
            numpy_helper.from_array(np.array([b], np.float32), "b"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder of the mask images")
    parser.add_argument("--features", type=Path, help="cache of the descriptors (.npz)")
    args = parser.parse_args()
    images = mask_eval.load_dataset(args.data)
    held_out = set(mask_eval.split(images, SEED, HELD_OUT))
    train = [im for im in images if im.name not in held_out]
    if args.features and args.features.exists():
        with np.load(args.features) as data:
            x, found = data["x"], data["found"]
    else:
        crops, found = mask_eval.crops(train, FaceDetector())
        extractor = shared_extractor()
        mirrored = [np.ascontiguousarray(crop[:, ::-1]) for crop in crops]
        x = np.vstack(
            [mask_features(extractor, extractor.features(group)) for group in (crops, mirrored)]
        )
        if args.features:
            np.savez(args.features, x=x, found=found)
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    x = (x.astype(np.float64) - mean) / scale
    y = np.tile(np.array([im.masked for im in train], np.float64), 2)
    folds = np.tile(np.random.default_rng(SEED).permutation(len(train)) % FOLDS, 2)
    accuracy = {}
    for alpha in ALPHAS:
        hits = 0
        for k in range(FOLDS):
            w, b = logistic(x[folds != k], y[folds != k], alpha)
            hits += int((((x[folds == k] @ w + b) > 0) == (y[folds == k] > 0.5)).sum())
        accuracy[str(alpha)] = round(hits / len(x), 4)
    alpha = max(ALPHAS, key=lambda a: accuracy[str(a)])
    w, b = logistic(x, y, alpha)
    export(w / scale, b - float((mean / scale) @ w), mask.WEIGHTS)
    mask_eval.SPLIT.write_text(
        json.dumps(
            {"seed": SEED, "held_out_share": HELD_OUT, "held_out": sorted(held_out)}, indent=0
        )
        + "\n"
    )
    report = {
        "train_images": len(train),
        "held_out_images": len(held_out),
        "train_faces_found": round(float(found.mean()), 4),
        "cv_accuracy": accuracy,
        "alpha": alpha,
        "weights": str(mask.WEIGHTS),
        "split": str(mask_eval.SPLIT),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
