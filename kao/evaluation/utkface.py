"""UTKFace age and gender evaluation: faces whose labels are in their file names,
`<age>_<gender>_<race>_<date>...jpg` (gender 0 = male, 1 = female; race 0 White, 1 Black,
2 Asian, 3 Indian, 4 Others, as UTKFace labels it).

A face is read two ways: as on a photo (kao's detector on the image, its largest face cropped
as `kao.attributes` crops it; the whole image when no face is found) or as a ready crop
(`cropped=True`: the image itself is the crop)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from kao.attributes.age_gender import (
    CHILD_AGE,
    CHILD_LEVEL,
    ELDER_AGE,
    ELDER_LEVEL,
    AgeGender,
    Reading,
    calibrated,
    gender_withheld,
)
from kao.attributes.dlib_features import attribute_crop
from kao.detection import analysis_detector
from kao.errors import KaoError
from kao.evaluation.calibration import binary_reliability
from kao.evaluation.degrade import curve, degraded
from kao.face import Face
from kao.image import load_image
from kao.progress import progress

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
GENDERS = ("male", "female")
"""Gender names by the label in the file name."""
RACES = ("White", "Black", "Asian", "Indian", "Others")
"""UTKFace's race labels by the number in the file name."""
AGE_BANDS = (0, 10, 20, 30, 40, 50, 60, 70)
"""Lower bounds (years) of the age bands of `subgroups`: 0-9, 10-19, ..., 60-69, 70+."""
ADULT = 20
"""True age (years) from which `subgroups` counts a face in "race_adults"."""
SIZES = (96, 64, 48, 32, 24, 16)
"""Face sizes (the box's shorter side, pixels) of the accuracy-versus-size curve."""
CHUNK = 32
"""Faces read together by `size_curve` (fewer than the dlib features' cache holds, so that the
age/gender and mask models read each crop's features once)."""


@dataclass(frozen=True)
class UtkFace:
    """One labelled face: its file, age in years, gender ("male" / "female") and race label
    (one of `RACES`, "unknown" where the name has none)."""

    path: Path
    age: int
    gender: str
    race: str = "unknown"


def parse_name(name: str) -> tuple[int, str]:
    """The (age, gender) in a UTKFace file name; KaoError naming the file if it has none."""
    parts = name.split("_")
    if len(parts) < 3 or not parts[0].isdigit() or parts[1] not in ("0", "1"):
        raise KaoError(f"{name}: not a UTKFace name (<age>_<gender 0|1>_<race>_...)")
    age = int(parts[0])
    if not 0 < age <= 120:
        raise KaoError(f"{name}: age {age} is out of range")
    return age, GENDERS[int(parts[1])]


def parse_race(name: str) -> str:
    """The race label (`RACES`) in a UTKFace file name, "unknown" if its third part is not one
    (a few UTKFace names skip it)."""
    parts = name.split("_")
    label = parts[2] if len(parts) > 3 else ""
    return RACES[int(label)] if label.isdigit() and int(label) < len(RACES) else "unknown"


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
        faces.append(UtkFace(path, age, gender, parse_race(path.name)))
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


def subgroup_row(
    faces: Sequence[UtkFace], ages: np.ndarray, p_male: np.ndarray, abstained: np.ndarray
) -> dict[str, Any]:
    """{"n", "age_mae" (years), "gender_accuracy" (of the genders given), "abstained" (share
    of genders withheld)} of predictions for `faces`."""
    male = np.array([face.gender == "male" for face in faces])
    right = ((np.asarray(p_male) >= 0.5) == male)[~abstained]
    truth = np.array([face.age for face in faces], np.float64)
    return {
        "n": len(faces),
        "age_mae": round(float(np.abs(np.asarray(ages) - truth).mean()), 3),
        "gender_accuracy": round(float(right.mean()), 4) if right.size else None,
        "abstained": round(float(abstained.mean()), 4),
    }


