"""UTKFace age and gender evaluation: faces whose labels are in their file names,
`<age>_<gender>_<race>_<date>...jpg` (gender 0 = male, 1 = female).

A face is read two ways: as on a photo (kao's detector on the image, its largest face cropped
as `kao.attributes` crops it; the whole image when no face is found) or as a ready crop
(`cropped=True`: the image itself is the crop)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kao.attributes.age_gender import AgeGender, Reading
from kao.attributes.dlib_features import attribute_crop
from kao.detection import analysis_detector
from kao.errors import KaoError
from kao.image import load_image
from kao.progress import progress

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
GENDERS = ("male", "female")
"""Gender names by the label in the file name."""


@dataclass(frozen=True)
class UtkFace:
    """One labelled face: its file, age in years and gender ("male" / "female")."""

    path: Path
    age: int
    gender: str


def parse_name(name: str) -> tuple[int, str]:
    """The (age, gender) in a UTKFace file name; KaoError naming the file if it has none."""
    parts = name.split("_")
    if len(parts) < 3 or not parts[0].isdigit() or parts[1] not in ("0", "1"):
        raise KaoError(f"{name}: not a UTKFace name (<age>_<gender 0|1>_<race>_...)")
    age = int(parts[0])
    if not 0 < age <= 120:
        raise KaoError(f"{name}: age {age} is out of range")
    return age, GENDERS[int(parts[1])]


def load_faces(root: Path) -> tuple[list[UtkFace], int]:
    """The labelled faces under `root`, sorted by name, and how many image files were skipped
    because their name holds no label. KaoError if `root` has no labelled face."""
    if not root.is_dir():
        raise KaoError(f"{root}: not a folder")
    faces, skipped = [], 0
    for path in sorted(p for p in root.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        try:
            age, gender = parse_name(path.name)
        except KaoError:
            skipped += 1
            continue
        faces.append(UtkFace(path, age, gender))
    if not faces:
        raise KaoError(f"{root}: no UTKFace image (<age>_<gender>_<race>_<date>.jpg) found")
    return faces, skipped


def read_features(
    faces: Iterable[UtkFace], *, cropped: bool, model: AgeGender | None = None
) -> tuple[Reading, np.ndarray]:
    """What the age/gender model reads from each face and its mirror image, and whether the
    detector found it ((N,) bool; all True when `cropped`)."""
    faces = list(faces)
    model = model or AgeGender(head=False)
    detector = None if cropped else analysis_detector()
    readings: list[Reading] = []
    found_faces: list[bool] = []
    for face in progress(faces, len(faces)):
        rgb = load_image(face.path)
        found = True
        crop = rgb
        if detector is not None:
            detected = detector.detect(rgb)
            found = bool(detected)
            if found:
                crop = attribute_crop(rgb, max(detected, key=lambda f: f.area))
        readings.append(model.read([crop], mirrored=True))
        found_faces.append(found)
    return Reading.stack(readings), np.array(found_faces, bool)


def scores(faces: list[UtkFace], ages: np.ndarray, p_male: np.ndarray) -> dict[str, float]:
    """Age MAE (years) and gender accuracy of predictions for `faces`."""
    truth_age = np.array([face.age for face in faces], np.float64)
    male = np.array([face.gender == "male" for face in faces])
    return {
        "age_mae": round(float(np.abs(np.asarray(ages) - truth_age).mean()), 3),
        "gender_accuracy": round(float(((np.asarray(p_male) >= 0.5) == male).mean()), 4),
    }


def evaluate(root: Path, *, cropped: bool = False) -> dict[str, Any]:
    """Age MAE and gender accuracy on the UTKFace faces under `root`, read as photos (or as
    ready crops with `cropped`): the package's networks alone and with kao's head."""
    faces, skipped = load_faces(root)
    package = AgeGender(head=False)
    reading, found = read_features(faces, cropped=cropped, model=package)
    report: dict[str, Any] = {
        "faces": len(faces),
        "skipped_files": skipped,
        "read_as": "crop (cropped=True)" if cropped else "photo (detector, largest face)",
        "face_found": round(float(found.mean()), 4),
        "package": scores(faces, *package.estimate(reading.first_view())),
        "kao": scores(faces, *AgeGender().estimate(reading.first_view())),
        "kao_mirrored": scores(faces, *AgeGender(mirror=True).estimate(reading)),
    }
    return report
