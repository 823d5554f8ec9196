"""Train the mask classifier (kao/attributes/weights/mask_classifier.onnx) on a folder with
`with_mask/` and `without_mask/` images and on unmasked faces (UTKFace, LFW, WIDER FACE) as
extra negatives, on the CPU in about half an hour.

    .venv/bin/python scripts/train_mask.py --data ../shared/data/mask \
        --utkface ../shared/data/utkface_train --lfw ../shared/data/lfw/lfw-deepfunneled \
        --wider .data/wider_full/WIDER_val \
        --wider-exclude ../shared/data/widerface_val_subset/subset_list.txt \
        --cache /tmp/kao_mask_features

The files are split with a fixed seed, per class, 80 / 20; the 20 % held out are never trained
on and are recorded in kao/attributes/weights/mask_split.json for `kao eval mask`. Each image is
read as on a photo (`kao.evaluation.mask.face_crop`: kao's detector, the largest face's attribute
crop; the whole image when no face is found). A seeded sample of `UTKFACE` UTKFace faces is read
the same way, and the first image of `LFW` seeded LFW people not held out
(`kao.evaluation.mask.lfw_held_out`, recorded in the split file) by its central face (skipped
when none is found), and up to `WIDER` faces of a seeded sample of WIDER FACE validation images
outside the evaluation subset (`--wider-exclude`): the detector's faces that match (IoU > 0.5) a
valid ground-truth face of at least `WIDER_MIN_SIDE` pixels that WIDER labels unoccluded, so
unmasked (`wider_face_val.mat`'s occlusion labels); all are negatives. Each crop is used in
four views (`VIEWS`): as it is, mirrored, and both of those shrunk to a seeded random side of
`SMALL` pixels and enlarged back, as the small and blurred faces of a crowd photo look. (Trained
on the mask set, UTKFace and LFW alone, the classifier called a third of the WIDER subset's
faces masked.) The classifier is a one-hidden-layer network (`HIDDEN` ReLU units,
full-batch Adam from a seeded start, deterministic) on `kao.attributes.mask.mask_features`, the
classes weighted `MASK_WEIGHT` : 1, its accuracy estimated by `FOLDS`-fold cross-validation on
the training part, exported as a 6-node ONNX graph with the standardisation folded in."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from kao.attributes import mask
from kao.attributes.dlib_features import attribute_crop, shared_extractor
from kao.attributes.mask import mask_features
from kao.detection import FaceDetector
from kao.detection.boxes import iou_matrix
from kao.evaluation import mask as mask_eval
from kao.evaluation.mask import face_crop
from kao.image import load_image
from kao.progress import progress

SEED = 0
HELD_OUT = 0.2
FOLDS = 3
HIDDEN, STEPS, RATE, DECAY = 64, 400, 3e-3, 1e-3
"""The network's hidden units, Adam's steps, learning rate and weight decay."""
MASK_WEIGHT = 2.0
"""Weight of the masked class against the unmasked one (whose examples are far more varied)."""
UTKFACE = 4000
"""UTKFace faces sampled as negatives."""
LFW = 1500
"""LFW training people whose first image is a negative."""
WIDER, WIDER_IMAGES, WIDER_PER_IMAGE, WIDER_MIN_SIDE = 3000, 1500, 4, 24
"""WIDER faces used at most, images sampled, faces per image at most, smallest side (px)."""
SMALL = (24, 40)
"""Smallest and largest side, pixels, of the shrunk views."""
VIEWS = 4
"""Views of each crop: as it is, mirrored, shrunk, shrunk and mirrored."""


def mlp(x: np.ndarray, y: np.ndarray, weight: np.ndarray, decay: float) -> list[np.ndarray]:
    """A one-hidden-layer network p = sigmoid(relu(x @ w1 + b1) @ w2 + b2) fitted to labels `y`
    (N,) 0/1 by full-batch Adam on the `weight`ed (N,) cross-entropy plus `decay` * |w|^2 / 2,
    from a `SEED`ed start -> [w1 (D, HIDDEN), b1 (HIDDEN,), w2 (HIDDEN,), b2 (1,)]."""
    rng = np.random.default_rng(SEED)
    params = [
        rng.normal(0, np.sqrt(2 / x.shape[1]), (x.shape[1], HIDDEN)),
        np.zeros(HIDDEN),
        rng.normal(0, np.sqrt(1 / HIDDEN), HIDDEN),
        np.zeros(1),
    ]
    params = [p.astype(x.dtype) for p in params]
    moments = [np.zeros_like(p) for p in params]
    squares = [np.zeros_like(p) for p in params]
    y, weight = y.astype(x.dtype), (weight / weight.sum()).astype(x.dtype)
    for step in range(1, STEPS + 1):
        w1, b1, w2, b2 = params
        hidden = np.maximum(x @ w1 + b1, 0)
        p = 1 / (1 + np.exp(-np.clip(hidden @ w2 + b2[0], -30, 30)))
        g = weight * (p - y)
        g_hidden = np.outer(g, w2) * (hidden > 0)
        grads = [x.T @ g_hidden + decay * w1, g_hidden.sum(0), hidden.T @ g + decay * w2, g.sum()]
        for i, grad in enumerate(grads):
            moments[i] = 0.9 * moments[i] + 0.1 * grad
            squares[i] = 0.999 * squares[i] + 0.001 * grad**2
            m, v = moments[i] / (1 - 0.9**step), squares[i] / (1 - 0.999**step)
            params[i] = params[i] - RATE * m / (np.sqrt(v) + 1e-8)
    return params


def mlp_logit(params: list[np.ndarray], x: np.ndarray) -> np.ndarray:
    """The logit of `mlp`'s network for (N, D) `x` -> (N,)."""
    w1, b1, w2, b2 = params
    return np.maximum(x @ w1 + b1, 0) @ w2 + b2[0]


