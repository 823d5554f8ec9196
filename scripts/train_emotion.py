"""Train kao's 7-class emotion network on FER2013 and export it to ONNX.

    python scripts/train_emotion.py --data ../shared/data/fer2013/train.npz \
        --out kao/attributes/weights/emotion.onnx --log docs/training/emotion.json

Needs the `train` extra (PyTorch); the exported model needs only ONNX Runtime. Reproducible:
a fixed seed chooses the validation split (stratified, `--val-fraction` of train.npz, never
trained on), the initial weights, the batches and the augmentation; every epoch's loss and
validation accuracy go to the JSON log with the seed, the arguments, the wall time and the
machine. `public_test.npz` is never read here (it is what `kao eval emotion` reports).

The network is a compact ResNet-style CNN: a 3 x 3 stem at 48 x 48, a strided 3 x 3 to
24 x 24, then three residual stages (two 3 x 3 conv + batch norm each, 1 x 1 projection
shortcut) at 24, 12 and 6 pixels separated by 2 x 2 max pooling, global average pooling,
dropout and one linear layer. Training: AdamW with a one-cycle learning rate, label smoothing,
random flips, rotations, scaling and shifts of each batch, small brightness/contrast changes
and random erasing; with `--photo P`, a share P of the images is first made to look cut from an
ordinary photo (`photo_degrade`: a turned head, low resolution or blur, uneven light, noise).
The checkpoint with the best validation accuracy (flip-averaged) is kept.

kao ships two such networks (`--seed 2013` and `--seed 2014`, the same `--split-seed`) merged by
scripts/ensemble_emotion.py.

With `--teacher MODEL.onnx` (a network in kao's emotion format, such as an ensemble made by
scripts/ensemble_emotion.py) the network is distilled: the teacher's probabilities for each
training image, averaged over kao's 14 views (`kao.attributes.emotion.SHIFTED_VIEWS` and their
mirror images), are computed once, and the loss is `--distill` times the KL divergence from
them plus the rest times the label-smoothed cross-entropy of the labels. The validation images
are never shown to the teacher.

Export: batch norm is folded into the convolutions and the graph is written with onnx.helper:
input "grey" (N, 1, 48, 48) float32 pixel values 0-255, output "logits" (N, 7) in the order
of FER2013's classes (angry, disgust, fear, happy, neutral, sad, surprise). The model's
metadata holds the pixel normalisation, the training summary and a reference: the indices of
some train.npz images and the PyTorch logits for them, which the tests compare with ONNX
Runtime's."""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper
from torch import nn
from torch_layers import Block, ConvBN, GraphWriter, git_commit, machine, save_model

from kao.evaluation.fer2013 import validation_split

CLASSES = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
SIZE = 48
REFERENCE_COUNT = 16


