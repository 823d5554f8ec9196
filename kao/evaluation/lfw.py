"""LFW protocols: 6,000-pair verification in 10 folds, open-set identification, clustering.

Every image is run through kao's own detection, alignment and embedding. LFW photos are
250 x 250 crops centred on the labelled person, so the face used is the detected face nearest
the centre; when none is found at the detector's default score, detection is repeated at a
score of 0.05, and failing that the fixed central box `CENTRE_BOX` is aligned and embedded
(the counts of both are reported). That face is found once (`central_faces`) for every kao
model and for kao's head pose and age estimates (`photo_traits`), which pick the harder pairs
of `hard_verification`."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from kao.errors import KaoError
from kao.face import Face
from kao.progress import progress
from kao.recognition.embedder import DEFAULT_MODEL, check_model

if TYPE_CHECKING:
    from kao.detection import FaceDetector

CENTRE_BOX = (70.0, 60.0, 180.0, 190.0)
"""[x1, y1, x2, y2] of the face in an LFW photo when no face is detected (pixels)."""
CENTRE_KEYPOINTS = ((104.0, 112.0), (147.0, 112.0), (126.0, 138.0), (108.0, 157.0), (146.0, 157.0))
"""The five keypoints (`kao.face.KEYPOINT_NAMES` order, pixels) given to a face at
`CENTRE_BOX`, for the models that align by keypoints: the median keypoints of the central faces
detected in 309 LFW photos (every 25th)."""
PIPELINE_VERSION = "3"
"""Bump when detection or alignment changes, so cached embeddings are recomputed."""


@dataclass(frozen=True)
class Pair:
    """One verification pair: two image paths, whether they show one person, and its fold."""

    a: Path
    b: Path
    same: bool
    fold: int


@dataclass(frozen=True)
class Embeddings:
    """One row per LFW image: `paths` (N), `matrix` (N, D) float32 (embeddings, unit rows for
    kao's models; or `central_faces` / `photo_traits` rows), and how each face was found:
    `how` (N) in {"detected", "low-score", "centre-box"}."""

    paths: list[Path]
    matrix: np.ndarray
    how: list[str]

    def index(self) -> dict[Path, int]:
        return {path: i for i, path in enumerate(self.paths)}

    def counts(self) -> dict[str, int]:
        return {key: self.how.count(key) for key in ("detected", "low-score", "centre-box")}


def image_path(root: Path, name: str, number: int) -> Path:
    return root / "lfw-deepfunneled" / name / f"{name}_{number:04d}.jpg"


def read_pairs(root: Path) -> list[Pair]:
    """The pairs of `root`/pairs.txt (header "10 300": 10 folds of 300 same + 300 different)."""
    listing = root / "pairs.txt"
    if not listing.is_file():
        raise KaoError(f"{root}: not an LFW folder (pairs.txt is missing)")
    lines = listing.read_text().split("\n")
    folds, per_fold = (int(v) for v in lines[0].split())
    pairs = []
    for i, line in enumerate(filter(None, (x.strip() for x in lines[1:]))):
        fields = line.split()
        fold = i // (2 * per_fold)
        if len(fields) == 3:
            name, n1, n2 = fields
            pairs.append(
                Pair(image_path(root, name, int(n1)), image_path(root, name, int(n2)), True, fold)
            )
        elif len(fields) == 4:
            name1, n1, name2, n2 = fields
            pairs.append(
                Pair(
                    image_path(root, name1, int(n1)), image_path(root, name2, int(n2)), False, fold
                )
            )
        else:
            raise KaoError(f"{listing}: line {i + 2} is not a pair: {line!r}")
    if len(pairs) != 2 * folds * per_fold:
        raise KaoError(f"{listing}: {len(pairs)} pairs, expected {2 * folds * per_fold}")
    return pairs


def all_images(root: Path) -> list[Path]:
    """Every photo under `root`/lfw-deepfunneled, sorted."""
    return sorted((root / "lfw-deepfunneled").glob("*/*.jpg"))


BACKENDS = ("kao", "face_recognition")
"""Pipelines `embed_images` can run: kao's own, or face_recognition 1.3 (HOG detection with one
up-sampling, `face_encodings` with its defaults) for comparison."""


def pipeline_name(backend: str, model: str = DEFAULT_MODEL) -> str:
    """The name of what `embed_images` runs: "kao-<model>", or the other backend's name."""
    return f"kao-{model}" if backend == "kao" else backend