def export(params: list[np.ndarray], path: Path) -> None:
    """Write `mlp`'s network as ONNX: (N, FEATURES) -> (N, 1) float32 probability of mask."""
    w1, b1, w2, b2 = (p.astype(np.float32) for p in params)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", [mask.INPUT_NAME, "w1"], ["z1"]),
            helper.make_node("Add", ["z1", "b1"], ["a1"]),
            helper.make_node("Relu", ["a1"], ["h"]),
            helper.make_node("MatMul", ["h", "w2"], ["z2"]),
            helper.make_node("Add", ["z2", "b2"], ["logit"]),
            helper.make_node("Sigmoid", ["logit"], [mask.OUTPUT_NAME]),
        ],
        "kao_mask_classifier",
        [helper.make_tensor_value_info(mask.INPUT_NAME, TensorProto.FLOAT, ["N", len(w1)])],
        [helper.make_tensor_value_info(mask.OUTPUT_NAME, TensorProto.FLOAT, ["N", 1])],
        initializer=[
            numpy_helper.from_array(w1, "w1"),
            numpy_helper.from_array(b1, "b1"),
            numpy_helper.from_array(w2.reshape(-1, 1), "w2"),
            numpy_helper.from_array(b2, "b2"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, path)


def cached_features(
    cache: Path | None, name: str, read: Callable[[], list[np.ndarray]]
) -> np.ndarray:
    """`mask_features` of the `VIEWS` views of the crops `read` returns, view by view ->
    (VIEWS N, FEATURES) float32; kept in `cache`/`name`.npz when `cache` is given."""
    path = None if cache is None else cache / f"{name}.npz"
    if path is not None and path.exists():
        with np.load(path) as data:
            return data["x"]
    crops = read()
    extractor = shared_extractor()
    mirrored = [np.ascontiguousarray(crop[:, ::-1]) for crop in crops]
    sides = np.random.default_rng(SEED).integers(SMALL[0], SMALL[1] + 1, len(crops))
    views = [crops, mirrored, shrunk(crops, sides), shrunk(mirrored, sides)]
    x = np.vstack([mask_features(extractor, extractor.features(view)) for view in views])
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, x=x)
    return x


def shrunk(crops: list[np.ndarray], sides: np.ndarray) -> list[np.ndarray]:
    """Each crop (H x W x 3 uint8) shrunk to `sides`[i] pixels square and enlarged back."""
    return [
        cv2.resize(
            cv2.resize(crop, (int(side), int(side)), interpolation=cv2.INTER_AREA),
            crop.shape[1::-1],
            interpolation=cv2.INTER_LINEAR,
        )
        for crop, side in zip(crops, sides, strict=True)
    ]


def mask_crops(train: list[mask_eval.MaskImage]) -> list[np.ndarray]:
    """The crops of the mask set's training images (`mask_eval.face_crop`)."""
    return mask_eval.crops(train, FaceDetector(masked_faces=True))[0]


def utkface_crops(root: Path) -> list[np.ndarray]:
    """The crops (`mask_eval.face_crop`) of a `SEED`ed sample of `UTKFACE` faces of `root`."""
    files = sorted(root.glob("*.jpg"))
    order = np.random.default_rng(SEED).permutation(len(files))[:UTKFACE]
    detector = FaceDetector(masked_faces=True)
    sample = [files[i] for i in sorted(order)]
    return [face_crop(detector, load_image(p))[0] for p in progress(sample, len(sample))]


def lfw_crops(root: Path) -> list[np.ndarray]:
    """The central-face crops of the first image of `LFW` `SEED`ed training people of `root`."""
    people = mask_eval.lfw_people(root, held_out=False, seed=SEED)
    order = np.random.default_rng(SEED).permutation(len(people))[:LFW]
    detector = FaceDetector(masked_faces=True)
    sample = [people[i] for i in sorted(order)]
    found = [mask_eval.central_crop(detector, load_image(p)) for p in progress(sample, len(sample))]
    return [crop for crop in found if crop is not None]


