"""Mask evaluation on a folder with `with_mask/` and `without_mask/` images: accuracy of the mask
classifier on the held-out files of `scripts/train_mask.py`'s split, and the detector's recall
(share of images where it finds a face) on masked and unmasked faces.

Each image is read as a photo: `analysis_detector()` (the detector of `kao.analyze`), its
largest face cropped as `kao.attributes` crops it; an image where no face is found is read as a
ready crop (the whole image). The recall is also given without the masked-face pass.

The mask set holds near-copies of one photo (re-encoded, re-cropped, mirrored, a mask drawn
over it), which a split by file puts on both sides. `near_duplicate_groups` joins them by a
perceptual hash; the accuracy that counts is the one on held-out images whose group has no
member in the training part (`unseen`), and of those only the half of the groups not used to
tune the decision (`tuning_groups`).

The false "mask" calls on bare faces are counted on the full-resolution WIDER FACE validation
photos of `MEASURED_EVENTS` (events where nobody wears a mask), except the photos
`scripts/train_mask.py` may have trained on (`wider_training_sample`); the decision was tuned on
`TUNING_EVENTS` (scripts/calibrate_mask.py)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

from kao.attributes.dlib_features import attribute_crop
from kao.attributes.mask import MaskClassifier, calibrated
from kao.detection import FaceDetector, analysis_detector
from kao.errors import KaoError
from kao.evaluation.calibration import binary_reliability
from kao.image import load_image
from kao.progress import progress

CLASSES = ("without_mask", "with_mask")
"""The two folders; index 1 is masked."""
SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
SPLIT = Path(__file__).resolve().parents[1] / "attributes" / "weights" / "mask_split.json"
"""The held-out files of the trained classifier, written by scripts/train_mask.py."""
WIDER_TRAIN_SIDE, WIDER_TRAIN_IMAGES, WIDER_TRAIN_SEED = 24, 1500, 0
"""`scripts/train_mask.py` draws its WIDER negatives from `WIDER_TRAIN_IMAGES` images (seed
`WIDER_TRAIN_SEED`) with a bare face of at least `WIDER_TRAIN_SIDE` px, none of
`MEASURED_EVENTS` (`wider_training_sample`)."""
BARE_EVENTS = (
    "1--Handshaking",
    "4--Dancing",
    "6--Funeral",
    "7--Cheering",
    "8--Election_Campain",
    "9--Press_Conference",
    "11--Meeting",
    "12--Group",
    "13--Interview",
    "15--Stock_Market",
    "16--Award_Ceremony",
    "17--Ceremony",
    "19--Couple",
    "20--Family_Group",
    "22--Picnic",
    "23--Shoppers",
    "29--Students_Schoolkids",
    "31--Waiter_Waitress",
    "38--Tennis",
    "49--Greeting",
    "50--Celebration_Or_Party",
    "51--Dresses",
    "52--Photographers",
    "55--Sports_Coach_Trainer",
    "56--Voter",
)
"""WIDER FACE events of people where nobody wears a mask (chosen by the event's subject: not
surgeons, workers, soldiers, raids, riots, spas, festivals, parades, sports with helmets or
face guards, traffic). A look at the tuning events' "mask" calls found one face veil (niqab)
in 56--Voter."""
TUNING_EVENTS, MEASURED_EVENTS = BARE_EVENTS[0::2], BARE_EVENTS[1::2]
"""`BARE_EVENTS` alternately: the decision threshold is chosen on the first, the call rate
measured on the second."""
BARE_MIN_SIDE = 24
"""Smallest face (pixels, the box's shorter side) counted in the bare-face call rate."""
HASH_SIDE, HASH_LOW = 32, 8
"""The perceptual hash reads the grey image at HASH_SIDE x HASH_SIDE and keeps the
HASH_LOW x HASH_LOW lowest frequencies of its DCT (64 bits)."""
GROUP_DISTANCE = 8
"""Two images are near-duplicates when their hashes (one of them mirrored or not) differ in at
most this many bits. On ../shared/data/mask, pairs at 0-6 bits were copies of one photo
(re-encoded, re-cropped, mirrored, a mask drawn over it) in the sampled contact sheets, at 8
about two in three, at 10 and more mostly different people; 8 errs on the side of grouping."""


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


def wider_candidates(root: Path, exclude: set[str]) -> list[tuple[str, np.ndarray]]:
    """The WIDER FACE validation images under `root` (`images/<event>/<file>.jpg` and
    `wider_face_val.mat`) outside `exclude` ("<event>/<file>.jpg" names) and outside
    `MEASURED_EVENTS` with at least one bare ground-truth face: labelled valid, both sides >=
    `WIDER_TRAIN_SIDE` px, and unoccluded, or (in `TUNING_EVENTS`, where nobody wears a mask)
    partly or heavily occluded: covered by a hand, a microphone, a camera or another head, not
    masked. Their names and those faces' boxes (K, 4) x1 y1 x2 y2, the covered faces first."""
    import scipy.io

    labels = scipy.io.loadmat(root / "wider_face_val.mat")
    candidates = []
    for e, event in enumerate(labels["event_list"][:, 0]):
        if event[0] in MEASURED_EVENTS:
            continue
        for i, name in enumerate(labels["file_list"][e, 0][:, 0]):
            key = f"{event[0]}/{name[0]}.jpg"
            xywh = labels["face_bbx_list"][e, 0][i, 0].astype(np.float32).reshape(-1, 4)
            occluded = labels["occlusion_label_list"][e, 0][i, 0].reshape(-1) > 0
            valid = labels["invalid_label_list"][e, 0][i, 0].reshape(-1) == 0
            valid &= xywh[:, 2:].min(axis=1) >= WIDER_TRAIN_SIDE
            covered = valid & occluded if event[0] in TUNING_EVENTS else np.zeros_like(valid)
            bare = np.concatenate([np.flatnonzero(covered), np.flatnonzero(valid & ~occluded)])
            if key not in exclude and len(bare) and (root / "images" / key).is_file():
                boxes = np.hstack([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]])[bare]
                candidates.append((key, boxes))
    return candidates