def embed_images(
    paths: Sequence[Path],
    backend: str = "kao",
    workers: int = 0,
    cache: Path | None = None,
    model: str = DEFAULT_MODEL,
    faces: Callable[[], Embeddings] | None = None,
) -> Embeddings:
    """Embed the face of each LFW photo (see the module docstring) with `backend` (for "kao",
    with the recognition model `model`, one of `RECOGNITION_MODELS`, at the faces that `faces`
    returns, `central_faces`, asked only when the embeddings are not in the cache; found here
    when not given), in `workers` processes (0: one per core; 1: in this process), reusing and
    refreshing the cache file `cache` when given."""
    if backend not in BACKENDS:
        raise KaoError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    check_model(model)

    def found_here() -> Embeddings:
        return central_faces(paths, workers)

    if backend == "kao":
        return _per_photo(paths, backend, model, workers, cache, faces or found_here)
    return _per_photo(paths, backend, model, workers, cache)


FACE_COLUMNS = 15
"""Columns of a `central_faces` row: box x1, y1, x2, y2 (pixels), detection score, and the 5
keypoints' x, y (pixels, `kao.face.KEYPOINT_NAMES` order)."""


def central_faces(paths: Sequence[Path], workers: int = 0, cache: Path | None = None) -> Embeddings:
    """The face of each LFW photo (see the module docstring), found once for every kao pipeline:
    `matrix` (N, `FACE_COLUMNS`) float32 and `how` each was found. Run in `workers` processes
    (0: one per core), cached like `embed_images`."""
    return _per_photo(paths, "faces", DEFAULT_MODEL, workers, cache)


TRAITS = ("yaw", "pitch", "roll", "age")
"""The columns of `photo_traits`: head pose in degrees (`kao.geometry.head_pose` of the FaceMesh
of the central face) and kao's age estimate in years (`kao.attributes.age_gender.AgeGender`)."""


def photo_traits(
    paths: Sequence[Path],
    faces: Callable[[], Embeddings],
    workers: int = 0,
    cache: Path | None = None,
) -> Embeddings:
    """kao's head pose and age estimate (`TRAITS`) of the face of each LFW photo at the faces
    that `faces` returns (`central_faces`, asked on a cache miss): `matrix` (N, 4) float32, NaN
    pose where FaceMesh did not read the face. Run in `workers` processes (0: one per core),
    cached like `embed_images`."""
    return _per_photo(paths, "traits", DEFAULT_MODEL, workers, cache, faces)


def _per_photo(
    paths: Sequence[Path],
    kind: str,
    model: str,
    workers: int,
    cache: Path | None,
    faces: Callable[[], Embeddings] | None = None,
) -> Embeddings:
    """One row per photo from the `kind` pipeline ("kao", "face_recognition", "faces" or
    "traits"; the first and last at the faces `faces` returns), computed in `workers` processes and
    cached in `cache` under a key of the pipeline, its version and the paths."""
    paths = list(paths)
    name = pipeline_name(kind, model) if kind in BACKENDS else kind
    key = hashlib.sha256("\n".join([name, PIPELINE_VERSION, *map(str, paths)]).encode()).hexdigest()
    if cache is not None and cache.is_file():
        with np.load(cache) as stored:
            if str(stored["key"]) == key:
                return Embeddings(paths, stored["matrix"], [str(h) for h in stored["how"]])
    items: list[tuple[Path, np.ndarray | None, str]] = [(path, None, "") for path in paths]
    if faces is not None:
        found = faces()
        rows = found.index()
        items = [(path, found.matrix[rows[path]], found.how[rows[path]]) for path in paths]
    workers = workers or os.cpu_count() or 1
    pieces = [items[i : i + 32] for i in range(0, len(items), 32)]
    if workers == 1:  # in this process, with its threads setting
        pipeline = _make_pipeline(kind, model)
        parts = [_run_chunk(pipeline, piece) for piece in progress(pieces, len(pieces), "batches")]
    else:
        context = multiprocessing.get_context("spawn")
        with context.Pool(workers, initializer=_worker_init, initargs=(kind, model)) as pool:
            parts = list(progress(pool.imap(_embed_chunk, pieces), len(pieces), "batches"))
    matrix = np.concatenate([part[0] for part in parts])
    how = [h for part in parts for h in part[1]]
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        temporary = cache.with_name(cache.name + ".tmp.npz")
        np.savez(temporary, key=key, matrix=matrix, how=np.array(how))
        os.replace(temporary, cache)
    return Embeddings(paths, matrix, how)


