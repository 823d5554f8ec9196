"""Smiles in ordinary photos: does kao's emotion call a smiling face "happy"?

FER2013's faces are 48 x 48 crops; this measures kao where its users are, on faces cut from
full-resolution photos of weddings, parties, ceremonies, meetings and interviews. The faces are
those the analysis detector (`kao.detection.analysis_detector`) finds with both sides at least
`MIN_SIDE` px in the first `PHOTOS` photos (by name) of each of `SMILE_EVENTS` of the WIDER FACE
validation set, at most `FACES` of them per event (drawn with `SEED`): `candidates`.

Each was labelled by eye from a crop 1.4 times its box (`LABELS`, wider_smiles.json beside this
module): "smile" when the mouth's corners are raised (lips open or closed), "other" for any
other face, and left out when the mouth is hidden or cannot be judged. The labels were made
before any model's reading of the faces was looked at, and nothing is trained on these photos.
The events alternate between `CHOOSING_EVENTS`, on which a new emotion network may be preferred
to the old, and `MEASURED_EVENTS`, which only report.

`evaluate` reports, per half: the share of smiles whose most likely emotion is "happy", the
share of other faces called "happy", the mean probability of "happy" of each, and what smiles
are called when not "happy"; and the same for all the faces shrunk to each of `SIZES`. The
WIDER photos are for research only."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kao.attributes.emotion import CROP_SIZE, EmotionClassifier, resize_grey
from kao.detection import FaceDetector
from kao.detection.boxes import iou_matrix
from kao.errors import KaoError
from kao.evaluation.fer2013 import shrunk_faces
from kao.face import EMOTIONS, Face
from kao.image import load_image
from kao.progress import progress

SMILE_EVENTS = (
    "1--Handshaking",
    "11--Meeting",
    "12--Group",
    "13--Interview",
    "16--Award_Ceremony",
    "19--Couple",
    "20--Family_Group",
    "22--Picnic",
    "29--Students_Schoolkids",
    "31--Waiter_Waitress",
    "49--Greeting",
    "50--Celebration_Or_Party",
    "51--Dresses",
    "9--Press_Conference",
)
"""WIDER FACE events of people facing a camera at close range, where smiles are common."""
CHOOSING_EVENTS, MEASURED_EVENTS = SMILE_EVENTS[0::2], SMILE_EVENTS[1::2]
MIN_SIDE = 48
"""Smallest face counted (pixels, the box's shorter side): well above the emotion's 32 px
minimum (`kao.quality.MIN_SIZE`), so that a person can judge the mouth."""
PHOTOS, FACES, SEED = 40, 25, 0
LABELS = Path(__file__).with_name("wider_smiles.json")
SIZES = (40, 32)
"""The faces are also read shrunk to these sizes (the box's side, pixels; as
`kao.evaluation.fer2013.shrunk_faces` shrinks FER2013's), down to the emotion's 32 px minimum."""
MATCH_IOU = 0.5
"""A labelled face is found again when a detected box overlaps its box this much."""


@dataclass(frozen=True)
class Candidate:
    """A face to label: "<event>/<file>" of its photo, and its detected box [x1, y1, x2, y2]."""

    image: str
    box: tuple[float, float, float, float]


def candidates(root: Path, detector: FaceDetector) -> list[Candidate]:
    """The faces to label (see the module docstring), event by event in `SMILE_EVENTS` order,
    in reading order within each photo. `root` holds images/<event>/*.jpg."""
    chosen: list[Candidate] = []
    rng = np.random.default_rng(SEED)
    for event in SMILE_EVENTS:
        files = sorted((root / "images" / event).glob("*.jpg"))[:PHOTOS]
        if not files:
            raise KaoError(f"{root / 'images' / event}: no photos (the WIDER FACE val set?)")
        found = [
            Candidate(f"{event}/{path.name}", tuple(round(float(v), 1) for v in face.box))
            for path in files
            for face in detector.detect(load_image(path))
            if min(face.width, face.height) >= MIN_SIDE
        ]
        keep = sorted(rng.permutation(len(found))[:FACES])
        chosen += [found[i] for i in keep]
    return chosen


def load_labels(path: Path = LABELS) -> list[tuple[Candidate, bool]]:
    """The labelled faces of `path`: (candidate, smiling) pairs."""
    faces = json.loads(path.read_text())["faces"]
    return [(Candidate(f["image"], tuple(f["box"])), f["label"] == "smile") for f in faces]


def found_faces(
    root: Path,
    labels: Sequence[tuple[Candidate, bool]],
    detector: FaceDetector,
    classifier: EmotionClassifier,
) -> tuple[list[np.ndarray], list[bool], list[str], int]:
    """Each labelled face found again in its photo -> (its crop for `classifier`, smiling,
    event, the number of labelled faces the detector no longer finds)."""
    by_image: dict[str, list[tuple[Candidate, bool]]] = {}
    for candidate, smiling in labels:
        by_image.setdefault(candidate.image, []).append((candidate, smiling))
    crops, smiles, events, lost = [], [], [], 0
    for name, faces in progress(list(by_image.items()), len(by_image)):
        rgb = load_image(root / "images" / name)
        detected: list[Face] = detector.detect(rgb)
        boxes = np.array([c.box for c, _ in faces], np.float32)
        overlap = (
            iou_matrix(boxes, np.stack([f.box for f in detected]))
            if detected
            else np.zeros((len(faces), 0))
        )
        for row, (_, smiling) in zip(overlap, faces, strict=True):
            if row.size == 0 or row.max() < MATCH_IOU:
                lost += 1
                continue
            crops.append(classifier.crop(rgb, detected[int(row.argmax())]))
            smiles.append(smiling)
            events.append(name.split("/")[0])
    return crops, smiles, events, lost


def readings(probabilities: np.ndarray, smiling: np.ndarray) -> dict[str, Any]:
    """Figures for (N, 7) emotion probabilities (`EMOTIONS` order) of faces labelled smiling
    (N,) bool."""
    happy = EMOTIONS.index("happy")
    top = probabilities.argmax(axis=1)
    called = top == happy
    instead = Counter(EMOTIONS[i] for i in top[smiling & ~called])
    return {
        "smiles": int(smiling.sum()),
        "others": int((~smiling).sum()),
        "smiles_called_happy": float(called[smiling].mean()) if smiling.any() else None,
        "others_called_happy": float(called[~smiling].mean()) if (~smiling).any() else None,
        "smiles_mean_p_happy": float(probabilities[smiling, happy].mean())
        if smiling.any()
        else None,
        "others_mean_p_happy": float(probabilities[~smiling, happy].mean())
        if (~smiling).any()
        else None,
        "smiles_called_instead": dict(instead.most_common()),
    }


def evaluate(
    root: Path,
    classifiers: dict[str, EmotionClassifier],
    detector: FaceDetector,
    labels: Sequence[tuple[Candidate, bool]] | None = None,
) -> dict[str, Any]:
    """The smile figures of each of `classifiers` (by name; they share one crop) on the
    labelled WIDER faces under `root`, for `CHOOSING_EVENTS`, `MEASURED_EVENTS` and both."""
    first = next(iter(classifiers.values()))
    crops, smiles, events, lost = found_faces(root, labels or load_labels(), detector, first)
    smiling = np.array(smiles, bool)
    measured = np.array([e in MEASURED_EVENTS for e in events], bool)
    grey = resize_grey(crops, CROP_SIZE)
    report: dict[str, Any] = {"faces": len(crops), "not_found_again": lost}
    for name, classifier in classifiers.items():
        probabilities = classifier.probabilities(grey)
        report[name] = {
            "choosing": readings(probabilities[~measured], smiling[~measured]),
            "measured": readings(probabilities[measured], smiling[measured]),
            "all": readings(probabilities, smiling),
            "by_size": [
                {
                    "size": side,
                    **readings(classifier.probabilities(shrunk_faces(grey, side)), smiling),
                }
                for side in SIZES
            ],
        }
    return report


def run(root: Path, model: str = "kao") -> dict[str, Any]:
    """The report of `kao eval emotion --smiles`: kao's network read as `kao.analyze` reads it
    ("kao"), in 14 views ("kao_14_views"), or both ("all")."""
    from kao.attributes.emotion import DEFAULT_VIEWS, SHIFTED_VIEWS
    from kao.detection import analysis_detector

    views = {"kao": DEFAULT_VIEWS, "kao_14_views": SHIFTED_VIEWS}
    names = list(views) if model == "all" else [model]
    if any(name not in views for name in names):
        raise KaoError(f"--smiles measures kao's network (kao, kao_14_views or all), not {model}")
    classifiers = {name: EmotionClassifier(views=views[name]) for name in names}
    return evaluate(root, classifiers, analysis_detector())
