"""Build kao's age-group prototypes (`kao/aging/prototypes.npz`) from UTKFace training faces.

Every face crop under --data (UTKFace names, `<age>_<gender>_<race>_<date>...jpg`) is read by
FaceMesh as a ready crop; faces turned more than --max-angle degrees (yaw or pitch) are left
out so the means stay sharp; at most --per-band faces per age band are used (a fixed random
draw). Then the mean shape per band and the mean texture per band on the common mean shape.

    .venv/bin/python scripts/build_age_prototypes.py --data ../shared/data/utkface_train

Keep ../shared/data/utkface (the evaluation faces) out of it."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from kao.aging.prototypes import BANDS, PROTOTYPES, PrototypeBuilder, band_of
from kao.errors import KaoError
from kao.evaluation.utkface import load_faces
from kao.geometry import head_pose
from kao.image import load_image
from kao.landmarks import FaceMesh
from kao.progress import progress


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="UTKFace training folder")
    parser.add_argument("--out", type=Path, default=PROTOTYPES)
    parser.add_argument("--per-band", type=int, default=500, help="faces per band at most")
    parser.add_argument("--max-angle", type=float, default=20.0, help="degrees of yaw/pitch")
    args = parser.parse_args()

    faces, _ = load_faces(args.data)
    bands = np.array(BANDS)
    rng = np.random.default_rng(0)
    chosen = []
    for index in range(len(bands)):
        members = [f for f in faces if band_of(bands, f.age) == index]
        order = rng.permutation(len(members))
        chosen.extend(members[i] for i in order)  # shuffled; cut at --per-band below
    mesher = FaceMesh(iris=False)
    builder = PrototypeBuilder()
    kept: list[tuple[Path, np.ndarray]] = []
    taken = np.zeros(len(bands), int)
    start = time.time()
    rejected = {"no_mesh": 0, "turned": 0}
    for face in progress(chosen, len(chosen)):
        band = band_of(bands, face.age)
        if band is None or taken[band] >= args.per_band:
            continue
        rgb = load_image(face.path)
        try:
            found = mesher.run_cropped(rgb)
        except KaoError:
            rejected["no_mesh"] += 1
            continue
        pose = head_pose(found)
        if max(abs(pose.yaw), abs(pose.pitch)) > args.max_angle:
            rejected["turned"] += 1
            continue
        builder.add_shape(found.mesh, face.age)
        kept.append((face.path, found.mesh))
        taken[band] += 1
    for index, (path, mesh) in enumerate(progress(kept, len(kept))):
        builder.add_texture(index, load_image(path), mesh)
    prototypes = builder.finish()
    prototypes.save(args.out)
    print(f"{len(kept)} faces in {time.time() - start:.0f} s; left out: {rejected}")
    for label, count in zip(prototypes.labels, prototypes.counts, strict=True):
        print(f"  {label:>6}: {count}")
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
