"""Train kao's crowd-density network on a crowd-counting training split and export it to ONNX.

    python scripts/train_counter.py --dataset mall --folds 5 --fold 0 \
        --out kao/crowd/weights/counter_mall.onnx --log docs/training/counter_mall.json

Needs the `train` extra (PyTorch); the exported model needs only ONNX Runtime. Data: the
training splits under `--data` (default `.data/crowd_train`, layout in kao.crowd.datasets:
ShanghaiTech `part_A/train_data`, `part_B/train_data`, Mall `mall/` frames 1-800). The test
splits are never read. `--dataset all` trains on the three together.

Cross-validation: `--folds K --fold i` holds out the i-th of K contiguous blocks of each set
(`kao.crowd.datasets.fold`), never trained on; every epoch reports the held-out mean absolute
and root mean squared count error. The exported network is the last epoch's (no choice on the
held-out block), so `kao eval count` can report its error on that block honestly.

Method: the Bayesian loss (Ma et al., "Bayesian Loss for Crowd Count Estimation with Point
Supervision", ICCV 2019): each annotated head n gets the posterior p(n | cell m) of a Gaussian
likelihood (sigma `--sigma` px) over the output cells, plus a background class whose squared
distance is (background * crop side)^2 / (squared distance to the nearest head), as in the
authors' code; the loss is sum_n |1 - sum_m p(n | m) D_m| + |sum_m p(bg | m) D_m| per crop.
No ground-truth density map is made. `--loss mse` instead: the summed squared error against a
Gaussian density map (sigma `--sigma` px; the classic baseline).

Network: a compact VGG-style CNN trained from scratch (no ImageNet weights: none can be
obtained here under a licence kao may use): 3 x 3 conv + batch norm + ReLU, two at each of 4
resolutions separated by 2 x 2 max pooling (output stride 8), then a 1 x 1 conv and |x| (the
Bayesian-loss authors' output) as the density. Training: Adam, the learning rate constant for
one epoch then cosine to 0, random crops (`--crop` px of the image resized by `--scale`) and
flips, a fixed `--seed`; a checkpoint after every epoch (`--resume` continues from it: same
results as an uninterrupted run). With `--minutes`, the number of epochs is fixed after the
first one from its duration so that the run fits the budget (the log records it; `--epochs`
with that number repeats the run).

Export: batch norm folded into the convolutions, written with onnx.helper (see
kao.crowd.trained for the format); the metadata holds the settings, the training summary and
a reference: PyTorch's density for a seeded input, which the tests compare with ONNX Runtime's.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from onnx import TensorProto, helper
from torch import nn
from torch_layers import ConvBN, GraphWriter, git_commit, machine, save_model

from kao.crowd.datasets import DATASETS, Scene, fold, load_scenes
from kao.crowd.trained import INPUT_NAME, OUTPUT_NAME, prepare

STRIDE = 8
MEAN = (123.675, 116.28, 103.53)
"""RGB normalisation (0-255), the usual ImageNet statistics; also the padding value."""
STD = (58.395, 57.12, 57.375)
REFERENCE_SHAPE = (1, 3, 64, 96)
REFERENCE_SEED = 21


class DensityNet(nn.Module):
    """(N, 3, H, W) normalised RGB -> (N, 1, H / 8, W / 8) density, people per cell."""

    def __init__(self, width: int = 16):
        super().__init__()
        widths = (width, 2 * width, 4 * width, 6 * width)
        layers: list[nn.Module] = []
        cin = 3
        for stage, cout in enumerate(widths):
            if stage:
                layers.append(nn.MaxPool2d(2))
            layers += [ConvBN(cin, cout), ConvBN(cout, cout)]
            cin = cout
        self.layers = nn.Sequential(*layers)
        self.head = nn.Conv2d(cin, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.abs(self.head(self.layers(x)))


def cell_centres(h: int, w: int) -> torch.Tensor:
    """(h * w, 2) centres (x, y) in pixels of the output cells, row by row."""
    ys = (torch.arange(h, dtype=torch.float32) + 0.5) * STRIDE
    xs = (torch.arange(w, dtype=torch.float32) + 0.5) * STRIDE
    cy, cx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([cx.reshape(-1), cy.reshape(-1)], 1)


def density_mse(density: torch.Tensor, points: list[torch.Tensor], sigma: float) -> torch.Tensor:
    """Mean over the batch of the summed squared error against the Gaussian density target:
    each head spreads one person over the cells with a Gaussian of `sigma` px (normalised over
    the crop's cells)."""
    n = density.shape[0]
    cells = cell_centres(*density.shape[2:])
    total = density.new_zeros(())
    for flat, p in zip(density.reshape(n, -1), points, strict=True):
        target = torch.zeros_like(flat)
        if len(p):
            d2 = ((p[:, None, :] - cells[None]) ** 2).sum(-1)
            target = torch.softmax(-d2 / (2 * sigma**2), 1).sum(0)
        total = total + ((flat - target) ** 2).sum()
    return total / n


def bayesian_loss(
    density: torch.Tensor, points: list[torch.Tensor], crop: int, sigma: float, background: float
) -> torch.Tensor:
    """Mean over the batch of the Bayesian loss: `density` (N, 1, h, w), `points[i]` (P_i, 2)
    head positions (x, y) in crop pixels; cell centres at ((j + 0.5) * 8, (i + 0.5) * 8)."""
    n = density.shape[0]
    cells = cell_centres(*density.shape[2:])
    total = density.new_zeros(())
    for flat, p in zip(density.reshape(n, -1), points, strict=True):
        if len(p) == 0:
            total = total + flat.sum().abs()
            continue
        d2 = ((p[:, None, :] - cells[None]) ** 2).sum(-1)  # (P, h * w)
        nearest = d2.min(0, keepdim=True).values
        bg = (background * crop) ** 2 / (nearest + 1e-5)
        posterior = torch.softmax(-torch.cat([d2, bg]) / (2 * sigma**2), 0)  # (P + 1, h * w)
        expected = posterior @ flat
        target = torch.ones_like(expected)
        target[-1] = 0
        total = total + (target - expected).abs().sum()
    return total / n


class Scenes:
    """The training images resized by `scale` (uint8 RGB) and their scaled head points."""

    def __init__(self, scenes: list[Scene], scale: float):
        self.images: list[np.ndarray] = []
        self.points: list[np.ndarray] = []
        for scene in scenes:
            bgr = cv2.imread(str(scene.path), cv2.IMREAD_COLOR)
            if bgr is None:
                raise SystemExit(f"{scene.path}: unreadable")
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            if scale != 1.0:
                size = (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale))
                rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
            self.images.append(rgb)
            self.points.append(scene.points * scale)
        self.counts = np.array([len(p) for p in self.points], np.float64)

    def crop(
        self, index: int, size: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """A random `size` x `size` crop (padded with the mean when the image is smaller),
        mirrored with probability 1/2: (3, size, size) float32 normalised, (P, 2) points."""
        image, points = self.images[index], self.points[index]
        height, width = image.shape[:2]
        top = int(rng.integers(0, max(height - size, 0) + 1))
        left = int(rng.integers(0, max(width - size, 0) + 1))
        out = np.empty((size, size, 3), np.float32)
        out[:] = MEAN
        part = image[top : top + size, left : left + size]
        out[: part.shape[0], : part.shape[1]] = part
        p = points - np.array([left, top], np.float32)
        p = p[
            (p[:, 0] >= 0) & (p[:, 1] >= 0) & (p[:, 0] < part.shape[1]) & (p[:, 1] < part.shape[0])
        ]
        if rng.random() < 0.5:
            out = out[:, ::-1]
            p = np.stack([size - p[:, 0], p[:, 1]], 1) if len(p) else p
        normalised = (out - np.asarray(MEAN, np.float32)) / np.asarray(STD, np.float32)
        return np.ascontiguousarray(normalised.transpose(2, 0, 1)), p.astype(np.float32)


def normalise(batch: np.ndarray) -> torch.Tensor:
    """(N, 3, H, W) float32 RGB 0-255 -> the network's normalised input."""
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return (torch.from_numpy(batch) - mean) / std


def held_out_errors(model: DensityNet, scenes: Scenes) -> dict[str, float]:
    """Mean absolute and root mean squared count error over whole images (eval mode)."""
    model.eval()
    counts = []
    with torch.no_grad():
        for image in scenes.images:
            x = normalise(prepare(image, 1.0, STRIDE, MEAN))
            counts.append(float(model(x).sum()))
    error = np.array(counts) - scenes.counts
    return {
        "val_mae": round(float(np.abs(error).mean()), 3),
        "val_rmse": round(float(np.sqrt((error**2).mean())), 3),
        "val_bias": round(float(error.mean()), 3),
    }


def export_onnx(model: DensityNet, metadata: dict[str, str], path: Path) -> None:
    """Write `model` (eval mode) as ONNX: raw RGB 0-255 in, density out."""
    model.eval()
    writer = GraphWriter()
    mean = np.array(MEAN, np.float32).reshape(1, 3, 1, 1)
    inv_std = 1.0 / np.array(STD, np.float32).reshape(1, 3, 1, 1)
    x = writer.node("Sub", [INPUT_NAME, writer.constant(mean, "mean")])
    x = writer.node("Mul", [x, writer.constant(inv_std, "inv_std")])
    for layer in model.layers:
        x = writer.layer(layer, x)
    weight = model.head.weight.detach().numpy()
    bias = model.head.bias.detach().numpy()
    x = writer.node(
        "Conv",
        [x, writer.constant(weight, "head_w"), writer.constant(bias, "head_b")],
        kernel_shape=[1, 1],
    )
    writer.nodes.append(helper.make_node("Abs", [x], [OUTPUT_NAME]))
    graph = helper.make_graph(
        writer.nodes,
        "kao_counter",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", 1, "h", "w"])],
        writer.weights,
    )
    save_model(graph, "kao scripts/train_counter.py", metadata, path)


def reference_input() -> np.ndarray:
    """The seeded RGB 0-255 input whose PyTorch density the model's metadata records."""
    return np.random.default_rng(REFERENCE_SEED).uniform(0, 255, REFERENCE_SHAPE).astype(np.float32)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", choices=(*DATASETS, "A", "B", "all"), default="mall")
    parser.add_argument("--data", type=Path, default=Path(".data/crowd_train"))
    parser.add_argument("--out", type=Path, default=Path("kao/crowd/weights/counter_mall.onnx"))
    parser.add_argument("--log", type=Path, default=Path("docs/training/counter_mall.json"))
    parser.add_argument(
        "--checkpoint", type=Path, help="default: .data/counter_runs/<--out's name>.pt"
    )
    parser.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--fold", type=int, default=0, help="the held-out block, 0..folds-1")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument(
        "--minutes", type=float, default=0, help="fit the epochs to this budget (0: --epochs)"
    )
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--crop", type=int, default=128, help="crop side, px (multiple of 8)")
    parser.add_argument("--scale", type=float, default=0.5, help="image resize before cropping")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--width", type=int, default=16, help="first stage's channels")
    parser.add_argument("--loss", choices=("bayes", "mse"), default="bayes")
    parser.add_argument("--sigma", type=float, default=8.0, help="Gaussian sigma, px")
    parser.add_argument("--background", type=float, default=1.0, help="background ratio")
    parser.add_argument("--limit", type=int, default=0, help="scenes per set (0: all); smoke")
    parser.add_argument("--seed", type=int, default=2019)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    args.dataset = {"A": "shanghaitech_A", "B": "shanghaitech_B"}.get(args.dataset, args.dataset)
    if args.crop % STRIDE:
        parser.error(f"--crop must be a multiple of {STRIDE}")
    return args


