"""Train the mask classifier (kao/attributes/weights/mask_classifier.onnx) on a folder with
`with_mask/` and `without_mask/` images and on unmasked faces (UTKFace, WIDER FACE) as
extra negatives, on the CPU in about half an hour (needs kao and its `train` extra).

    python scripts/train_mask.py --data ../shared/data/mask \
        --utkface ../shared/data/utkface_train --wider .data/wider_full/WIDER_val \
        --wider-exclude ../shared/data/widerface_val_subset/subset_list.txt \
        --cache /tmp/kao_mask_cache

The files are split with a fixed seed, per class, 80 / 20; the 20 % held out are never trained
on and are recorded in kao/attributes/weights/mask_split.json for `kao eval mask`. Nor is any
image whose near-duplicate group (`kao.evaluation.mask.near_duplicate_groups`) holds a held-out
image, so that no copy of a held-out photo is trained on. Each image is
read as on a photo (`kao.evaluation.mask.face_crop`: kao's detector, the largest face's attribute
crop; the whole image when no face is found). A seeded sample of `UTKFACE` UTKFace faces is read
the same way, and up to `WIDER` faces of a seeded sample of WIDER FACE validation images
outside the evaluation subset (`--wider-exclude`) and outside the events whose bare-face call
rate `kao eval mask` measures (`kao.evaluation.mask.wider_training_sample`): the detector's
faces that match (IoU > 0.5) a bare ground-truth face of at least `WIDER_TRAIN_SIDE` pixels
(`kao.evaluation.mask.wider_candidates`: unoccluded by `wider_face_val.mat`'s labels, or
occluded in an event where nobody wears a mask, so covered by a hand, a microphone or a camera
rather than masked; those first); all are negatives. LFW is not used: it stays a recognition
benchmark. Each crop is used in
four views (`VIEWS`): as it is, mirrored, and both of those shrunk to a seeded random side of
`SMALL` pixels and enlarged back, as the small and blurred faces of a crowd photo look. (Trained
on the mask set, UTKFace and LFW alone, the classifier called a third of the WIDER subset's
faces masked.) The network (`MaskNet`, described in `kao.attributes.mask`) reads
`kao.attributes.mask.network_inputs`; it is trained with PyTorch (the `train` extra) on
`--threads` CPU threads from a seeded start, the classes weighted `MASK_WEIGHT` : 1, the
crops randomly shifted and their brightness and contrast changed; `VALIDATION` of the training
files (and of the extra faces) are kept aside to log each epoch's accuracy (never the held-out
20 %), and the last epoch's network is exported to ONNX with its batch norms and
standardisation folded in. The log (arguments, per-epoch figures, machine, commit) goes to
docs/training/mask.json."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper
from torch import nn
from torch_layers import ConvBN, GraphWriter, git_commit, machine, save_model

from kao.attributes import mask
from kao.attributes.dlib_features import attribute_crop, shared_extractor
from kao.detection import analysis_detector
from kao.detection.boxes import iou_matrix
from kao.evaluation import mask as mask_eval
from kao.evaluation.mask import face_crop
from kao.image import load_image
from kao.progress import progress

SEED = 0
HELD_OUT = 0.2
VALIDATION = 0.1
"""Share of the training crops (by file, all views together) kept aside to log accuracy."""
WIDTH, HIDDEN, DROPOUT = 16, 64, 0.3
"""Channels of the first convolution (x2, x4, x8 later), hidden units of the feature branch,
dropout before each branch's last layer."""
EPOCHS, BATCH, RATE, DECAY = 12, 128, 3e-3, 1e-2
"""AdamW: epochs, batch size, peak learning rate of the one-cycle schedule, weight decay."""
SHIFT, JITTER = 6, 0.3
"""Random shift (pixels) and brightness / contrast change (relative) of the training crops."""
CROP_CENTRE, CROP_UNIT = 127.5, 64.0
"""The convolutional branch reads (crop - CROP_CENTRE) / CROP_UNIT."""
MASK_WEIGHT = 2.0
"""Weight of the masked class against the unmasked one (whose examples are far more varied)."""
UTKFACE = 4000
"""UTKFace faces sampled as negatives."""
WIDER, WIDER_PER_IMAGE = 3000, 4
"""WIDER faces used at most, faces per image at most (from the images of
`mask_eval.wider_training_sample`)."""
SMALL = (24, 40)
"""Smallest and largest side, pixels, of the shrunk views."""
VIEWS = 4
"""Views of each crop: as it is, mirrored, shrunk, shrunk and mirrored."""


