"""WIDER FACE average precision at IoU 0.5 on the easy, medium and hard settings.

Follows the official protocol (WiderFace-Evaluation): scores are min-max normalised over all
images; a detection matching a face outside the setting's keep-list is ignored (neither true
nor false); precision and recall are accumulated over 1,000 score thresholds and turned into
VOC-style AP. Ground truth comes from the official `wider_*_val.mat` files; when the images are
resized (the 416 x 416 subset), boxes are scaled by (image W / original W, image H / original H)
using the sizes in `labelv2_val.txt`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from kao.detection.boxes import iou_matrix
from kao.errors import KaoError

SETTINGS = ("easy", "medium", "hard")
IOU_THRESHOLD = 0.5
THRESHOLDS = 1000

Detections = np.ndarray
"""(N, 5) float array: x1, y1, x2, y2, score, in pixels of the evaluated image."""


@dataclass(frozen=True)
class WiderImage:
    """One evaluated image: its path, its ground-truth boxes (N, 4) [x1, y1, x2, y2] in pixels
    of the image file, and per setting the boolean mask (N,) of the faces it keeps."""

    path: Path
    boxes: np.ndarray
    keep: dict[str, np.ndarray]


def load_dataset(root: Path) -> list[WiderImage]:
    """The images under `root`/images named by `root`/subset_list.txt (or every image of the
    val set that is present), with their ground truth scaled to the image files' sizes."""
    import scipy.io
    from PIL import Image

    if not (root / "wider_face_val.mat").is_file():
        raise KaoError(f"{root}: not a WIDER FACE folder (wider_face_val.mat is missing)")
    full = scipy.io.loadmat(root / "wider_face_val.mat")
    keeps = {s: scipy.io.loadmat(root / f"wider_{s}_val.mat")["gt_list"] for s in SETTINGS}
    sizes = _original_sizes(root / "labelv2_val.txt")
    wanted = _subset(root)
    images = []
    for e, event in enumerate(full["event_list"][:, 0]):
        for i, name in enumerate(full["file_list"][e, 0][:, 0]):
            key = f"{event[0]}/{name[0]}.jpg"
            path = _image_path(root, key)
            if (wanted is not None and key not in wanted) or path is None:
                continue
            xywh = full["face_bbx_list"][e, 0][i, 0].astype(np.float64).reshape(-1, 4)
            boxes = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
            with Image.open(path) as im:
                width, height = im.size
            orig_w, orig_h = sizes[key]
            boxes *= np.array([width / orig_w, height / orig_h] * 2)
            keep = {}
            for s in SETTINGS:
                mask = np.zeros(len(boxes), bool)
                index = keeps[s][e, 0][i, 0].reshape(-1).astype(int)
                mask[index - 1] = True
                keep[s] = mask
            images.append(WiderImage(path, boxes, keep))
    if not images:
        raise KaoError(f"{root}: no WIDER FACE validation images found under {root / 'images'}")
    return images


def shrunk(rgb: np.ndarray, image: WiderImage, long_side: int) -> tuple[np.ndarray, WiderImage]:
    """`rgb` (the file of `image`) resized so its long side is `long_side` pixels (never
    enlarged), and `image` with its ground truth scaled alike."""
    height, width = rgb.shape[:2]
    scale = long_side / max(height, width)
    if scale >= 1:
        return rgb, image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    factors = np.array([size[0] / width, size[1] / height] * 2)
    return small, replace(image, boxes=image.boxes * factors)


def average_precision(images: list[WiderImage], detections: list[Detections]) -> dict[str, float]:
    """AP at IoU 0.5 per setting of `detections` (one (N, 5) array per image)."""
    scores = np.concatenate([d[:, 4] for d in detections]) if detections else np.zeros(0)
    low, high = (scores.min(), scores.max()) if scores.size else (0.0, 1.0)
    span = high - low if high > low else 1.0
    normalised = []
    for d in detections:
        d = d[np.argsort(-d[:, 4], kind="stable")].copy()
        d[:, 4] = (d[:, 4] - low) / span if high > low else 1.0
        normalised.append(d)
    result = {}
    for setting in SETTINGS:
        curve = np.zeros((THRESHOLDS, 2))
        faces = 0
        for image, dets in zip(images, normalised, strict=True):
            keep = image.keep[setting]
            faces += int(keep.sum())
            if len(image.boxes) == 0 or len(dets) == 0:
                continue
            curve += _image_curve(dets, image.boxes, keep)
        precision = curve[:, 1] / np.maximum(curve[:, 0], 1e-12)
        recall = curve[:, 1] / max(faces, 1)
        result[setting] = _voc_ap(recall, precision)
    return result


def _image_curve(dets: np.ndarray, gt: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """(THRESHOLDS, 2): proposals counted and faces recalled at each score threshold."""
    overlaps = iou_matrix(dets[:, :4], gt, pixel_offset=1.0)
    recalled = np.zeros(len(gt))
    counted = np.ones(len(dets), bool)
    recall_at = np.zeros(len(dets))
    for d in range(len(dets)):
        best = int(overlaps[d].argmax())
        if overlaps[d, best] >= IOU_THRESHOLD:
            if not keep[best]:
                recalled[best] = -1
                counted[d] = False
            elif recalled[best] == 0:
                recalled[best] = 1
        recall_at[d] = np.count_nonzero(recalled == 1)
    curve = np.zeros((THRESHOLDS, 2))
    for t in range(THRESHOLDS):
        above = np.nonzero(dets[:, 4] >= 1 - (t + 1) / THRESHOLDS)[0]
        if above.size:
            last = above[-1]
            curve[t] = (np.count_nonzero(counted[: last + 1]), recall_at[last])
    return curve


def _voc_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    changes = np.nonzero(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[changes + 1] - mrec[changes]) * mpre[changes + 1]))


def _original_sizes(label_file: Path) -> dict[str, tuple[int, int]]:
    sizes = {}
    with label_file.open() as lines:
        for line in lines:
            if line.startswith("#"):
                key, width, height = line[1:].split()
                sizes[key] = (int(width), int(height))
    return sizes


def _subset(root: Path) -> set[str] | None:
    listing = root / "subset_list.txt"
    if not listing.is_file():
        return None
    return {line.strip() for line in listing.read_text().splitlines() if line.strip()}


def _image_path(root: Path, key: str) -> Path | None:
    for candidate in (root / "images" / key, root / "images" / Path(key).name):
        if candidate.is_file():
            return candidate
    return None
