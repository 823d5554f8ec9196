"""Mask accuracy versus face size on the held-out images of the mask classifier's split
(kao/attributes/weights/mask_split.json). Each image's largest face is found by the analysis
detector at full size; the photo is then shrunk so that the box's shorter side is S px
(kao.evaluation.utkface.shrink) and the classifier reads the attribute crop of the scaled box.
A face counts at size S only if it is at least S px at full size (the rows give the counts,
and the accuracy of the same faces at full size, "accuracy_full").
Run from the checkout: .venv/bin/python scripts/mask_size_curve.py (the network read at 0.5)."""

import json
from pathlib import Path

import numpy as np

from kao.attributes.dlib_features import attribute_crop
from kao.attributes.mask import MaskClassifier
from kao.detection import analysis_detector
from kao.evaluation.mask import load_dataset, read_split
from kao.evaluation.utkface import SIZES, shrink
from kao.image import load_image

root = Path("../shared/data/mask")
held_out = set(read_split()["held_out"])
images = [im for im in load_dataset(root) if im.name in held_out]
detector, classifier = analysis_detector(), MaskClassifier()
found = []
for im in images:
    rgb = load_image(im.path)
    faces = detector.detect(rgb)
    if faces:
        found.append((im.masked, rgb, max(faces, key=lambda f: f.area)))


def calls(crops):
    """Whether each crop is called "mask"."""
    p = [classifier.probabilities(crops[i : i + 32]) for i in range(0, len(crops), 32)]
    return np.concatenate(p) >= 0.5


full = calls([attribute_crop(rgb, face) for _, rgb, face in found])
truth_all = np.array([masked for masked, _, _ in found])
rows = []
for size in ("full", *SIZES):
    keep = [size == "full" or min(f[2].width, f[2].height) >= size for f in found]
    use = [f for f, k in zip(found, keep, strict=True) if k]
    crops = []
    for _, rgb, face in use:
        image, scaled = (rgb, face) if size == "full" else shrink(rgb, face, size)
        crops.append(attribute_crop(image, scaled))
    truth = truth_all[keep]
    called = calls(crops)
    rows.append(
        {
            "size": size,
            "faces": len(use),
            "with_mask": int(truth.sum()),
            "accuracy": round(float((called == truth).mean()), 4),
            "accuracy_full": round(float((full[keep] == truth).mean()), 4),
            "accuracy_with_mask": round(float(called[truth].mean()), 4),
            "accuracy_without_mask": round(float((~called[~truth]).mean()), 4),
        }
    )
print(json.dumps({"held_out": len(images), "face_found": len(found), "rows": rows}, indent=1))