def band(age: float) -> str:
    """The age band (`AGE_BANDS`) of a true age in years: "0-9", ..., "60-69", "70+"."""
    low = max(b for b in AGE_BANDS if b <= age)
    return f"{low}+" if low == AGE_BANDS[-1] else f"{low}-{low + 9}"


def subgroups(
    faces: Sequence[UtkFace], ages: np.ndarray, p_male: np.ndarray, abstained: np.ndarray
) -> dict[str, dict[str, dict[str, Any]]]:
    """`subgroup_row` of each race label ("race": {"White": row, ...}, in `RACES` order, then
    "unknown" if any), of each race label among the faces of `ADULT` years and more
    ("race_adults", the same keys: the races' age mixes differ) and of each true age band
    ("age_band": {"0-9": row, ..., "70+": row})."""
    races = [face.race for face in faces]
    keys = {
        "race": (races, [*RACES, "unknown"]),
        "race_adults": (
            [race if face.age >= ADULT else None for race, face in zip(races, faces, strict=True)],
            [*RACES, "unknown"],
        ),
        "age_band": ([band(face.age) for face in faces], [band(b) for b in AGE_BANDS]),
    }
    table: dict[str, dict[str, dict[str, Any]]] = {}
    for name, (labels, order) in keys.items():
        table[name] = {}
        for value in order:
            chosen = np.array([label == value for label in labels])
            if chosen.any():
                table[name][value] = subgroup_row(
                    [f for f, c in zip(faces, chosen, strict=True) if c],
                    np.asarray(ages)[chosen],
                    np.asarray(p_male)[chosen],
                    abstained[chosen],
                )
    return table


def cached_features(
    faces: list[UtkFace], *, cropped: bool, model: AgeGender, cache: Path | None
) -> tuple[Reading, np.ndarray]:
    """`read_features` of `faces`, kept in the .npz `cache` (when given) and read from it
    again while it holds the same file names."""
    names = np.array([face.path.name for face in faces])
    if cache is not None and cache.is_file():
        with np.load(cache) as data:
            if np.array_equal(data["names"], names):
                reading = Reading(data["embeddings"], data["age_p"], data["male_p"])
                return reading, data["found"]
    reading, found = read_features(faces, cropped=cropped, model=model)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, names=names, found=found, **vars(reading))
    return reading, found


def _withheld_band(
    faces: Sequence[UtkFace],
    estimated: np.ndarray,
    abstained: np.ndarray,
    p_male: np.ndarray,
    truly: Callable[[int], bool],
) -> dict[str, Any]:
    """The genders withheld among the faces `estimated` (N,) bool in an age band (by kao's
    age), and, for the faces truly in it (`truly` of the labelled age), the share withheld and
    the gender accuracy of all of them and of those given."""
    band = np.array([truly(face.age) for face in faces])
    withheld = abstained & estimated
    right = (np.asarray(p_male) >= 0.5) == np.array([face.gender == "male" for face in faces])

    def share(values: np.ndarray) -> float | None:
        return round(float(values.mean()), 4) if values.size else None

    return {
        "withheld": int(withheld.sum()),
        "withheld_share": round(float(withheld.mean()), 4),
        "true_faces": int(band.sum()),
        "true_withheld_share": share(withheld[band]),
        "true_accuracy_all": share(right[band]),
        "true_accuracy_given": share(right[band & ~withheld]),
    }