def wider_training_sample(root: Path, exclude: set[str]) -> list[tuple[str, np.ndarray]]:
    """The `WIDER_TRAIN_IMAGES` images (and boxes) of `wider_candidates` drawn with seed
    `WIDER_TRAIN_SEED`, in candidate order: the WIDER photos `scripts/train_mask.py` may train on,
    and that the bare-face call rate never counts."""
    candidates = wider_candidates(root, exclude)
    order = np.random.default_rng(WIDER_TRAIN_SEED).permutation(len(candidates))
    return [candidates[i] for i in sorted(order[:WIDER_TRAIN_IMAGES])]


def bare_face_probabilities(
    root: Path,
    events: Sequence[str],
    skip: set[str],
    classifier: MaskClassifier,
    detector: FaceDetector,
) -> tuple[np.ndarray, int]:
    """The network's probability of a mask (before `calibrated`) of every face the detector
    finds with both sides >= `BARE_MIN_SIDE` px in `root`/images/<event>/*.jpg for `events`,
    except the "<event>/<file>" names in `skip` -> ((F,) float p_mask, images read)."""
    files = [
        path
        for event in events
        for path in sorted((root / "images" / event).glob("*.jpg"))
        if f"{event}/{path.name}" not in skip
    ]
    p_mask = []
    for path in progress(files, len(files)):
        rgb = load_image(path)
        faces = [f for f in detector.detect(rgb) if min(f.width, f.height) >= BARE_MIN_SIDE]
        for start in range(0, len(faces), 64):
            crops = [attribute_crop(rgb, face) for face in faces[start : start + 64]]
            p_mask += list(classifier.network_probabilities(crops))
    return np.array(p_mask, np.float64), len(files)


def perceptual_hash(grey: np.ndarray) -> np.ndarray:
    """The 64-bit DCT hash of a grey image (H x W uint8): resized to HASH_SIDE square (area
    averaging), the HASH_LOW x HASH_LOW lowest DCT frequencies compared with their median ->
    (64,) bool."""
    small = cv2.resize(grey, (HASH_SIDE, HASH_SIDE), interpolation=cv2.INTER_AREA)
    low = cv2.dct(small.astype(np.float32))[:HASH_LOW, :HASH_LOW].ravel()
    return low > np.median(low)