Pipeline = Callable[[np.ndarray, Face | None, str], tuple[np.ndarray, str]]
"""(RGB photo, its central face or None, how that face was found) -> (row, how found)."""
_pipeline: Pipeline | None = None


def _make_pipeline(kind: str, model: str) -> Pipeline:
    pipelines: dict[str, Callable[[], Pipeline]] = {
        "kao": lambda: _kao_pipeline(model),
        "face_recognition": _face_recognition_pipeline,
        "faces": _faces_pipeline,
        "traits": _traits_pipeline,
    }
    return pipelines[kind]()


def _worker_init(kind: str, model: str) -> None:
    global _pipeline
    os.environ["KAO_THREADS"] = "1"
    _pipeline = _make_pipeline(kind, model)


def _embed_chunk(
    items: list[tuple[Path, np.ndarray | None, str]],
) -> tuple[np.ndarray, list[str]]:
    assert _pipeline is not None
    return _run_chunk(_pipeline, items)


def _run_chunk(
    pipeline: Pipeline, items: list[tuple[Path, np.ndarray | None, str]]
) -> tuple[np.ndarray, list[str]]:
    """The rows and how-found of `items` (photo, its `central_faces` row or None, how found)."""
    from kao.image import load_image

    results = [
        pipeline(load_image(path), None if row is None else _face(row), how)
        for path, row, how in items
    ]
    return np.stack([vector for vector, _ in results]), [how for _, how in results]


def _face(row: np.ndarray) -> Face:
    """The `Face` of a `central_faces` row."""
    return Face(row[:4].copy(), float(row[4]), row[5:].reshape(5, 2).copy())


def _central_face(detector: FaceDetector, low: FaceDetector, rgb: np.ndarray) -> tuple[Face, str]:
    """The face of an LFW photo and how it was found (see the module docstring)."""
    centre = np.array([rgb.shape[1] / 2, rgb.shape[0] / 2])
    face, how = _central(detector.detect(rgb), centre), "detected"
    if face is None:
        face, how = _central(low.detect(rgb), centre), "low-score"
    if face is None:
        box = np.array(CENTRE_BOX, np.float32)
        keypoints = np.array(CENTRE_KEYPOINTS, np.float32)
        face, how = Face(box, 0.0, keypoints), "centre-box"
    return face, how


def _faces_pipeline() -> Pipeline:
    from kao.detection import FaceDetector

    detector, low = FaceDetector(), FaceDetector(min_score=0.05)

    def run(rgb: np.ndarray, _: Face | None, __: str) -> tuple[np.ndarray, str]:
        face, how = _central_face(detector, low, rgb)
        row = np.concatenate([face.box, [face.score], np.ravel(face.keypoints)])
        return row.astype(np.float32), how

    return run


def _kao_pipeline(model: str) -> Pipeline:
    from kao.recognition.embedder import FaceEmbedder

    embedder = FaceEmbedder(model=model)

    def run(rgb: np.ndarray, face: Face | None, how: str) -> tuple[np.ndarray, str]:
        assert face is not None
        (embedded,) = embedder.embed_faces(rgb, [face])
        return embedded.embedding, how

    return run


def _traits_pipeline() -> Pipeline:
    from kao.attributes.age_gender import AgeGender
    from kao.geometry import head_pose
    from kao.landmarks import FaceMesh

    mesh, ages = FaceMesh(), AgeGender()

    def run(rgb: np.ndarray, face: Face | None, how: str) -> tuple[np.ndarray, str]:
        assert face is not None
        (meshed,) = mesh.run(rgb, [face])
        pose = (np.nan,) * 3
        if meshed.mesh is not None:
            angles = head_pose(meshed)
            pose = (angles.yaw, angles.pitch, angles.roll)
        (estimate,) = ages.predict(rgb, [face])
        return np.array([*pose, estimate.age], np.float32), how

    return run