def wider_crops(root: Path, exclude: set[str]) -> list[np.ndarray]:
    """The crops of unoccluded WIDER FACE faces (see the module's docstring) under `root`
    (`images/<event>/<file>.jpg` and `wider_face_val.mat`), none from the images in `exclude`."""
    import scipy.io

    labels = scipy.io.loadmat(root / "wider_face_val.mat")
    candidates = []
    for e, event in enumerate(labels["event_list"][:, 0]):
        for i, name in enumerate(labels["file_list"][e, 0][:, 0]):
            key = f"{event[0]}/{name[0]}.jpg"
            xywh = labels["face_bbx_list"][e, 0][i, 0].astype(np.float32).reshape(-1, 4)
            clear = (labels["occlusion_label_list"][e, 0][i, 0].reshape(-1) == 0) & (
                labels["invalid_label_list"][e, 0][i, 0].reshape(-1) == 0
            )
            clear &= xywh[:, 2:].min(axis=1) >= WIDER_MIN_SIDE
            if key not in exclude and clear.any() and (root / "images" / key).is_file():
                boxes = np.hstack([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]])[clear]
                candidates.append((root / "images" / key, boxes))
    order = np.random.default_rng(SEED).permutation(len(candidates))[:WIDER_IMAGES]
    detector = FaceDetector(masked_faces=True)
    crops: list[np.ndarray] = []
    for path, truth in progress([candidates[i] for i in sorted(order)], len(order)):
        rgb = load_image(path)
        faces = detector.detect(rgb)
        if not faces:
            continue
        overlap = iou_matrix(truth, np.stack([face.box for face in faces]))
        matched = [faces[j] for j in np.unique(overlap.argmax(axis=1)[overlap.max(axis=1) > 0.5])]
        crops += [attribute_crop(rgb, face) for face in matched[:WIDER_PER_IMAGE]]
        if len(crops) >= WIDER:
            break
    return crops[:WIDER]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder of the mask images")
    parser.add_argument("--utkface", type=Path, required=True, help="UTKFace training folder")
    parser.add_argument("--lfw", type=Path, required=True, help="lfw-deepfunneled folder")
    parser.add_argument("--wider", type=Path, required=True, help="WIDER FACE WIDER_val folder")
    parser.add_argument(
        "--wider-exclude", type=Path, required=True, help="list of WIDER images never trained on"
    )
    parser.add_argument("--cache", type=Path, help="folder caching the features (.npz)")
    args = parser.parse_args()
    images = mask_eval.load_dataset(args.data)
    exclude = {line.strip() for line in args.wider_exclude.read_text().splitlines()} - {""}
    held_out = set(mask_eval.split(images, SEED, HELD_OUT))
    train = [im for im in images if im.name not in held_out]
    sources = {
        "mask": cached_features(args.cache, "mask", lambda: mask_crops(train)),
        "utkface": cached_features(args.cache, "utkface", lambda: utkface_crops(args.utkface)),
        "lfw": cached_features(args.cache, "lfw", lambda: lfw_crops(args.lfw)),
        "wider": cached_features(args.cache, "wider", lambda: wider_crops(args.wider, exclude)),
    }
    x = np.vstack(list(sources.values()))
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-6
    x = (x - mean) / scale
    masked = np.array([im.masked for im in train], np.float64)
    y = np.concatenate([np.tile(masked, VIEWS), np.zeros(len(x) - VIEWS * len(train))])
    # the classes weigh MASK_WEIGHT : 1; the views of a crop fall in the same fold
    weight = np.where(y > 0.5, MASK_WEIGHT / y.sum(), 1 / (1 - y).sum())
    groups = np.concatenate(
        [
            np.tile(np.arange(len(v) // VIEWS), VIEWS) + 10**6 * i
            for i, v in enumerate(sources.values())
        ]
    )
    folds = np.random.default_rng(SEED).permutation(groups.max() + 1)[groups] % FOLDS
    hits = np.zeros(len(x), bool)
    for k in range(FOLDS):
        params = mlp(x[folds != k], y[folds != k], weight[folds != k], DECAY)
        hits[folds == k] = (mlp_logit(params, x[folds == k]) > 0) == (y[folds == k] > 0.5)
    accuracy = {
        "mask_set": round(float(hits[: VIEWS * len(train)].mean()), 4),
        "unmasked_photos": round(float(hits[VIEWS * len(train) :].mean()), 4),
    }
    params = mlp(x, y, weight, DECAY)
    w1, b1, w2, b2 = params
    export([w1 / scale[:, None], b1 - (mean / scale) @ w1, w2, b2], mask.WEIGHTS)
    lfw_held = [p.parent.name for p in mask_eval.lfw_people(args.lfw, held_out=True, seed=SEED)]
    recorded = {
        "seed": SEED,
        "held_out_share": HELD_OUT,
        "held_out": sorted(held_out),
        "lfw": {"seed": SEED, "held_out_share": mask_eval.LFW_HELD_OUT, "held_out": lfw_held},
    }
    mask_eval.SPLIT.write_text(json.dumps(recorded, indent=0) + "\n")
    report = {
        "train_images": len(train),
        "held_out_images": len(held_out),
        "negatives": {name: len(v) // VIEWS for name, v in sources.items() if name != "mask"},
        "lfw_held_out_people": len(lfw_held),
        "cv_accuracy": accuracy,
        "weights": str(mask.WEIGHTS),
        "split": str(mask_eval.SPLIT),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
