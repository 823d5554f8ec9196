"""`kao mesh`: each face of a photo as a textured 3D mesh file, with a rendered preview."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from kao.cli.batch import add_device_option
from kao.cli.text import counted
from kao.detection import FaceDetector
from kao.errors import KaoError
from kao.face import Face
from kao.geometry import gaze, head_pose, preview, write_mesh
from kao.geometry.export import FORMATS
from kao.image import load_image
from kao.landmarks import FaceMesh


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `kao mesh` to the `kao` parser."""
    parser = subparsers.add_parser(
        "mesh",
        help="3D face meshes (.obj with texture, or .ply) and a preview",
        description="Write each face of IMAGE as a textured 3D mesh (468 FaceMesh vertices, "
        "MediaPipe's triangles and UVs). One face: OUT itself; several: <stem>_N for face N, "
        "numbered from 1 as kao detect prints them (a face FaceMesh does not see as a face "
        "is reported and skipped). Also writes <stem>_preview.png: the photo beside a shaded "
        "render of the meshes.",
    )
    parser.add_argument("image", type=Path, metavar="IMAGE")
    parser.add_argument(
        "--out", type=Path, required=True, help="mesh file: name.obj (+ .mtl, texture) or .ply"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument(
        "--cropped", action="store_true", help="IMAGE is already one face crop (no detection)"
    )
    add_device_option(parser)
    parser.set_defaults(run=run)


def mesh_paths(out: Path, numbers: list[int]) -> list[Path]:
    """Where the meshes of the faces `numbers` (from 1) go: `out` for one face,
    `<stem>_<number><suffix>` for several."""
    if len(numbers) == 1:
        return [out]
    return [out.with_name(f"{out.stem}_{n}{out.suffix}") for n in numbers]


def meshed_faces(rgb: np.ndarray, image: Path, cropped: bool) -> dict[int, Face]:
    """{face number (from 1, `kao detect` order): the face with its mesh}; a face FaceMesh does
    not see as a face is reported on stderr and left out. KaoError when none is left."""
    mesher = FaceMesh()
    if cropped:
        return {1: mesher.run_cropped(rgb)}
    faces = dict(enumerate(mesher.run(rgb, FaceDetector().detect(rgb)), 1))
    for number, face in faces.items():
        if face.mesh is None:
            reason = (face.missing or {}).get("mesh")
            print(f"kao: {image}: face {number}: no mesh: {reason}", file=sys.stderr)
    meshed = {number: face for number, face in faces.items() if face.mesh is not None}
    if not meshed:
        raise KaoError(f"{image}: no face found")
    return meshed


def run(args: argparse.Namespace) -> int:
    if args.out.suffix.lower() not in FORMATS:
        raise KaoError(f"{args.out}: unknown mesh format (use .obj or .ply)")
    rgb = load_image(args.image)
    meshed = meshed_faces(rgb, args.image, args.cropped)
    faces = list(meshed.values())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    records: list[dict[str, Any]] = []
    for (number, face), path in zip(
        meshed.items(), mesh_paths(args.out, list(meshed)), strict=True
    ):
        files = write_mesh(path, rgb, face)
        pose = head_pose(face)
        records.append(
            {
                "face": number,
                "files": [str(file) for file in files],
                "box": [round(float(v), 1) for v in face.box],
                "pose": pose.to_dict(),
                "gaze": gaze(face),
            }
        )
    shown = args.out.with_name(f"{args.out.stem}_preview.png")
    Image.fromarray(preview(rgb, faces)).save(shown)
    if args.json:
        print(json.dumps({"image": str(args.image), "faces": records, "preview": str(shown)}))
        return 0
    print(f"{args.image}: {counted(len(faces), 'face')}")
    for record in records:
        pose = record["pose"]
        print(
            f"  face {record['face']}: {', '.join(record['files'])}  yaw {pose['yaw']:+.1f} "
            f"pitch {pose['pitch']:+.1f} roll {pose['roll']:+.1f}"
        )
    print(f"  preview: {shown}")
    return 0