class MaskNet(nn.Module):
    """(N, FEATURES) features, (N, 3, CROP_INPUT, CROP_INPUT) crops 0-255 -> (N,) logits: the
    sum of a convolutional branch on the crop and a one-hidden-layer branch on the
    standardised features (`kao.attributes.mask`'s docstring)."""

    def __init__(self, mean: np.ndarray, scale: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("mean", torch.from_numpy(mean.astype(np.float32)))
        self.register_buffer("scale", torch.from_numpy(scale.astype(np.float32)))
        w = WIDTH
        self.layers = nn.ModuleList(
            [
                ConvBN(3, w, stride=2),
                ConvBN(w, 2 * w),
                nn.MaxPool2d(2),
                ConvBN(2 * w, 4 * w),
                nn.MaxPool2d(2),
                ConvBN(4 * w, 8 * w),
                nn.MaxPool2d(2),
            ]
        )
        self.conv_out = nn.Linear(8 * w, 1)
        self.dropout = nn.Dropout(DROPOUT)
        self.hidden = nn.Linear(len(mean), HIDDEN)
        self.out = nn.Linear(HIDDEN, 1)

    def forward(self, features: torch.Tensor, crops: torch.Tensor) -> torch.Tensor:
        x = (crops - CROP_CENTRE) / CROP_UNIT
        for layer in self.layers:
            x = layer(x)
        conv = self.conv_out(self.dropout(x.mean(dim=(2, 3))))
        z = self.dropout((features - self.mean) / self.scale)
        return (conv + self.out(F.relu(self.hidden(z))))[:, 0]


def augment(crops: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Random shifts of up to `SHIFT` pixels and brightness / contrast changes of up to `JITTER`
    of a batch (N, 3, S, S) of 0-255 crops."""
    n, side = crops.shape[0], crops.shape[2]
    padded = F.pad(crops, [SHIFT] * 4, mode="replicate")
    dx, dy = torch.randint(0, 2 * SHIFT + 1, (2, n), generator=g).tolist()
    out = torch.stack(
        [
            padded[i, :, y : y + side, x : x + side]
            for i, (x, y) in enumerate(zip(dx, dy, strict=True))
        ]
    )
    contrast = 1 + (torch.rand(n, 1, 1, 1, generator=g) * 2 - 1) * JITTER
    brightness = (torch.rand(n, 1, 1, 1, generator=g) * 2 - 1) * JITTER * 128
    return ((out - CROP_CENTRE) * contrast + CROP_CENTRE + brightness).clamp(0, 255)


def train(
    x: np.ndarray, crops: np.ndarray, y: np.ndarray, val: np.ndarray
) -> tuple[MaskNet, list[dict[str, float]]]:
    """`MaskNet` fitted to labels `y` (N,) 0/1 on the samples outside the boolean mask `val`,
    by AdamW with a one-cycle schedule on the class-weighted (`MASK_WEIGHT` : 1) cross-entropy;
    each epoch's training loss and validation accuracies (on `val`) are logged."""
    torch.manual_seed(SEED)
    g = torch.Generator().manual_seed(SEED)
    fit = ~val
    model = MaskNet(x[fit].mean(axis=0), x[fit].std(axis=0) + 1e-6)
    features = torch.from_numpy(x.astype(np.float32))
    images = torch.from_numpy(crops).permute(0, 3, 1, 2).float()
    labels = torch.from_numpy(y.astype(np.float32))
    weight = torch.where(labels > 0.5, MASK_WEIGHT * (1 - y).sum() / y.sum(), 1.0)
    index = torch.from_numpy(np.flatnonzero(fit))
    steps = -(-len(index) // BATCH)
    optimiser = torch.optim.AdamW(model.parameters(), lr=RATE, weight_decay=DECAY)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, RATE, epochs=EPOCHS, steps_per_epoch=steps
    )
    history = []
    for epoch in range(1, EPOCHS + 1):
        model.train()
        order = index[torch.randperm(len(index), generator=g)]
        total = 0.0
        for step in range(steps):
            batch = order[step * BATCH : (step + 1) * BATCH]
            logits = model(features[batch], augment(images[batch], g))
            loss = F.binary_cross_entropy_with_logits(logits, labels[batch], weight[batch])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            total += float(loss.detach()) * len(batch)
        record = {"epoch": epoch, "train_loss": round(total / len(index), 4)}
        record |= validation(model, features, images, y, val)
        history.append(record)
        print(json.dumps(record), flush=True)
    return model.eval(), history


@torch.no_grad()
def validation(
    model: MaskNet, features: torch.Tensor, images: torch.Tensor, y: np.ndarray, val: np.ndarray
) -> dict[str, float]:
    """Accuracy on the `val` samples: masked, unmasked (mask set and extra faces together)."""
    model.eval()
    chunks = np.array_split(np.flatnonzero(val), max(1, int(val.sum()) // 512))
    logits = torch.cat([model(features[c], images[c]) for c in map(torch.from_numpy, chunks)])
    truth = y[np.concatenate(chunks)] > 0.5
    called = logits.numpy() > 0
    return {
        "val_masked": round(float(called[truth].mean()), 4),
        "val_unmasked": round(float((~called[~truth]).mean()), 4),
    }


def export(model: MaskNet, metadata: dict[str, str], path: Path) -> None:
    """Write `model` (eval mode) as ONNX (inputs and output as `kao.attributes.mask` reads)."""
    writer = GraphWriter()
    centre = writer.constant(np.array([CROP_CENTRE]), "centre")
    x = writer.node("Sub", [mask.CROP_INPUT_NAME, centre])
    x = writer.node("Mul", [x, writer.constant(np.array([1 / CROP_UNIT]), "unit")])
    for layer in model.layers:
        x = writer.layer(layer, x)
    x = writer.node("Flatten", [writer.node("GlobalAveragePool", [x])], axis=1)
    conv = writer.gemm(model.conv_out, x)
    z = writer.node("Sub", [mask.FEATURES_INPUT, writer.constant(model.mean.numpy(), "mean")])
    z = writer.node("Mul", [z, writer.constant(1 / model.scale.numpy(), "inv_scale")])
    hidden = writer.node("Relu", [writer.gemm(model.hidden, z)])
    logit = writer.node("Add", [conv, writer.gemm(model.out, hidden)])
    writer.nodes.append(helper.make_node("Sigmoid", [logit], [mask.OUTPUT_NAME]))
    side, features = mask.CROP_INPUT, len(model.mean)
    graph = helper.make_graph(
        writer.nodes,
        "kao_mask_classifier",
        [
            helper.make_tensor_value_info(mask.FEATURES_INPUT, TensorProto.FLOAT, ["N", features]),
            helper.make_tensor_value_info(
                mask.CROP_INPUT_NAME, TensorProto.FLOAT, ["N", 3, side, side]
            ),
        ],
        [helper.make_tensor_value_info(mask.OUTPUT_NAME, TensorProto.FLOAT, ["N", 1])],
        writer.weights,
    )
    save_model(graph, "kao scripts/train_mask.py", metadata, path)


def cached_views(
    cache: Path | None, name: str, read: Callable[[], list[np.ndarray]]
) -> tuple[np.ndarray, np.ndarray]:
    """`mask.network_inputs` of the `VIEWS` views of the crops `read` returns, view by view:
    features (VIEWS N, FEATURES) float32 and crops (VIEWS N, CROP_INPUT, CROP_INPUT, 3) uint8;
    kept in `cache`/`name`.npz when `cache` is given."""
    path = None if cache is None else cache / f"{name}.npz"
    if path is not None and path.exists():
        with np.load(path) as data:
            return data["x"], data["crops"]
    crops = read()
    extractor = shared_extractor()
    mirrored = [np.ascontiguousarray(crop[:, ::-1]) for crop in crops]
    sides = np.random.default_rng(SEED).integers(SMALL[0], SMALL[1] + 1, len(crops))
    views = [crops, mirrored, shrunk(crops, sides), shrunk(mirrored, sides)]
    inputs = [mask.network_inputs(extractor, extractor.features(view)) for view in views]
    x = np.vstack([i[mask.FEATURES_INPUT] for i in inputs])
    small = np.vstack([i[mask.CROP_INPUT_NAME] for i in inputs]).transpose(0, 2, 3, 1)
    small = small.round().astype(np.uint8)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, x=x, crops=small)
    return x, small


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
    return mask_eval.crops(train, analysis_detector())[0]


def utkface_crops(root: Path) -> list[np.ndarray]:
    """The crops (`mask_eval.face_crop`) of a `SEED`ed sample of `UTKFACE` faces of `root`."""
    files = sorted(root.glob("*.jpg"))
    order = np.random.default_rng(SEED).permutation(len(files))[:UTKFACE]
    detector = analysis_detector()
    sample = [files[i] for i in sorted(order)]
    return [face_crop(detector, load_image(p))[0] for p in progress(sample, len(sample))]


def wider_crops(root: Path, exclude: set[str]) -> list[np.ndarray]:
    """The crops of bare WIDER FACE faces (see the module's docstring), covered ones first, of
    `mask_eval.wider_training_sample` under `root`, none from the images in `exclude`."""
    sample = mask_eval.wider_training_sample(root, exclude)
    detector = analysis_detector()
    crops: list[np.ndarray] = []
    for key, truth in progress(sample, len(sample)):
        rgb = load_image(root / "images" / key)
        faces = detector.detect(rgb)
        if not faces:
            continue
        overlap = iou_matrix(truth, np.stack([face.box for face in faces]))
        best = overlap.argmax(axis=1)[overlap.max(axis=1) > 0.5]
        matched = [faces[j] for j in dict.fromkeys(best.tolist())]
        crops += [attribute_crop(rgb, face) for face in matched[:WIDER_PER_IMAGE]]
        if len(crops) >= WIDER:
            break
    return crops[:WIDER]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder of the mask images")
    parser.add_argument("--utkface", type=Path, required=True, help="UTKFace training folder")
    parser.add_argument("--wider", type=Path, required=True, help="WIDER FACE WIDER_val folder")
    parser.add_argument(
        "--wider-exclude", type=Path, required=True, help="list of WIDER images never trained on"
    )
    parser.add_argument("--cache", type=Path, help="folder caching the network inputs (.npz)")
    parser.add_argument("--log", type=Path, default=Path("docs/training/mask.json"))
    parser.add_argument("--threads", type=int, default=1, help="PyTorch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    started = time.time()
    images = mask_eval.load_dataset(args.data)
    exclude = {line.strip() for line in args.wider_exclude.read_text().splitlines()} - {""}
    held_out = set(mask_eval.split(images, SEED, HELD_OUT))
    names = [im.name for im in images]
    groups = mask_eval.near_duplicate_groups(*mask_eval.file_hashes([im.path for im in images]))
    copies = ~mask_eval.unseen(names, groups, set(names) - held_out)
    train_images = [im for im, copy in zip(images, copies, strict=True) if not copy]
    sources = {
        "mask": cached_views(args.cache, "mask", lambda: mask_crops(train_images)),
        "utkface": cached_views(args.cache, "utkface", lambda: utkface_crops(args.utkface)),
        "wider": cached_views(args.cache, "wider", lambda: wider_crops(args.wider, exclude)),
    }
    x = np.vstack([features for features, _ in sources.values()])
    crops = np.vstack([small for _, small in sources.values()])
    masked = np.array([im.masked for im in train_images], np.float64)
    y = np.concatenate([np.tile(masked, VIEWS), np.zeros(len(x) - VIEWS * len(train_images))])
    # the views of a crop are kept aside together
    groups = np.concatenate(
        [
            np.tile(np.arange(len(f) // VIEWS), VIEWS) + 10**6 * i
            for i, (f, _) in enumerate(sources.values())
        ]
    )
    _, group = np.unique(groups, return_inverse=True)
    aside = np.random.default_rng(SEED).random(group.max() + 1) < VALIDATION
    model, history = train(x, crops, y, aside[group])
    summary = {
        "seed": SEED,
        "arguments": {k: str(v) for k, v in vars(args).items()},
        "git_commit": git_commit(),
        "machine": machine(),
        "train_images": len(train_images),
        "held_out_images": len(held_out),
        "copies_of_held_out_not_trained": int(copies.sum()) - len(held_out),
        "negatives": {name: len(f) // VIEWS for name, (f, _) in sources.items() if name != "mask"},
        "samples": {"trained": int((~aside[group]).sum()), "validation": int(aside[group].sum())},
        "last_epoch": history[-1],
        "wall_time_s": round(time.time() - started, 1),
        "epochs": history,
    }
    export(
        model,
        {"training": json.dumps({k: summary[k] for k in ("seed", "samples", "last_epoch")})},
        mask.WEIGHTS,
    )
    recorded = {
        "seed": SEED,
        "held_out_share": HELD_OUT,
        "held_out": sorted(held_out),
    }
    mask_eval.SPLIT.write_text(json.dumps(recorded, indent=0) + "\n")
    args.log.parent.mkdir(parents=True, exist_ok=True)
    args.log.write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k != "epochs"}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
