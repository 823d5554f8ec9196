"""Measure EdgeFace's alignment keypoints on LFW: YuNet's five (what kao uses) against eye
centres from FaceMesh (eye-corner midpoints, or the iris centres) with YuNet's nose and mouth.

Each LFW photo's central face is the one `kao eval lfw` uses
(`kao.evaluation.lfw.central_faces`, read from its cache when there), FaceMesh reads it once,
and the face is embedded with every alignment; faces FaceMesh does not read keep YuNet's
keypoints in every variant (their count is reported). Prints, per alignment, the 10-fold
accuracy on the 6,000 standard pairs and the true-accept rates at FAR 1e-3 and 1e-4 over all
pairs of the photos, as JSON.

    .venv/bin/python scripts/edgeface_alignment.py --data ../shared/data/lfw [--model edgeface_xs]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from kao.cli.evaluate import eval_cache_dir
from kao.evaluation import lfw

VARIANTS = ("yunet", "mesh_eyes", "iris_eyes")
"""Keypoints aligned onto the template: YuNet's five; the mesh's eye centres (corner
midpoints) with YuNet's nose and mouth corners; the iris centres with YuNet's nose and mouth."""

_run: Callable[[Path, np.ndarray], tuple[np.ndarray, bool]] | None = None


def _init(model: str) -> None:
    global _run
    os.environ["KAO_THREADS"] = "1"
    from kao.face import Face
    from kao.image import load_image
    from kao.landmarks import FaceMesh
    from kao.landmarks.facemesh import five_points
    from kao.recognition.embedder import recognition_model

    mesh, network = FaceMesh(), recognition_model(model)

    def run(path: Path, row: np.ndarray) -> tuple[np.ndarray, bool]:
        """Embeddings (variants, D) of the photo's face (a `central_faces` row), and whether
        FaceMesh read it."""
        rgb = load_image(path)
        face = Face(row[:4].copy(), float(row[4]), row[5:].reshape(5, 2).copy())
        (meshed,) = mesh.run(rgb, [face])
        keypoints = [face.keypoints] * len(VARIANTS)
        if meshed.mesh is not None and meshed.iris is not None:
            eyes = five_points(meshed.mesh)[:2]
            irises = meshed.iris[[0, 5], :2]
            keypoints = [
                face.keypoints,
                np.concatenate([eyes, face.keypoints[2:]]).astype(np.float32),
                np.concatenate([irises, face.keypoints[2:]]).astype(np.float32),
            ]
        faces = [Face(face.box, face.score, k) for k in keypoints]
        return network.embed(rgb, faces), meshed.mesh is not None

    _run = run


def _chunk(items: list[tuple[Path, np.ndarray]]) -> list[tuple[np.ndarray, bool]]:
    assert _run is not None
    return [_run(path, row) for path, row in items]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="LFW folder (pairs.txt)")
    parser.add_argument("--model", default="edgeface_xs", help="an EdgeFace model")
    parser.add_argument("--workers", type=int, default=0, help="processes (0: one per core)")
    args = parser.parse_args()
    paths = lfw.all_images(args.data)
    pairs = lfw.read_pairs(args.data)
    faces = lfw.central_faces(paths, args.workers, eval_cache_dir() / "lfw-faces.npz")
    items = list(zip(paths, faces.matrix, strict=True))
    pieces = [items[i : i + 32] for i in range(0, len(items), 32)]
    context = multiprocessing.get_context("spawn")
    with context.Pool(args.workers or os.cpu_count(), _init, (args.model,)) as pool:
        rows = [row for part in pool.imap(_chunk, pieces) for row in part]
    stacked = np.stack([vectors for vectors, _ in rows])  # (N, variants, D)
    report: dict[str, object] = {
        "model": args.model,
        "images": len(paths),
        "no_mesh": int(sum(not read for _, read in rows)),
    }
    for v, name in enumerate(VARIANTS):
        embeddings = lfw.Embeddings(paths, stacked[:, v], ["detected"] * len(paths))
        result = lfw.verification(pairs, embeddings)
        rates = lfw.accept_rates(embeddings, fars=(1e-3, 1e-4))["at_far"]
        report[name] = {
            "accuracy": round(result["accuracy"], 4),
            "std": round(result["std"], 4),
            "threshold": round(result["threshold"], 4),
            "tar_at_far_1e-3": rates["0.001"]["true_accept_rate"],
            "tar_at_far_1e-4": rates["0.0001"]["true_accept_rate"],
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
