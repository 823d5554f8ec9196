"""kao's front doors: every capability as a top-level function taking kao.detect's image inputs,
and the one gallery object, on real photos and on SQLite and PostgreSQL."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import kao
from kao.cli import main
from kao.errors import ConflictError, NotFoundError
from tests.conftest import LFW, shared_file
from tests.conftest import lfw_photo as lfw

PHOTO = "data/lfw/lfw-deepfunneled/George_W_Bush/George_W_Bush_0007.jpg"
CLOSE_UP = "data/widerface_val_subset/images/1_Handshaking_Handshaking_1_827.jpg"  # 3 faces
PERSONS = ("Adam_Sandler", "Alan_Greenspan")
GALLERY = Path(kao.__file__).parent / "gallery"


def image_forms(path: Path) -> list[object]:
    """One photo as each input kao.detect takes: path, str, bytes, RGB array, PIL image."""
    return [path, str(path), path.read_bytes(), kao.load_image(path), Image.open(path)]


def test_every_public_name_is_importable_and_documented() -> None:
    for name in kao.__all__:
        value = getattr(kao, name)
        assert (getattr(value, "__doc__", None) or "").strip() or not callable(value), name
    for name in ("group", "aligned_faces", "count_people", "age_face", "FaceDatabase"):
        assert name in kao.__all__


def test_aligned_faces_are_upright_crops_of_every_face() -> None:
    path = shared_file(PHOTO)
    faces = kao.detect(path)
    for image in image_forms(path):
        crops = kao.aligned_faces(image)
        assert len(crops) == len(faces) == 1
        assert crops[0].shape == (112, 112, 3) and crops[0].dtype == np.uint8
    (crop,) = kao.aligned_faces(path, faces, size=64, scale=1.0)
    assert crop.shape == (64, 64, 3)
    # Turned so that the eyes are level: the detector finds them on one row of the crop.
    (again,) = kao.detect(kao.aligned_faces(path, size=256)[0])
    right_eye, left_eye = again.keypoints[0], again.keypoints[1]
    assert abs(float(right_eye[1] - left_eye[1])) < 4.0
    with pytest.raises(ValueError, match="size must be >= 1"):
        kao.aligned_faces(path, size=0)


def test_group_sorts_photos_by_person_and_keeps_going_past_a_bad_one(tmp_path: Path) -> None:
    photos = [lfw(person, number) for number in (1, 2, 3) for person in PERSONS]
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a photo")
    grouping = kao.group([*photos, bad], thumbnail=48)
    assert isinstance(grouping, kao.Grouping)
    assert grouping.images == 7 and len(grouping.found) == 6
    assert [error.source for error in grouping.errors] == [str(bad)]
    persons = [{Path(grouping.found[i].image).parent.name for i in g} for g in grouping.groups]
    assert sorted(map(sorted, persons)) == [[p] for p in sorted(PERSONS)]
    assert all(f.thumbnail is not None and f.thumbnail.shape == (48, 48, 3) for f in grouping.found)
    # Every input form; thumbnails only when asked for.
    arrays = kao.group([kao.load_image(p) for p in photos])
    assert arrays.groups == grouping.groups and arrays.found[0].thumbnail is None


def test_kao_group_prints_what_kao_group_returns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = LFW / PERSONS[0]
    shared_file(f"data/lfw/lfw-deepfunneled/{PERSONS[0]}")
    assert main(["group", "--json", "--out", str(tmp_path), str(folder)]) == 0
    printed = json.loads(capsys.readouterr().out)
    expected = kao.group(sorted(folder.glob("*.jpg"))).to_dict()
    assert printed["people"] == expected["people"] and printed["faces"] == expected["faces"]
    assert [len(g["faces"]) for g in printed["groups"]] == [
        len(g["faces"]) for g in expected["groups"]
    ]
    crops = sorted((tmp_path / "person_001").glob("*.jpg"))
    assert len(crops) == len(printed["groups"][0]["faces"])
    assert Image.open(crops[0]).size == (112, 112)


def test_count_people_on_a_close_up_counts_the_faces() -> None:
    path = shared_file(CLOSE_UP)
    counted = kao.count_people(path)
    assert isinstance(counted, kao.CrowdCount)
    assert counted.method == "detection" and counted.count == 3 == len(counted.faces)
    assert kao.count_people(Image.open(path)).count == 3
    density = kao.count_people(path.read_bytes(), "density")
    assert density.method in ("density-A", "density-B") and density.density is not None
    height, width = kao.load_image(path).shape[:2]
    assert density.density.shape == (height // 4, width // 4)


def test_age_face_moves_the_face_and_keeps_the_background() -> None:
    path = shared_file(PHOTO)
    rgb = kao.load_image(path)
    older = kao.age_face(path, 75, source_age=30)
    assert older.shape == rgb.shape and older.dtype == np.uint8
    (face,) = kao.detect(rgb)
    x1, y1, x2, y2 = (int(v) for v in face.box)
    inside = np.abs(older[y1:y2, x1:x2].astype(int) - rgb[y1:y2, x1:x2]).mean()
    assert inside > 3.0
    assert np.array_equal(older[:10, :10], rgb[:10, :10])  # a corner far from the face
    same = kao.age_face(Image.open(path), 75, face=face, source_age=30)
    assert np.abs(same.astype(int) - older).mean() < 1.0  # the same face, given or found
    with pytest.raises(kao.KaoError, match="no face found"):
        kao.age_face(np.full((200, 200, 3), 128, np.uint8), 70, source_age=30)


@pytest.mark.usefixtures("private_cache")
def test_one_gallery_object_lists_renames_deletes_exports(url: str, tmp_path: Path) -> None:
    with kao.FaceDatabase(url) as db:
        assert db.list_collections() == []
        db.create_collection("empty")
        with pytest.raises(ConflictError):
            db.create_collection("empty")
        ids = db.enroll("friends", "adam", [lfw("Adam_Sandler", 1), lfw("Adam_Sandler", 2)])
        db.enroll("friends", "alan", [lfw("Alan_Greenspan", 1)])
        listed = {(c.name, c.persons, c.faces) for c in db.list_collections()}
        assert listed == {("empty", 0, 0), ("friends", 2, 3)}
        assert [(p.person, p.faces) for p in db.persons("friends")] == [("adam", 2), ("alan", 1)]
        assert [f.id for f in db.faces("friends", "adam")] == ids
        before = db.revision("friends")
        db.rename_person("friends", "adam", "Adam Sandler")
        assert db.revision("friends") > before
        assert db.identify("friends", lfw("Adam_Sandler", 3))[0].person == "Adam Sandler"
        db.delete_face("friends", ids[0])
        assert db.export("friends", tmp_path / "friends.jsonl") == 2
        assert db.delete_person("friends", "Adam Sandler") == 1
        assert [p.person for p in db.persons("friends")] == ["alan"]
        assert db.identify("friends", lfw("Adam_Sandler", 3))[0].person != "Adam Sandler"
        assert db.import_("copy", tmp_path / "friends.jsonl") == 2
        assert [(p.person, p.faces) for p in db.persons("copy")] == [
            ("Adam Sandler", 1),
            ("alan", 1),
        ]
        db.delete_collection("empty")
        with pytest.raises(NotFoundError):
            db.persons("empty")
        assert [c.name for c in db.list_collections()] == ["copy", "friends"]


@pytest.mark.usefixtures("private_cache")
def test_listing_and_deleting_load_no_model(
    url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def no_model() -> None:
        raise AssertionError("the embedder was loaded")

    monkeypatch.setattr("kao.gallery.database.default_embedder", no_model)
    with kao.FaceDatabase(url) as db:
        db.create_collection("c")
        assert [c.name for c in db.list_collections()] == ["c"]
        assert db.persons("c") == [] and db.faces("c") == []
        db.delete_collection("c")


def test_gallery_back_ends_do_not_import_the_factory() -> None:
    """store.py (the shared Gallery) imports neither back-end, and the back-ends import neither
    the factory nor anything that imports them: the modules form no circle."""

    def imported(name: str) -> set[str]:
        tree = ast.parse((GALLERY / f"{name}.py").read_text())
        found = set()
        for node in ast.walk(tree):  # function-level imports count too
            if isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
        return {module for module in found if module.startswith("kao.gallery")}

    back_ends = {"kao.gallery.sqlite", "kao.gallery.postgres"}
    assert not imported("store") & (back_ends | {"kao.gallery.connect"})
    for back_end in ("sqlite", "postgres"):
        assert "kao.gallery.connect" not in imported(back_end)
        assert not imported(back_end) & back_ends
    assert back_ends <= imported("connect")
    assert kao.gallery.open_gallery.__module__ == "kao.gallery.connect"


def test_kao_age_transform_numbers_faces_from_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = str(shared_file(PHOTO))
    out = tmp_path / "grid.png"
    args = ["age-transform", path, "--ages", "70", "--from-age", "30", "--out", str(out)]
    assert main([*args, "--face", "2"]) == 1
    assert "face 2 asked for, but 1 found (numbered 1 to 1)" in capsys.readouterr().err
    assert main([*args, "--face", "1", "--tile", "64"]) == 0 and out.is_file()