def evaluate(root: Path, *, cropped: bool = False, cache: Path | None = None) -> dict[str, Any]:
    """Age MAE and gender accuracy on the UTKFace faces under `root`, read as photos (or as
    ready crops with `cropped`): the package's networks alone and with kao's head (one view and
    mirrored); the reliability of kao's gender probabilities before and after calibration
    (`kao.evaluation.calibration.binary_reliability`); the young children whose gender kao
    withholds; and `subgroups` (per race label and age band) of kao's one-view reading. The
    models' readings are kept in `cache` (`cached_features`)."""
    faces, skipped = load_faces(root)
    package = AgeGender(head=False)
    reading, found = cached_features(faces, cropped=cropped, model=package, cache=cache)
    ages, raw = AgeGender(calibrate=False).estimate(reading.first_view())
    p_male = calibrated(raw)
    male = np.array([face.gender == "male" for face in faces])
    abstained = gender_withheld(ages, p_male)
    given = ~abstained
    report: dict[str, Any] = {
        "faces": len(faces),
        "skipped_files": skipped,
        "read_as": "crop (cropped=True)" if cropped else "photo (detector, largest face)",
        "face_found": round(float(found.mean()), 4),
        "package": scores(faces, *package.estimate(reading.first_view())),
        "kao": scores(faces, ages, p_male),
        "kao_mirrored": scores(faces, *AgeGender(mirror=True).estimate(reading)),
        "gender_calibration": {
            "before": binary_reliability(raw, male),
            "after": binary_reliability(p_male, male),
            "after_given": binary_reliability(p_male[given], male[given]),
        },
        "children": {
            "under_years": CHILD_AGE,
            "level": CHILD_LEVEL,
            **_withheld_band(faces, ages < CHILD_AGE, abstained, p_male, lambda a: a < CHILD_AGE),
        },
        "elders": {
            "from_years": ELDER_AGE,
            "level": ELDER_LEVEL,
            **_withheld_band(faces, ages >= ELDER_AGE, abstained, p_male, lambda a: a >= 70),
        },
        "subgroups": subgroups(faces, ages, p_male, abstained),
    }
    return report


def shrink(rgb: np.ndarray, face: Face, side: float) -> tuple[np.ndarray, Face]:
    """`rgb` (H x W x 3 uint8) scaled down (area averaging) so that `face`'s box's shorter side
    is `side` pixels, and `face` (box, keypoints) scaled with it: a photo where the face is that
    small, which the attribute crops then enlarge as they enlarge any small face. ValueError if
    that would enlarge the photo."""
    factor = side / min(face.width, face.height)
    if factor > 1:
        raise ValueError(f"the face is {min(face.width, face.height):.0f} px, under {side} px")
    height, width = rgb.shape[:2]
    new_width, new_height = max(1, round(width * factor)), max(1, round(height * factor))
    small = cv2.resize(rgb, (new_width, new_height), interpolation=cv2.INTER_AREA)
    scale = np.array([new_width / width, new_height / height], np.float32)
    box = face.box * np.tile(scale, 2)
    return small, replace(face, box=box.astype(np.float32), keypoints=face.keypoints * scale)


def size_curve(root: Path, sizes: Sequence[int] = SIZES, *, every: int = 1) -> dict[str, Any]:
    """Age MAE, gender accuracy and the share of "mask" calls (nobody wears one in UTKFace) of
    `kao.analyze`'s models on the UTKFace faces under `root` (every `every`-th, by name) at their
    own size and shrunk (`shrink`) to each of `sizes` pixels. Each face is found by the analysis
    detector at full size (the largest face; images where none is found, or whose face is under
    max(`sizes`) px, are left out and counted), then its box is scaled with the photo, so that
    the curve measures the attribute models, not the detector. Returns {"faces", "left_out",
    "rows": [{"size" (px, or "full"), "age_mae", "gender_accuracy", "mask_call_rate"}]}."""
    from kao.attributes.mask import MaskClassifier

    faces = load_faces(root)[0][::every]
    detector, model, mask = analysis_detector(), AgeGender(), MaskClassifier()
    found: list[tuple[UtkFace, np.ndarray, Face]] = []
    for face in progress(faces, len(faces)):
        rgb = load_image(face.path)
        detected = detector.detect(rgb)
        if detected:
            largest = max(detected, key=lambda f: f.area)
            if min(largest.width, largest.height) >= max(sizes):
                found.append((face, rgb, largest))
    rows = []
    for size in ("full", *sizes):
        ages, p_male, p_mask = [], [], []
        for start in range(0, len(found), CHUNK):
            crops = []
            for _, rgb, face in found[start : start + CHUNK]:
                image, scaled = (rgb, face) if size == "full" else shrink(rgb, face, size)
                crops.append(attribute_crop(image, scaled))
            chunk_ages, chunk_male = model.estimate(model.read(crops, mirrored=False))
            ages.append(chunk_ages)
            p_male.append(chunk_male)
            p_mask.append(mask.probabilities(crops))
        row = scores([f for f, _, _ in found], np.concatenate(ages), np.concatenate(p_male))
        call_rate = round(float((np.concatenate(p_mask) >= 0.5).mean()), 4)
        rows.append({"size": size, **row, "mask_call_rate": call_rate})
    return {"faces": len(found), "left_out": len(faces) - len(found), "rows": rows}


