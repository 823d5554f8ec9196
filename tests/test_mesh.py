"""`kao mesh`: mesh files that parse back, textures, previews and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kao.cli import main
from kao.geometry.preview import BACKGROUND
from tests.conftest import shared_file

PHOTO = "data/lfw/lfw-deepfunneled/Aaron_Eckhart/Aaron_Eckhart_0001.jpg"
GROUP = "data/widerface_val_subset/images/0_Parade_Parade_0_194.jpg"


def _read_obj(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    vertices, uvs, faces, materials = [], [], [], []
    for line in path.read_text().splitlines():
        fields = line.split()
        if fields and fields[0] == "v":
            vertices.append([float(v) for v in fields[1:]])
        elif fields and fields[0] == "vt":
            uvs.append([float(v) for v in fields[1:]])
        elif fields and fields[0] == "f":
            faces.append([[int(i) for i in corner.split("/")] for corner in fields[1:]])
        elif fields and fields[0] == "mtllib":
            materials.append(fields[1])
    return np.array(vertices), np.array(uvs), np.array(faces), materials


def test_obj_with_material_texture_and_preview(tmp_path: Path, capsys) -> None:
    out = tmp_path / "face.obj"
    assert main(["mesh", str(shared_file(PHOTO)), "--out", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    vertices, uvs, faces, materials = _read_obj(out)
    assert vertices.shape == (468, 3) and uvs.shape == (468, 2)
    assert faces.shape == (898, 3, 2)
    assert faces.min() >= 1 and faces.max() <= 468
    assert np.all((uvs >= 0) & (uvs <= 1))
    material = out.with_name(materials[0])
    texture_name = next(
        line.split()[1] for line in material.read_text().splitlines() if line.startswith("map_Kd")
    )
    texture = Image.open(out.with_name(texture_name))
    assert texture.size == (512, 512)
    assert np.asarray(texture).std() > 10  # the photo, not a blank
    preview = Image.open(report["preview"])
    photo = Image.open(shared_file(PHOTO))
    assert preview.size == (2 * photo.width, photo.height)
    render = np.asarray(preview)[:, photo.width :]
    assert (render != BACKGROUND).any(axis=2).mean() > 0.05  # the shaded face
    assert report["faces"][0]["files"] == [
        str(out),
        str(material),
        str(out.with_name(texture_name)),
    ]
    assert set(report["faces"][0]["pose"]) == {"yaw", "pitch", "roll"}
    # the mesh is upright in viewers: forehead (10) above chin (152), nose (1) in front
    assert vertices[10, 1] > vertices[152, 1] and vertices[1, 2] > vertices[234, 2]


def test_ply_with_colours(tmp_path: Path) -> None:
    out = tmp_path / "face.ply"
    assert main(["mesh", str(shared_file(PHOTO)), "--out", str(out)]) == 0
    lines = out.read_text().splitlines()
    end = lines.index("end_header")
    assert "element vertex 468" in lines[:end] and "element face 898" in lines[:end]
    rows = lines[end + 1 :]
    vertices = np.array([[float(v) for v in row.split()] for row in rows[:468]])
    assert vertices.shape == (468, 8)
    assert np.all((vertices[:, 3:6] >= 0) & (vertices[:, 3:6] <= 255))
    assert np.all((vertices[:, 6:] >= 0) & (vertices[:, 6:] <= 1))
    faces = np.array([[int(v) for v in row.split()] for row in rows[468:]])
    assert faces.shape == (898, 4) and np.all(faces[:, 0] == 3)
    assert faces[:, 1:].min() >= 0 and faces[:, 1:].max() < 468


def test_several_faces_get_numbered_files(tmp_path: Path, capsys) -> None:
    out = tmp_path / "group.obj"
    assert main(["mesh", str(shared_file(GROUP)), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "5 faces" in text
    assert not out.exists()
    for number in range(1, 6):
        assert (tmp_path / f"group_{number}.obj").exists()
        assert (tmp_path / f"group_{number}_texture.png").exists()
    assert (tmp_path / "group_preview.png").exists()


def test_cropped_input(tmp_path: Path) -> None:
    photo = Image.open(shared_file(PHOTO)).crop((60, 45, 190, 200))
    crop = tmp_path / "crop.png"
    photo.save(crop)
    assert main(["mesh", str(crop), "--out", str(tmp_path / "c.ply"), "--cropped"]) == 0
    assert (tmp_path / "c.ply").exists()


@pytest.mark.parametrize("kind", ["blank", "not_an_image", "format"])
def test_errors_exit_1(tmp_path: Path, capsys, kind: str) -> None:
    image = tmp_path / "input.png"
    out = tmp_path / "face.obj"
    if kind == "blank":
        Image.fromarray(np.full((200, 200, 3), 128, np.uint8)).save(image)
        expected = "no face"
    elif kind == "not_an_image":
        image.write_text("hello")
        expected = "input.png"
    else:
        image = shared_file(PHOTO)
        out = tmp_path / "face.stl"
        expected = "unknown mesh format"
    assert main(["mesh", str(image), "--out", str(out)]) == 1
    assert expected in capsys.readouterr().err
    assert not out.exists()


def test_meshes_keep_kao_detects_face_numbers(tmp_path: Path, capsys) -> None:
    """A band photo whose faces 2 and 6-13 FaceMesh does not see as faces: the meshes are
    faces 1, 3, 4 and 5, numbered (files, JSON, text) as `kao detect` prints them."""
    band = str(shared_file("data/widerface_val_subset/images/0_Parade_marchingband_1_359.jpg"))
    assert main(["detect", band, "--json"]) == 0
    (detected,) = json.loads(capsys.readouterr().out)
    assert main(["mesh", band, "--out", str(tmp_path / "band.ply"), "--json"]) == 0
    captured = capsys.readouterr()
    records = json.loads(captured.out)["faces"]
    assert [record["face"] for record in records] == [1, 3, 4, 5]
    for record in records:
        assert record["files"] == [str(tmp_path / f"band_{record['face']}.ply")]
        assert record["box"] == detected["faces"][record["face"] - 1]["box"]
    assert "face 2: no mesh: FaceMesh does not see a face in this box (presence" in captured.err
