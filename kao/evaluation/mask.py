"""Mask evaluation on a folder with `with_mask/` and `without_mask/` images: accuracy of the mask
classifier on the held-out files of `scripts/train_mask.py`'s split, and the detector's recall
(share of images where it finds a face) on masked and unmasked faces.

Each image is read as a photo: kao's detector, its largest face cropped as `kao.attributes`
crops it; an image where no face is found is read as a ready crop (the whole image)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kao.attributes.dlib_features import attribute_crop
from kao.attributes.mask import MaskClassifier
from kao.detection import FaceDetector
from kao.errors import KaoError
from kao.image import load_image
from kao.progress import progress

CLASSES = ("without_mask", "with_mask")
"""The two folders; index 1 is masked."""
SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
SPLIT = Path(__file__).resolve().parents[1] / "attributes" / "weights" / "mask_split.json"
"""The held-out files of the trained classifier, written by scripts/train_mask.py."""


@dataclass(frozen=True)
class MaskImage:
    """One labelled image: its path, its name relative to the data folder, masked or not."""

    path: Path
    name: str
    masked: bool


def load_dataset(root: Path) -> list[MaskImage]:
    """Every image of `root`/with_mask and `root`/without_mask, sorted by name; KaoError
    naming the folder when one is missing or empty."""
    images = []
    for index, folder in enumerate(CLASSES):
        directory = root / folder
        files = sorted(p for p in directory.glob("*") if p.suffix.lower() in SUFFIXES)
        if not files:
            raise KaoError(f"{directory}: no images (expected {root}/{{{','.join(CLASSES)}}}/)")
        images += [MaskImage(p, f"{folder}/{p.name}", bool(index)) for p in files]
    return images


def split(images: Sequence[MaskImage], seed: int, held_out: float) -> list[str]:
    """The names of a `held_out` share of `images`, drawn per class with `seed`, sorted."""
    rng = np.random.default_rng(seed)
    names = []
    for masked in (False, True):
        group = sorted(im.name for im in images if im.masked == masked)
        order = rng.permutation(len(group))
        names += [group[i] for i in order[: round(held_out * len(group))]]
    return sorted(names)


def read_split(path: Path = SPLIT) -> dict[str, Any]:
    """The recorded split: {"seed", "held_out_share", "held_out": [names]}."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise KaoError(f"{path}: cannot read the mask split: {error}") from error


def face_crop(detector: FaceDetector, rgb: np.ndarray) -> tuple[np.ndarray, bool]:
    """The attribute crop of the largest face of `rgb` and True, or `rgb` itself (read as a
    ready crop) and False when the detector finds no face."""
    faces = detector.detect(rgb)
    if not faces:
        return rgb, False
    return attribute_crop(rgb, max(faces, key=lambda f: f.area)), True


def crops(
    images: Sequence[MaskImage], detector: FaceDetector
) -> tuple[list[np.ndarray], np.ndarray]:
    """The crops of `images` (see `face_crop`) and whether a face was found in each (N,) bool."""
    pairs = [face_crop(detector, load_image(im.path)) for im in progress(images, len(images))]
    return [p[0] for p in pairs], np.array([p[1] for p in pairs], bool)


def recall(images: Sequence[MaskImage], found: np.ndarray) -> dict[str, float]:
    """Share of masked and unmasked images in which a face was found."""
    masked = np.array([im.masked for im in images])
    return {
        "with_mask": round(float(found[masked].mean()), 4),
        "without_mask": round(float(found[~masked].mean()), 4),
    }


def evaluate(root: Path, classifier: MaskClassifier | None = None) -> dict[str, Any]:
    """Accuracy of the mask classifier on the held-out images of the recorded split, and the
    detector's recall on all images with and without its masked-face pass."""
    images = load_dataset(root)
    recorded = read_split()
    held_out = set(recorded["held_out"])
    missing = held_out - {im.name for im in images}
    if missing:
        raise KaoError(f"{root}: {len(missing)} held-out files of {SPLIT} are missing")
    found = {}
    test_crops: list[np.ndarray] = []
    for masked_faces in (False, True):
        detector = FaceDetector(masked_faces=masked_faces)
        all_crops, found[masked_faces] = crops(images, detector)
        if masked_faces:
            test_crops = [c for c, im in zip(all_crops, images, strict=True) if im.name in held_out]
    test = [im for im in images if im.name in held_out]
    truth = np.array([im.masked for im in test])
    p_mask = (classifier or MaskClassifier()).probabilities(test_crops)
    test_found = np.array(
        [f for f, im in zip(found[True], images, strict=True) if im.name in held_out]
    )
    return {
        "held_out_images": len(test),
        "accuracy": round(float(((p_mask >= 0.5) == truth).mean()), 4),
        "accuracy_with_mask": round(float((p_mask[truth] >= 0.5).mean()), 4),
        "accuracy_without_mask": round(float((p_mask[~truth] < 0.5).mean()), 4),
        "held_out_read_as_crop": int((~test_found).sum()),
        "detector_recall": recall(images, found[True]),
        "detector_recall_without_masked_pass": recall(images, found[False]),
        "images": len(images),
    }