class EmotionNet(nn.Module):
    """(N, 1, 48, 48) normalised grey -> (N, 7) logits; `width` channels in the stem."""

    def __init__(self, width: int = 32, dropout: float = 0.3):
        super().__init__()
        w = width
        self.layers = nn.ModuleList(
            [
                ConvBN(1, w // 2),
                ConvBN(w // 2, w, stride=2),
                Block(w, w),
                nn.MaxPool2d(2),
                Block(w, 2 * w),
                nn.MaxPool2d(2),
                Block(2 * w, 4 * w),
                nn.MaxPool2d(2),
                Block(4 * w, 8 * w),
            ]
        )
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(8 * w, len(CLASSES))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
        return self.fc(self.dropout(x.mean(dim=(2, 3))))


# ----------------------------------------------------------------------------------------------
# Data and augmentation


def augment(x: torch.Tensor, g: torch.Generator, args: argparse.Namespace) -> torch.Tensor:
    """Random flip, rotation, scale, shift, brightness/contrast and erasing of a batch
    (N, 1, 48, 48) of normalised images."""
    n = x.shape[0]

    def uniform(low: float, high: float) -> torch.Tensor:
        return torch.rand(n, generator=g) * (high - low) + low

    angle = uniform(-args.rotate, args.rotate) * math.pi / 180
    scale = uniform(1 - args.scale, 1 + args.scale)
    flip = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0)
    tx, ty = uniform(-args.shift, args.shift), uniform(-args.shift, args.shift)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [torch.stack([cos * flip, -sin, tx], 1), torch.stack([sin * flip, cos, ty], 1)], 1
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    contrast = uniform(1 - args.jitter, 1 + args.jitter).view(n, 1, 1, 1)
    brightness = uniform(-args.jitter, args.jitter).view(n, 1, 1, 1) * 2
    x = x * contrast + brightness
    if args.erase > 0:
        erase = torch.rand(n, generator=g) < args.erase
        side = (torch.rand(n, generator=g) * 12 + 8).long()
        cx = (torch.rand(n, generator=g) * SIZE).long()
        cy = (torch.rand(n, generator=g) * SIZE).long()
        coords = torch.arange(SIZE)
        inside_x = (coords[None] - cx[:, None]).abs() < side[:, None] // 2
        inside_y = (coords[None] - cy[:, None]).abs() < side[:, None] // 2
        mask = inside_y[:, :, None] & inside_x[:, None, :] & erase[:, None, None]
        x = x.masked_fill(mask[:, None], 0.0)
    return x


def photo_degrade(
    x: torch.Tensor, g: torch.Generator, share: float, mean: float, std: float
) -> torch.Tensor:
    """A random `share` of a batch (N, 1, 48, 48) of normalised images made to look like faces
    cut from ordinary photos, each change drawn independently per image: a turned head (the
    face squeezed sideways by up to 20% about a point off its centre, rotated up to 20 degrees),
    low resolution (shrunk to 24-40 px, as faces of 27-44 px are, and enlarged back) or blur
    (Gaussian, sigma 0.4-1.0 px), light (gamma 0.6-1.6 and a linear shading of up to +-40%
    across the face from a random side) and sensor noise (sigma up to 6 grey levels)."""
    n = x.shape[0]
    chosen = torch.rand(n, generator=g) < share

    def uniform(low: float, high: float) -> torch.Tensor:
        return torch.rand(n, generator=g) * (high - low) + low

    def some(p: float) -> torch.Tensor:
        return chosen & (torch.rand(n, generator=g) < p)

    # Pose: a squeeze about a vertical line off the centre, and a rotation.
    squeeze = torch.where(some(0.5), uniform(0.8, 1.0), torch.ones(n))
    pivot = uniform(-0.3, 0.3)
    angle = torch.where(some(0.3), uniform(-20, 20), torch.zeros(n)) * math.pi / 180
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack(
        [
            torch.stack([cos / squeeze, -sin, pivot * (1 - 1 / squeeze)], 1),
            torch.stack([sin / squeeze, cos, torch.zeros(n)], 1),
        ],
        1,
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    # Resolution: one size per batch for the images drawn.
    small = some(0.3)
    side = int(torch.randint(24, 41, (1,), generator=g))
    low = F.interpolate(x, size=(side, side), mode="area")
    low = F.interpolate(low, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
    x = torch.where(small.view(n, 1, 1, 1), low, x)
    # Blur: a separable Gaussian per image (sigma 0 leaves the image as it is).
    sigma = torch.where(some(0.3) & ~small, uniform(0.4, 1.0), torch.full((n,), 1e-3))
    taps = torch.arange(-3, 4, dtype=torch.float32)
    kernel = torch.exp(-(taps[None] ** 2) / (2 * sigma[:, None] ** 2))
    kernel = kernel / kernel.sum(1, keepdim=True)
    padded = F.pad(x.transpose(0, 1), (3, 3, 3, 3), mode="replicate")
    x = F.conv2d(padded, kernel.view(n, 1, 1, 7), groups=n)
    x = F.conv2d(x, kernel.view(n, 1, 7, 1), groups=n).transpose(0, 1)
    # Light, in grey levels 0-255.
    grey = (x * std + mean).clamp(0, 255) / 255
    gamma = torch.where(some(0.5), torch.exp(uniform(math.log(0.6), math.log(1.6))), torch.ones(n))
    grey = grey ** gamma.view(n, 1, 1, 1)
    direction = uniform(0, 2 * math.pi)
    coords = torch.linspace(-1, 1, SIZE)
    across, down = torch.cos(direction).view(n, 1, 1), torch.sin(direction).view(n, 1, 1)
    ramp = across * coords.view(1, 1, SIZE) + down * coords.view(1, SIZE, 1)
    strength = torch.where(some(0.4), uniform(-0.4, 0.4), torch.zeros(n)).view(n, 1, 1)
    grey = grey * (1 + strength * ramp)[:, None]
    noise = torch.where(some(0.3), uniform(0, 6), torch.zeros(n)).view(n, 1, 1, 1)
    grey = grey * 255 + noise * torch.randn(x.shape, generator=g)
    return (grey.clamp(0, 255) - mean) / std


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
    """Loss and accuracy (plain and flip-averaged) on (x, y)."""
    model.eval()
    logits, flipped = [], []
    for i in range(0, len(x), 512):
        batch = x[i : i + 512].contiguous(memory_format=torch.channels_last)
        logits.append(model(batch))
        flipped.append(model(batch.flip(3)))
    plain = torch.cat(logits)
    probs = (plain.softmax(1) + torch.cat(flipped).softmax(1)) / 2
    return {
        "val_loss": float(F.cross_entropy(plain, y)),
        "val_accuracy": float((plain.argmax(1) == y).float().mean()),
        "val_accuracy_flip": float((probs.argmax(1) == y).float().mean()),
    }


def teacher_probabilities(path: Path, images: np.ndarray, threads: int) -> torch.Tensor:
    """(N, 7) float32 probabilities of the emotion network at `path` for (N, 48, 48) uint8
    images, averaged over kao's 14 views (FER2013's class order, which is kao's)."""
    from kao.attributes.emotion import SHIFTED_VIEWS, EmotionClassifier

    teacher = EmotionClassifier(threads, weights=path, views=SHIFTED_VIEWS)
    started = time.time()
    probs = np.concatenate(
        [teacher.probabilities(images[i : i + 256]) for i in range(0, len(images), 256)]
    )
    print(f"teacher {path}: {len(images)} images in {time.time() - started:.0f} s", flush=True)
    return torch.from_numpy(probs)


# ----------------------------------------------------------------------------------------------
# ONNX export


def export_onnx(
    model: EmotionNet, mean: float, std: float, metadata: dict[str, str], path: Path
) -> None:
    """Write `model` (eval mode) as ONNX: raw grey 0-255 in, logits out."""
    model.eval()
    writer = GraphWriter()
    x = writer.node("Sub", ["grey", writer.constant(np.array([mean]), "mean")])
    x = writer.node("Mul", [x, writer.constant(np.array([1.0 / std]), "inv_std")])
    for layer in model.layers:
        x = writer.layer(layer, x)
    x = writer.node("GlobalAveragePool", [x])
    x = writer.node("Flatten", [x], axis=1)
    writer.gemm(model.fc, x, "logits")
    graph = helper.make_graph(
        writer.nodes,
        "kao_emotion",
        [helper.make_tensor_value_info("grey", TensorProto.FLOAT, ["N", 1, SIZE, SIZE])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", len(CLASSES)])],
        writer.weights,
    )
    save_model(graph, "kao scripts/train_emotion.py", metadata, path)


# ----------------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/fer2013/train.npz"))
    parser.add_argument("--out", type=Path, default=Path("kao/attributes/weights/emotion.onnx"))
    parser.add_argument("--log", type=Path, default=Path("docs/training/emotion.json"))
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3, help="peak of the one-cycle schedule")
    parser.add_argument("--weight-decay", type=float, default=0.05)
    parser.add_argument("--width", type=int, default=32, help="stem channels (x2, x4, x8 later)")
    parser.add_argument("--dropout", type=float, default=0.3)
    parser.add_argument("--smoothing", type=float, default=0.1)
    parser.add_argument("--rotate", type=float, default=10.0, help="max rotation, degrees")
    parser.add_argument("--scale", type=float, default=0.1, help="max relative zoom")
    parser.add_argument("--shift", type=float, default=0.1, help="max shift, half-widths")
    parser.add_argument("--jitter", type=float, default=0.2, help="brightness/contrast change")
    parser.add_argument("--erase", type=float, default=0.25, help="random-erasing probability")
    parser.add_argument(
        "--photo", type=float, default=0.0, help="share of images degraded like real photos"
    )
    parser.add_argument("--val-fraction", type=float, default=0.1)
    parser.add_argument(
        "--seed", type=int, default=2013, help="initial weights, batches, augmentation"
    )
    parser.add_argument(
        "--split-seed", type=int, default=2013, help="validation split (same for ensemble members)"
    )
    parser.add_argument("--teacher", type=Path, help="emotion ONNX to distil (14 views)")
    parser.add_argument("--distill", type=float, default=0.7, help="weight of the teacher's loss")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--limit-batches", type=int, default=0, help="per epoch (0: all); tests")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    data = np.load(args.data)
    images, labels = data["images"], data["labels"].astype(np.int64)
    classes = tuple(str(c) for c in data["classes"])
    if classes != CLASSES:
        raise SystemExit(f"{args.data}: classes {classes}, expected {CLASSES}")
    train_idx, val_idx = validation_split(labels, args.val_fraction, args.split_seed)
    mean = float(images[train_idx].mean())
    std = float(images[train_idx].std())

    def tensor(idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        x = (torch.from_numpy(images[idx]).float()[:, None] - mean) / std
        return x.to(device), torch.from_numpy(labels[idx]).to(device)

    x_train, y_train = tensor(train_idx)
    soft = (
        teacher_probabilities(args.teacher, images[train_idx], args.threads)
        if args.teacher
        else None
    )
    x_val, y_val = tensor(val_idx)
    model = EmotionNet(args.width, args.dropout).to(device, memory_format=torch.channels_last)
    steps_per_epoch = math.ceil(len(x_train) / args.batch)
    if args.limit_batches:
        steps_per_epoch = min(steps_per_epoch, args.limit_batches)
    optimiser = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, args.lr, epochs=args.epochs, steps_per_epoch=steps_per_epoch, pct_start=0.2
    )
    g = torch.Generator().manual_seed(args.seed)
    history, best, best_state = [], -1.0, None
    started = time.time()
    print(
        f"train {len(x_train)}  val {len(x_val)}  params "
        f"{sum(p.numel() for p in model.parameters())}  steps/epoch {steps_per_epoch}",
        flush=True,
    )
    for epoch in range(1, args.epochs + 1):
        model.train()
        order = torch.randperm(len(x_train), generator=g)
        total, correct, seen = 0.0, 0, 0
        for step in range(steps_per_epoch):
            idx = order[step * args.batch : (step + 1) * args.batch]
            x = x_train[idx].cpu()
            if args.photo > 0:
                x = photo_degrade(x, g, args.photo, mean, std)
            x = augment(x, g, args)
            x = x.to(device).contiguous(memory_format=torch.channels_last)
            y = y_train[idx]
            logits = model(x)
            loss = F.cross_entropy(logits, y, label_smoothing=args.smoothing)
            if soft is not None:
                kl = F.kl_div(logits.log_softmax(1), soft[idx].to(device), reduction="batchmean")
                loss = (1 - args.distill) * loss + args.distill * kl
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            schedule.step()
            total += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == y).sum())
            seen += len(idx)
        record = {
            "epoch": epoch,
            "train_loss": total / seen,
            "train_accuracy": correct / seen,
            **evaluate(model, x_val, y_val),
            "lr": schedule.get_last_lr()[0],
            "elapsed_s": round(time.time() - started, 1),
        }
        history.append(record)
        if record["val_accuracy_flip"] > best:
            best = record["val_accuracy_flip"]
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        print(
            json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in record.items()})
        )
        print("", end="", flush=True)

    assert best_state is not None
    model.load_state_dict(best_state)
    model = model.cpu().eval()
    best_epoch = max(history, key=lambda r: r["val_accuracy_flip"])
    reference_idx = val_idx[:REFERENCE_COUNT]
    with torch.no_grad():
        x_ref = (torch.from_numpy(images[reference_idx]).float()[:, None] - mean) / std
        reference_logits = model(x_ref).numpy()
    summary = {
        "seed": args.seed,
        "arguments": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "git_commit": git_commit(),
        "machine": machine(),
        "train_images": len(train_idx),
        "val_images": len(val_idx),
        "pixel_mean": mean,
        "pixel_std": std,
        "parameters": sum(p.numel() for p in model.parameters()),
        "best_epoch": best_epoch,
        "wall_time_s": round(time.time() - started, 1),
        "epochs": history,
    }
    metadata = {
        "classes": json.dumps(CLASSES),
        "pixel_mean": repr(mean),
        "pixel_std": repr(std),
        "val_accuracy_flip": repr(best),
        "seed": str(args.seed),
        "reference_indices": json.dumps([int(i) for i in reference_idx]),
        "reference_logits": json.dumps(reference_logits.round(6).tolist()),
    }
    export_onnx(model, mean, std, metadata, args.out)
    args.log.parent.mkdir(parents=True, exist_ok=True)
    args.log.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"best epoch {best_epoch['epoch']}: val accuracy (flip) {best:.4f}; wrote {args.out}")


if __name__ == "__main__":
    main()