def file_hashes(paths: Sequence[Path]) -> tuple[np.ndarray, np.ndarray]:
    """The perceptual hashes of the grey images at `paths` and of their mirror images:
    two (N, 64) bool arrays."""
    plain, mirrored = [], []
    for path in paths:
        grey = cv2.cvtColor(load_image(path), cv2.COLOR_RGB2GRAY)
        plain.append(perceptual_hash(grey))
        mirrored.append(perceptual_hash(np.ascontiguousarray(grey[:, ::-1])))
    empty = np.zeros((0, HASH_LOW**2), bool)
    return np.array(plain or empty), np.array(mirrored or empty)


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bits that differ between every hash of `a` (N, 64) and of `b` (M, 64) bool -> (N, M)."""
    x, y = a.astype(np.float32), b.astype(np.float32)
    return np.rint(x.shape[1] - x @ y.T - (1 - x) @ (1 - y).T).astype(np.int32)


def near_duplicate_groups(
    plain: np.ndarray, mirrored: np.ndarray, distance: int = GROUP_DISTANCE
) -> np.ndarray:
    """Groups of near-duplicate images from their hashes (`file_hashes`): the connected
    components of the graph joining two images whose hashes, either one mirrored, differ in
    at most `distance` bits -> (N,) int group of each image."""
    close = np.minimum(hamming(plain, plain), hamming(plain, mirrored)) <= distance
    return connected_components(csr_matrix(close | close.T), directed=False)[1]


def unseen(names: Sequence[str], groups: np.ndarray, held_out: set[str]) -> np.ndarray:
    """(N,) bool: which of `names` are held out and share no near-duplicate group (`groups`,
    (N,) int) with any name outside `held_out` (the training part)."""
    held = np.array([name in held_out for name in names], bool)
    trained = np.unique(groups[~held])
    return held & ~np.isin(groups, trained)


def tuning_groups(names: Sequence[str], groups: np.ndarray) -> np.ndarray:
    """(N,) bool: whether each image's near-duplicate group (`groups`, (N,) int) is in the half
    used to tune the mask decision: the first 8 bytes of sha256 of the group's first name (in
    `names`' order) read as a fraction of 2^64 fall below 0.5. The other half is measured."""
    first: dict[int, str] = {}
    for name, group in zip(names, groups.tolist(), strict=True):
        first.setdefault(group, name)
    half = {
        group: int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") / 2**64 < 0.5
        for group, name in first.items()
    }
    return np.array([half[group] for group in groups.tolist()], bool)


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


def wider_readings(
    root: Path, exclude: Path, classifier: MaskClassifier, detector: FaceDetector
) -> dict[str, np.ndarray]:
    """The network's p_mask ("bare_p", (F,)) of the faces >= `BARE_MIN_SIDE` px on the
    `MEASURED_EVENTS` of the WIDER FACE validation set under `root`, none of
    `wider_training_sample`'s images (built with the names listed in the file `exclude`), and
    the number of photos read ("bare_images", ())."""
    names = {line.strip() for line in exclude.read_text().splitlines()} - {""}
    trained = {key for key, _ in wider_training_sample(root, names)}
    p_net, images = bare_face_probabilities(root, MEASURED_EVENTS, trained, classifier, detector)
    return {"bare_p": p_net, "bare_images": np.array(images)}


def wider_call_rates(readings: dict[str, np.ndarray]) -> dict[str, Any]:
    """The share of `wider_readings`' faces called "mask" by kao's decision (`calibrated`) and
    by the network's own 0.5."""
    p_net = readings["bare_p"]
    calls, network_calls = calibrated(p_net) >= 0.5, p_net >= 0.5
    return {
        "bare_call_rate": _share(calls),
        "bare_calls": int(calls.sum()),
        "bare_faces": len(calls),
        "bare_images": int(readings["bare_images"]),
        "bare_events": list(MEASURED_EVENTS),
        "bare_call_rate_network_0.5": _share(network_calls),
    }


def _share(called: np.ndarray) -> float | None:
    """The share of True in `called` (N,) bool, rounded to 4 places; None when N is 0."""
    return round(float(called.mean()), 4) if len(called) else None