BLURS = (1.0, 2.0, 3.0, 4.0, 6.0)
"""Gaussian blurs (sigma, pixels of the photo) of the accuracy-versus-quality curve."""
LIGHTS = (0.35, 0.2, 0.1, 2.0, 3.0)
"""Factors of the pixel values (under 1 darkens, over 1 brightens and clips) of the same curve."""


def quality_curve(root: Path, *, every: int = 7, offset: int = 0) -> dict[str, Any]:
    """Age MAE and gender accuracy of `kao.analyze`'s models on the UTKFace faces under `root`
    (every `every`-th by name, from number `offset`) against the quality parts
    `kao.quality.face_quality` measures: each face (the analysis detector's largest, found once
    on the original photo) is read on the photo as it is, blurred (`BLURS`) and darkened or
    brightened (`LIGHTS`), and each reading is binned by the measured sharpness (original and
    blurred views), exposure (original and lit views) and |yaw| from the keypoints (original
    view only; UTKFace's own head turns). Returns {"faces", "views": [{"view", "n", "sharpness",
    "exposure", "age_mae", "gender_accuracy"}], "sharpness" | "exposure" | "yaw": [{"from",
    "to", "n", "age_mae", "gender_accuracy"}], "withheld_by_race": {race: {"n", and per
    attribute of `kao.quality.MIN_PARTS` the share of the faces as they are that
    `kao.quality.unreadable` withholds}}}."""
    from kao.quality import MIN_PARTS, face_quality, unreadable

    faces = load_faces(root)[0][offset::every]
    withheld: dict[str, list[list[bool]]] = {}
    detector, model = analysis_detector(), AgeGender()
    views = ("original", *(f"blur {s:g}" for s in BLURS), *(f"light {f:g}" for f in LIGHTS))
    readings: dict[str, list[Any]] = {
        k: [] for k in ("view", "sharp", "expo", "yaw", "err", "right")
    }
    for face in progress(faces, len(faces)):
        rgb = load_image(face.path)
        detected = detector.detect(rgb)
        if not detected:
            continue
        largest = max(detected, key=lambda f: f.area)
        crops, qualities = [], []
        for view in views:
            image = degraded(rgb, view)
            qualities.append(face_quality(image, largest))
            crops.append(attribute_crop(image, largest))
        ages, p_male = model.estimate(model.read(crops, mirrored=False))
        rated = replace(largest, quality=qualities[0], missing={})  # as kao.analyze has it
        withheld.setdefault(face.race, []).append([bool(unreadable(rated, a)) for a in MIN_PARTS])
        for view, quality, age, male in zip(views, qualities, ages, p_male, strict=True):
            readings["view"].append(view)
            readings["sharp"].append(quality.sharpness)
            readings["expo"].append(quality.exposure)
            readings["yaw"].append(abs(qualities[0].yaw))  # the original photo's
            readings["err"].append(abs(float(age) - face.age))
            readings["right"].append(float((male >= 0.5) == (face.gender == "male")))
    data = {k: np.array(v) for k, v in readings.items()}
    measures = {"age_mae": data["err"], "gender_accuracy": data["right"]}
    report = curve(views, data["view"], data["sharp"], data["expo"], measures, yaw=data["yaw"])
    report["withheld_by_race"] = {
        race: {"n": len(rows)}
        | dict(zip(MIN_PARTS, np.mean(rows, axis=0).round(4).tolist(), strict=True))
        for race, rows in sorted(withheld.items())
    }
    return report