def _face_recognition_pipeline() -> Pipeline:
    from kao.evaluation.baselines import import_face_recognition

    face_recognition = import_face_recognition()

    def run(rgb: np.ndarray, _: Face | None, __: str) -> tuple[np.ndarray, str]:
        centre = np.array([rgb.shape[1] / 2, rgb.shape[0] / 2])
        found = face_recognition.face_locations(rgb, 1)
        how = "detected"
        if not found:
            x1, y1, x2, y2 = (round(v) for v in CENTRE_BOX)
            found, how = [(y1, x2, y2, x1)], "centre-box"
        boxes = [np.array([left, top, right, bottom], float) for top, right, bottom, left in found]
        nearest = min(range(len(found)), key=lambda i: _distance(boxes[i], centre))
        (vector,) = face_recognition.face_encodings(rgb, [found[nearest]])
        return np.asarray(vector, np.float32), how

    return run


def _distance(box: np.ndarray, centre: np.ndarray) -> float:
    return float(np.linalg.norm((box[:2] + box[2:]) / 2 - centre))


def _central(faces: list[Face], centre: np.ndarray) -> Face | None:
    if not faces:
        return None
    return min(faces, key=lambda f: _distance(f.box, centre))


def verification(pairs: Sequence[Pair], embeddings: Embeddings) -> dict[str, object]:
    """10-fold accuracy: each fold is scored at the distance threshold that is best on the
    other nine. Returns accuracy (mean), std (of the fold accuracies), threshold (mean of the
    fold thresholds) and false-accept / false-reject rates at that threshold over all pairs."""
    index = embeddings.index()
    a = embeddings.matrix[[index[p.a] for p in pairs]]
    b = embeddings.matrix[[index[p.b] for p in pairs]]
    distance = np.linalg.norm(a - b, axis=1)
    same = np.array([p.same for p in pairs])
    folds = np.array([p.fold for p in pairs])
    accuracies, thresholds = [], []
    for fold in np.unique(folds):
        train = folds != fold
        threshold = best_threshold(distance[train], same[train])
        thresholds.append(threshold)
        accuracies.append(float(np.mean((distance[~train] < threshold) == same[~train])))
    threshold = float(np.mean(thresholds))
    accepted = distance < threshold
    return {
        "similarity_slope": logistic_slope(distance, same, threshold),
        "accuracy": float(np.mean(accuracies)),
        "std": float(np.std(accuracies)),
        "threshold": threshold,
        "false_accept_rate": float(np.mean(accepted[~same])),
        "false_reject_rate": float(np.mean(~accepted[same])),
        "fold_accuracies": [round(x, 4) for x in accuracies],
        "distances": distance,
        "same": same,
    }


def logistic_slope(distance: np.ndarray, same: np.ndarray, threshold: float) -> float:
    """The slope s (1/distance) of P(same | d) = 1 / (1 + exp(s (d - threshold))) that fits
    the pairs best (maximum likelihood)."""
    from scipy.optimize import minimize_scalar

    def loss(slope: float) -> float:
        z = slope * (distance - threshold)
        return float(np.sum(np.logaddexp(0, np.where(same, z, -z))))

    return float(minimize_scalar(loss, bounds=(0.1, 500.0), method="bounded").x)