def split(args: argparse.Namespace) -> tuple[list[Scene], list[Scene]]:
    """(training, held-out) scenes of the chosen set(s) for fold `args.fold`."""
    names = list(DATASETS) if args.dataset == "all" else [args.dataset]
    train, held = [], []
    for name in names:
        scenes = load_scenes(name, args.data)
        if args.limit:
            scenes = scenes[:: max(1, len(scenes) // args.limit)][: args.limit]
        train_idx, held_idx = fold(len(scenes), args.folds, args.fold)
        train += [scenes[i] for i in train_idx]
        held += [scenes[i] for i in held_idx]
    return train, held


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    checkpoint_path = args.checkpoint or Path(".data/counter_runs") / f"{args.out.stem}.pt"
    train_scenes, held_scenes = split(args)
    train, held = Scenes(train_scenes, args.scale), Scenes(held_scenes, args.scale)
    model = DensityNet(args.width)
    optimiser = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    steps = math.ceil(len(train.images) / args.batch)
    epochs = args.epochs
    rng = np.random.default_rng(args.seed)
    history: list[dict[str, float]] = []
    spent = 0.0
    if args.resume and checkpoint_path.is_file():
        state = torch.load(checkpoint_path, weights_only=False)
        model.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        epochs = state["epochs"]
        rng.bit_generator.state = state["rng"]
        torch.set_rng_state(state["torch_rng"])
        history, spent = state["history"], state["spent_s"]
        print(f"resumed after epoch {len(history)}", flush=True)
    print(
        f"{args.dataset} fold {args.fold}/{args.folds}: train {len(train.images)}  held out "
        f"{len(held.images)}  params {sum(p.numel() for p in model.parameters())}  steps/epoch "
        f"{steps}",
        flush=True,
    )
    started = time.time() - spent
    epoch = len(history)
    while epoch < epochs:
        epoch += 1
        model.train()
        order = rng.permutation(len(train.images))
        total = 0.0
        for step in range(steps):
            crops = [
                train.crop(int(i), args.crop, rng) for i in order[step * args.batch :][: args.batch]
            ]
            x = torch.from_numpy(np.stack([c[0] for c in crops]))
            points = [torch.from_numpy(c[1]) for c in crops]
            done = max(0, (epoch - 2) * steps + step) / ((epochs - 1) * steps)
            for group in optimiser.param_groups:  # constant in epoch 1, then cosine to 0
                group["lr"] = args.lr * 0.5 * (1 + math.cos(math.pi * done))
            if args.loss == "bayes":
                loss = bayesian_loss(model(x), points, args.crop, args.sigma, args.background)
            else:
                loss = density_mse(model(x), points, args.sigma)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(crops)
        record = {
            "epoch": epoch,
            "train_loss": round(total / len(train.images), 4),
            **held_out_errors(model, held),
            "lr": optimiser.param_groups[0]["lr"],
            "elapsed_s": round(time.time() - started, 1),
        }
        history.append(record)
        print(json.dumps(record), flush=True)
        if args.minutes and epoch == 1:
            epochs = max(2, int(args.minutes * 60 / record["elapsed_s"]))
            print(f"{epochs} epochs fit in {args.minutes} minutes", flush=True)
        state = {
            "model": model.state_dict(),
            "optimiser": optimiser.state_dict(),
            "epochs": epochs,
            "rng": rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
            "history": history,
            "spent_s": time.time() - started,
        }
        checkpoint_path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(state, checkpoint_path)

    model.eval()
    with torch.no_grad():
        reference = model(normalise(reference_input()))[0, 0].numpy()
    summary = {
        "seed": args.seed,
        "arguments": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "git_commit": git_commit(),
        "machine": machine(),
        "method": {
            "bayes": "Bayesian loss (Ma et al., ICCV 2019)",
            "mse": "squared error against a Gaussian density map",
        }[args.loss]
        + ", compact VGG-style network trained from scratch",
        "train_images": len(train.images),
        "held_out_images": len(held.images),
        "held_out": [s.name for s in held_scenes],
        "parameters": sum(p.numel() for p in model.parameters()),
        "epochs_run": epochs,
        "last_epoch": history[-1],
        "wall_time_s": round(time.time() - started, 1),
        "epochs": history,
    }
    info = {
        "dataset": args.dataset,
        "scale": args.scale,
        "stride": STRIDE,
        "mean": list(MEAN),
        "folds": args.folds,
        "fold": args.fold,
        "training": {k: v for k, v in summary.items() if k not in ("epochs", "held_out")},
    }
    metadata = {
        "kao_counter": json.dumps(info),
        "reference": json.dumps(
            {
                "seed": REFERENCE_SEED,
                "shape": list(REFERENCE_SHAPE),
                "density": reference.round(6).tolist(),
            }
        ),
    }
    export_onnx(model, metadata, args.out)
    args.log.parent.mkdir(parents=True, exist_ok=True)
    args.log.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"epoch {history[-1]['epoch']}: held-out MAE {history[-1]['val_mae']}; wrote {args.out}")


if __name__ == "__main__":
    main()