def accuracies(p_mask: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    """Accuracy of the calls `p_mask` >= 0.5 ((N,) probabilities) against `truth` (N,) bool:
    all, masked, unmasked, and the images counted."""
    called = p_mask >= 0.5
    return {
        "images": len(truth),
        "accuracy": round(float((called == truth).mean()), 4),
        "with_mask": round(float(called[truth].mean()), 4),
        "without_mask": round(float((~called[~truth]).mean()), 4),
    }


def mask_set_readings(
    images: Sequence[MaskImage], held: np.ndarray, classifier: MaskClassifier
) -> dict[str, np.ndarray]:
    """Whether the analysis detector finds a face in each image with ("found", (N,) bool) and
    without ("found_without_pass") its masked-face pass, and the network's p_mask of the
    held-out images (`held`, (N,) bool) read as `face_crop` reads them ("held_p", (H,))."""
    readings = {}
    for masked_faces, key in ((False, "found_without_pass"), (True, "found")):
        all_crops, readings[key] = crops(images, analysis_detector(masked_faces=masked_faces))
        if masked_faces:
            test = [c for c, keep in zip(all_crops, held, strict=True) if keep]
            readings["held_p"] = classifier.network_probabilities(test)
    return readings


def cached(
    cache: Path | None, key: str, read: Callable[[], dict[str, np.ndarray]]
) -> dict[str, np.ndarray]:
    """`read()`'s arrays, kept in the .npz `cache` (when given) and read from it again while
    it was written under the same `key` (the data read and the classifier's weights)."""
    if cache is not None and cache.is_file():
        with np.load(cache) as data:
            if str(data["key"]) == key:
                return {name: data[name] for name in data.files if name != "key"}
    readings = read()
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, key=np.array(key), **readings)
    return readings


def evaluate(
    root: Path,
    classifier: MaskClassifier | None = None,
    *,
    wider: Path | None = None,
    wider_exclude: Path | None = None,
    cache: Path | None = None,
) -> dict[str, Any]:
    """Accuracy of the mask classifier (kao's decision, `calibrated`) on the held-out images of
    the recorded split, on those of them whose near-duplicate group (`near_duplicate_groups`)
    has no member in the training part and is not in the tuning half (`tuning_groups`), and the
    network's own 0.5 decision on both (and on the unseen images of both halves, none of which
    the network's 0.5 was chosen on); the reliability of the probabilities on the latter; the
    detector's recall on all images with and without its masked-face pass; and, for the full
    WIDER FACE validation folder `wider` (with `wider_face_val.mat`; `wider_exclude` the list of
    images train_mask.py was told to leave out), `wider_call_rates`. The network's readings are
    kept in `cache` (`cache`.mask-set.npz and `cache`.wider.npz; `cached`), so that a change of
    the decision is measured again without reading the images."""
    classifier = classifier or MaskClassifier()
    images = load_dataset(root)
    names = [im.name for im in images]
    held_out = set(read_split()["held_out"])
    missing = held_out - set(names)
    if missing:
        raise KaoError(f"{root}: {len(missing)} held-out files of {SPLIT} are missing")
    held = np.array([name in held_out for name in names])
    weights = hashlib.sha256(classifier.weights.read_bytes()).hexdigest()
    readings = cached(
        None if cache is None else cache.with_suffix(".mask-set.npz"),
        f"{root.resolve()}|{len(names)}|{sorted(held_out)}|{weights}",
        lambda: mask_set_readings(images, held, classifier),
    )
    groups = near_duplicate_groups(*file_hashes([im.path for im in images]))
    all_unseen = unseen(names, groups, held_out)[held]
    never_seen = all_unseen & ~tuning_groups(names, groups)[held]
    truth = np.array([im.masked for im in images])[held]
    p_net = readings["held_p"]
    p_mask = calibrated(p_net)
    report = {
        "held_out": accuracies(p_mask, truth),
        "unseen_groups": accuracies(p_mask[never_seen], truth[never_seen]),
        "network_0.5": {
            "held_out": accuracies(p_net, truth),
            "unseen_groups": accuracies(p_net[never_seen], truth[never_seen]),
            "unseen_groups_both_halves": accuracies(p_net[all_unseen], truth[all_unseen]),
        },
        "unseen_reliability": binary_reliability(p_mask[never_seen], truth[never_seen]),
        "near_duplicate_groups": int(groups.max()) + 1,
        "group_distance_bits": GROUP_DISTANCE,
        "held_out_read_as_crop": int((~readings["found"][held]).sum()),
        "detector_recall": recall(images, readings["found"]),
        "detector_recall_without_masked_pass": recall(images, readings["found_without_pass"]),
        "images": len(images),
    }
    if wider is not None and wider_exclude is not None:
        if not wider_exclude.is_file():
            raise KaoError(f"{wider_exclude}: no list of the WIDER images left out of training")
        wider_data = cached(
            None if cache is None else cache.with_suffix(".wider.npz"),
            f"{wider.resolve()}|{wider_exclude.read_text()}|{MEASURED_EVENTS}|{weights}",
            lambda: wider_readings(wider, wider_exclude, classifier, analysis_detector()),
        )
        report |= wider_call_rates(wider_data)
    return report