def best_threshold(distance: np.ndarray, same: np.ndarray) -> float:
    """The distance threshold (same person when below it) with the highest accuracy, midway
    between two neighbouring distances (the middle of the best ones when several tie)."""
    order = np.argsort(distance, kind="stable")
    d, s = distance[order], same[order]
    # Accepting the first i pairs: correct = same pairs among them + different pairs after them.
    correct = np.concatenate([[0], np.cumsum(s)]) + np.concatenate(
        [[np.sum(~s)], np.sum(~s) - np.cumsum(~s)]
    )
    edges = np.concatenate([[d[0] - 1e-6], (d[1:] + d[:-1]) / 2, [d[-1] + 1e-6]])
    best = np.nonzero(correct == correct.max())[0]
    return float(edges[best[len(best) // 2]])


def people(embeddings: Embeddings) -> dict[str, list[int]]:
    """Row numbers of each person's photos (person = the photo's folder name)."""
    rows: dict[str, list[int]] = {}
    for i, path in enumerate(embeddings.paths):
        rows.setdefault(path.parent.name, []).append(i)
    return rows


def identification(embeddings: Embeddings, far: float = 0.01) -> dict[str, float]:
    """Open-set identification: gallery = the first photo of each person with two or more,
    probes = their other photos, impostors = the photos of people with one photo. Returns
    rank-1 accuracy of the probes and the detection-and-identification rate at the similarity
    threshold that `far` of the impostors exceed."""
    rows = people(embeddings)
    gallery = [r[0] for r in rows.values() if len(r) > 1]
    probes = [(i, k) for k, r in enumerate(r for r in rows.values() if len(r) > 1) for i in r[1:]]
    impostors = [r[0] for r in rows.values() if len(r) == 1]
    matrix = embeddings.matrix
    probe_sims = matrix[[i for i, _ in probes]] @ matrix[gallery].T
    impostor_best = (matrix[impostors] @ matrix[gallery].T).max(axis=1)
    threshold = float(np.quantile(impostor_best, 1 - far))
    truth = np.array([k for _, k in probes])
    rank1 = probe_sims.argmax(axis=1) == truth
    found = rank1 & (probe_sims.max(axis=1) > threshold)
    return {
        "rank1": float(rank1.mean()),
        "dir_at_far": float(found.mean()),
        "far": far,
        "similarity_threshold": threshold,
        "gallery": len(gallery),
        "probes": len(probes),
        "impostors": len(impostors),
    }


def grouping(embeddings: Embeddings, threshold: float) -> dict[str, float]:
    """Cluster the photos of every person with two or more and score the clusters pairwise."""
    from kao.recognition.cluster import cluster, pairwise_scores

    rows = [r for r in people(embeddings).values() if len(r) > 1]
    chosen = [i for r in rows for i in r]
    truth = np.array([k for k, r in enumerate(rows) for _ in r])
    labels = cluster(embeddings.matrix[chosen], threshold)
    scores = pairwise_scores(truth, labels)
    return {
        **scores,
        "faces": len(chosen),
        "people": len(rows),
        "clusters": int(labels.max() + 1),
        "threshold": threshold,
    }


FARS = (1e-1, 1e-2, 1e-3, 1e-4, 1e-5)
"""False-accept rates at which `accept_rates` reports the threshold and true-accept rate: the
per-model table of `kao.recognition.verify.FAR_TABLES`."""


def accept_rates(
    embeddings: Embeddings, fars: Sequence[float] = FARS, block: int = 512
) -> dict[str, object]:
    """True-accept rate at each false-accept rate of `fars` over every pair of the photos, by
    Euclidean distance as in `verification` (embeddings of any norm): genuine pairs are two
    photos of one person (same folder), impostor pairs two photos of two people. For each rate
    the threshold is the distance of the k-th closest impostor pair, k = ceil(rate x impostor
    pairs), so that fewer than k impostor pairs are accepted (distance below it). Rows are
    compared `block` at a time (memory about block x N x 4 bytes)."""
    names = [path.parent.name for path in embeddings.paths]
    label = np.unique(names, return_inverse=True)[1]
    matrix = np.asarray(embeddings.matrix, np.float32)
    norms = np.sum(matrix * matrix, axis=1)
    n = len(matrix)
    counts = np.bincount(label)
    genuine_total = int(np.sum(counts * (counts - 1) // 2))
    impostor_total = n * (n - 1) // 2 - genuine_total
    keep = max(1, int(np.ceil(max(fars) * impostor_total)))
    genuine: list[np.ndarray] = []
    closest = np.zeros(0, np.float32)
    for start in range(0, n, block):
        rows = slice(start, min(start + block, n))
        # Euclidean distances, |a - b|^2 = |a|^2 + |b|^2 - 2 a.b (rows need not be unit vectors).
        product = matrix[rows] @ matrix[start:].T
        squared = norms[rows, None] + norms[None, start:] - 2.0 * product
        distance = np.sqrt(np.maximum(0.0, squared))
        upper = np.triu(np.ones(distance.shape, bool), k=1)
        same = label[rows, None] == label[None, start:]
        genuine.append(distance[upper & same])
        others = np.concatenate([closest, distance[upper & ~same]])
        closest = np.partition(others, keep - 1)[:keep] if len(others) > keep else others
    closest.sort()
    genuine_distances = np.concatenate(genuine)
    rates = {}
    for far in fars:
        k = max(1, int(np.ceil(far * impostor_total)))
        threshold = float(closest[min(k, len(closest)) - 1])
        rates[f"{far:g}"] = {
            "threshold": round(threshold, 4),
            "true_accept_rate": round(float(np.mean(genuine_distances < threshold)), 4),
        }
    return {"genuine_pairs": genuine_total, "impostor_pairs": impostor_total, "at_far": rates}


HARD_KINDS = ("pose", "age")
"""What makes a pair hard in `hard_pairs`: the gap in head pose, or in estimated age."""
HARD_PAIRS = 600
"""Same-person pairs, and different-person pairs, that `hard_pairs` keeps."""


def pair_gaps(pairs: Sequence[Pair], traits: Embeddings, kind: str) -> np.ndarray:
    """The gap (P,) between the two photos of each pair by `traits` (`photo_traits`): for "pose"
    the difference of head direction, hypot(yaw gap, pitch gap) in degrees (roll is undone by
    alignment); for "age" the difference of the estimated ages in years. NaN where a photo's
    pose is unknown."""
    if kind not in HARD_KINDS:
        raise KaoError(f"unknown kind of hard pair {kind!r}; choose one of {', '.join(HARD_KINDS)}")
    index = traits.index()
    a = traits.matrix[[index[p.a] for p in pairs]].astype(np.float64)
    b = traits.matrix[[index[p.b] for p in pairs]].astype(np.float64)
    if kind == "age":
        return np.abs(a[:, 3] - b[:, 3])
    return np.hypot(a[:, 0] - b[:, 0], a[:, 1] - b[:, 1])


def hard_pairs(gaps: np.ndarray, same: np.ndarray, count: int = HARD_PAIRS) -> np.ndarray:
    """A mask (P,) of the `count` same-person pairs and the `count` different-person pairs with
    the largest `gaps` (NaN gaps last; ties in pair order)."""
    chosen = np.zeros(len(gaps), bool)
    for group in (same, ~same):
        rows = np.flatnonzero(group)
        order = np.argsort(-np.nan_to_num(gaps[rows], nan=-np.inf), kind="stable")
        chosen[rows[order[:count]]] = True
    return chosen


def scored_at(
    distance: np.ndarray, same: np.ndarray, threshold: float, strict_threshold: float
) -> dict[str, float]:
    """Pairs scored at one distance `threshold` (accepted below it): accuracy, false-reject
    rate of the same-person pairs, false-accept rate of the others; and the true-accept rate at
    `strict_threshold` (a model's FAR-1e-3 threshold)."""
    accepted = distance < threshold
    return {
        "pairs": len(distance),
        "accuracy": round(float(np.mean(accepted == same)), 4),
        "false_reject_rate": round(float(np.mean(~accepted[same])), 4),
        "false_accept_rate": round(float(np.mean(accepted[~same])), 4),
        "tar_at_far_1e-3": round(float(np.mean(distance[same] < strict_threshold)), 4),
    }


def hard_verification(
    pairs: Sequence[Pair],
    distance: np.ndarray,
    traits: Embeddings,
    kind: str,
    threshold: float,
    strict_threshold: float,
) -> dict[str, object]:
    """The standard pairs (`distance` (P,) of each) scored at `threshold` and `strict_threshold`
    (see `scored_at`), all of them and the hard ones (`hard_pairs` by `pair_gaps` of `kind`),
    with the gaps of the hard same-person pairs beside those of all same-person pairs."""
    same = np.array([p.same for p in pairs])
    gaps = pair_gaps(pairs, traits, kind)
    hard = hard_pairs(gaps, same)
    unit = "deg" if kind == "pose" else "years"
    return {
        "kind": kind,
        "threshold": round(threshold, 4),
        "far_1e-3_threshold": round(strict_threshold, 4),
        "all": scored_at(distance, same, threshold, strict_threshold),
        "hard": scored_at(distance[hard], same[hard], threshold, strict_threshold),
        f"same_pair_gap_{unit}": {
            "hard_min": round(float(np.nanmin(gaps[hard & same])), 1),
            "hard_median": round(float(np.nanmedian(gaps[hard & same])), 1),
            "all_median": round(float(np.nanmedian(gaps[same])), 1),
        },
        "unknown_gaps": int(np.isnan(gaps).sum()),
    }
