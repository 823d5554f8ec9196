"""EdgeFace: the ONNX port against PyTorch's outputs, the alignment, and real faces."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import shared_file

from kao.errors import GalleryError, KaoError
from kao.evaluation import lfw
from kao.face import Face
from kao.gallery.records import check_model_dimension
from kao.recognition.cluster import GROUP_THRESHOLDS
from kao.recognition.edgeface import (
    SIZES,
    TEMPLATE,
    WEIGHTS,
    EdgeFaceEmbedder,
    align,
    similarity_transform,
)
from kao.recognition.embedder import RECOGNITION_MODELS, FaceEmbedder

PEOPLE = (
    ("Colin_Powell", 40, 49),
    ("Tony_Blair", 18, 32),
    ("Serena_Williams", 1, 3),
    ("Laura_Bush", 1, 11),
)
"""Two LFW photos of each of four people."""


def _unit(matrix: np.ndarray) -> np.ndarray:
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


@pytest.mark.parametrize("size", SIZES)
def test_onnx_network_matches_the_pytorch_reference(size: str) -> None:
    """The committed ONNX file gives the float PyTorch network's outputs (written by
    scripts/convert_edgeface.py) to 1e-5 after normalisation, in shape (N, 512) float32."""
    with np.load(WEIGHTS / f"edgeface_{size}_reference.npz") as reference:
        images, expected = reference["images"], reference["embeddings"]
    actual = EdgeFaceEmbedder(size).embed_chips(images)
    assert actual.shape == (len(images), 512) and actual.dtype == np.float32
    assert np.allclose(np.linalg.norm(actual, axis=1), 1.0, atol=1e-6)
    assert np.abs(actual - _unit(expected)).max() < 1e-5
    assert EdgeFaceEmbedder(size).embed_chips(images[:0]).shape == (0, 512)


def _dot(point: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A black RGB image of `shape` (H, W) with a white disc of radius 5 px at `point`."""
    image = np.zeros((*shape, 3), np.uint8)
    cv2.circle(image, (round(point[0] * 16), round(point[1] * 16)), 5 * 16, (255,) * 3, -1, shift=4)
    return image


def test_alignment_puts_the_keypoints_on_the_template() -> None:
    """Keypoints moved by a known rotation, scale and shift come back onto the ArcFace template,
    each in its own place (so the order right eye, left eye, nose, mouth corners holds): a dot
    drawn at keypoint i has its centre within a pixel of template point i in the crop."""
    angle, scale, shift = np.radians(25.0), 2.7, np.array([140.0, 95.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    keypoints = TEMPLATE @ (scale * rotation).T + shift
    matrix = similarity_transform(keypoints, TEMPLATE)
    assert np.abs(np.hstack([keypoints, np.ones((5, 1))]) @ matrix.T - TEMPLATE).max() < 1e-9
    for point, (x, y) in zip(keypoints, TEMPLATE, strict=True):
        crop = align(_dot(point, (480, 520)), keypoints.astype(np.float32))
        assert crop.shape == (112, 112, 3) and crop.dtype == np.uint8
        weight = crop[:, :, 0].astype(np.float64)
        ys, xs = np.mgrid[:112, :112]
        centre = np.array([(xs * weight).sum(), (ys * weight).sum()]) / weight.sum()
        assert np.hypot(*(centre - (x, y))) < 1.0


def test_a_detected_face_fits_the_template() -> None:
    """The detector's keypoints are in the template's order: on a real frontal photo the fitted
    transform brings every keypoint within 5 px of its template point (swapped eyes or mouth
    corners would leave them 30 px or more away)."""
    from kao.detection import detect

    face = max(detect(_photos()[0]), key=lambda f: f.area)
    matrix = similarity_transform(face.keypoints, TEMPLATE)
    moved = np.hstack([face.keypoints, np.ones((5, 1))]) @ matrix.T
    assert np.linalg.norm(moved - TEMPLATE, axis=1).max() < 5.0


def _photos() -> list[Path]:
    return [
        shared_file(f"data/lfw/lfw-deepfunneled/{name}/{name}_{n:04d}.jpg")
        for name, *numbers in PEOPLE
        for n in numbers
    ]


@pytest.mark.parametrize("model", [m for m in RECOGNITION_MODELS if m.startswith("edgeface")])
def test_same_person_is_closer_than_different_people(model: str) -> None:
    """On real LFW photos, through detection and alignment: every distance between two photos
    of one person is below every distance between photos of two people."""
    embedder = FaceEmbedder(model=model)
    assert embedder.model_name == model and embedder.dimension == 512
    vectors = np.stack([embedder.embed_one(path)[0].embedding for path in _photos()])
    assert vectors.shape == (2 * len(PEOPLE), 512) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    distances = np.linalg.norm(vectors[:, None] - vectors[None], axis=2)
    person = np.arange(len(vectors)) // 2
    same = (person[:, None] == person[None]) & ~np.eye(len(vectors), dtype=bool)
    different = person[:, None] != person[None]
    assert distances[same].max() < distances[different].min()


def test_models_are_named_and_checked() -> None:
    """Each model stores its own name; an unknown model or a face without keypoints is a clear
    error; the gallery knows EdgeFace embeddings are 512-d."""
    assert len(set(RECOGNITION_MODELS)) == len(RECOGNITION_MODELS) == 3
    with pytest.raises(KaoError, match=r"unknown recognition model 'arcface'.*edgeface_xxs"):
        FaceEmbedder(model="arcface")
    with pytest.raises(KaoError, match=r"unknown recognition model 'dlib'"):
        lfw.embed_images([Path("photo.jpg")], model="dlib")
    rgb = np.zeros((100, 100, 3), np.uint8)
    blank = Face(np.array([10, 10, 60, 70], np.float32), 0.9, np.zeros((5, 2), np.float32))
    with pytest.raises(KaoError, match=r"face 1 \(box \[10, 10, 60, 70\]\) has no keypoints"):
        EdgeFaceEmbedder("xxs").embed(rgb, [blank])
    check_model_dimension("edgeface_xs", 512)
    with pytest.raises(GalleryError, match=r"'edgeface_xxs' makes 512-dimensional"):
        check_model_dimension("edgeface_xxs", 128)


def test_lfw_embeddings_are_cached_per_model(tmp_path: Path) -> None:
    """A cache of one model's LFW embeddings is not reused for another model."""
    paths = _photos()[:2]
    cache = tmp_path / "lfw.npz"
    first = lfw.embed_images(paths, "kao", 1, cache, model="edgeface_xxs")
    assert first.matrix.shape == (2, 512) and first.how == ["detected", "detected"]
    second = lfw.embed_images(paths, "kao", 1, cache, model="dlib_resnet_v1")
    assert second.matrix.shape == (2, 128)


def test_accept_rates_over_all_pairs() -> None:
    """TAR at FAR over every pair of photos, computed in blocks, equals a direct count on
    Euclidean distances (of vectors that are not unit length, as face_recognition's): the
    threshold is the k-th closest impostor pair, fewer than far x impostors are accepted."""
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(6, 8))
    vectors = np.repeat(centres, 3, axis=0) + rng.normal(scale=0.6, size=(18, 8))
    paths = [Path(f"person{i // 3}") / f"{i}.jpg" for i in range(18)]
    embeddings = lfw.Embeddings(paths, vectors.astype(np.float32), ["detected"] * 18)
    result = lfw.accept_rates(embeddings, fars=(0.1, 0.02), block=4)
    i, j = np.triu_indices(18, 1)
    distance = np.linalg.norm(vectors[i] - vectors[j], axis=1)
    same = i // 3 == j // 3
    impostors = np.sort(distance[~same])
    assert (result["genuine_pairs"], result["impostor_pairs"]) == (18, 135)
    for far in (0.1, 0.02):
        threshold = impostors[int(np.ceil(far * len(impostors))) - 1]
        entry = result["at_far"][f"{far:g}"]
        assert entry["threshold"] == pytest.approx(threshold, abs=1e-4)
        assert entry["true_accept_rate"] == pytest.approx(
            np.mean(distance[same] < threshold), abs=1e-4
        )
        assert np.mean(impostors < threshold) < far


def _small_lfw(root: Path) -> Path:
    """An LFW folder of the `PEOPLE` photos and one photo of two other people (links), and
    pairs.txt of 2 folds of 1 + 1 pairs."""
    for name, *numbers in (*PEOPLE, ("Vladimir_Putin", 16), ("Gerhard_Schroeder", 5)):
        (root / "lfw-deepfunneled" / name).mkdir(parents=True)
        for n in numbers:
            link = lfw.image_path(root, name, n)
            link.symlink_to(shared_file(f"data/lfw/lfw-deepfunneled/{name}/{link.name}"))
    (a, a1, a2), (b, b1, _), (c, c1, c2), (d, d1, _) = PEOPLE
    (root / "pairs.txt").write_text(
        f"2 1\n{a} {a1} {a2}\n{a} {a1} {b} {b1}\n{c} {c1} {c2}\n{c} {c1} {d} {d1}\n"
    )
    return root


def test_cli_evaluates_a_chosen_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`kao eval lfw`, `identify` and `group` with `--model` run that model and say so (group
    at the model's own cut); the LFW report has the true-accept rates over all pairs."""
    from kao.cli import main

    data = str(_small_lfw(tmp_path / "lfw"))
    options = ["--data", data, "--model", "edgeface_xxs", "--json", "--no-cache", "--workers", "1"]
    assert main(["eval", "lfw", *options]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"] == "edgeface_xxs" and report["accuracy"] == 1.0
    assert report["all_pairs"]["genuine_pairs"] == 4
    assert report["all_pairs"]["impostor_pairs"] == 10 * 9 // 2 - 4
    assert main(["eval", "identify", *options]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"] == "edgeface_xxs" and report["rank1"] == 1.0
    assert main(["eval", "group", *options]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"] == "edgeface_xxs" and report["f1"] == 1.0
    assert report["threshold"] == GROUP_THRESHOLDS["edgeface_xxs"]


def test_verify_with_an_edgeface_embedder() -> None:
    """`kao.verify` with an EdgeFace embedder uses that model's own calibrated threshold."""
    from kao.recognition.verify import CALIBRATIONS, verify

    embedder = FaceEmbedder(model="edgeface_xxs")
    photos = _photos()
    same = verify(photos[0], photos[1], embedder=embedder)
    assert same.same and same.model == "edgeface_xxs"
    assert same.threshold == CALIBRATIONS["edgeface_xxs"].threshold and same.similarity > 0.5
    assert not verify(photos[0], photos[2], embedder=embedder).same


def test_a_gallery_identifies_with_an_edgeface_embedder(url: str) -> None:
    """A `FaceDatabase` (SQLite and PostgreSQL) on an EdgeFace embedder stores 512-d "edgeface_xxs"
    faces and decides known / unknown at that model's threshold, not dlib's: a stranger is
    unknown, a new photo of an enrolled person is that person."""
    from kao.gallery.database import FaceDatabase

    photos = _photos()
    with FaceDatabase(url, FaceEmbedder(model="edgeface_xxs")) as database:
        database.create_collection("c")
        database.enroll("c", "colin", [photos[0]])
        database.enroll("c", "tony", [photos[2]])
        (face,) = database.faces("c", "colin")
        assert face.model == "edgeface_xxs" and face.embedding.shape == (512,)
        probe, _, _ = database.embedder_for("c").embed_one(photos[1])  # its largest of 3 faces
        (known,) = database.identify_faces("c", [probe])
        assert known.person == "colin"
        (stranger,) = database.identify("c", photos[4])
        assert stranger.person is None and stranger.matches


def test_grouping_with_an_edgeface_embedder_uses_its_own_cut() -> None:
    """`kao.group` with an EdgeFace embedder and no threshold cuts at that model's distance
    (dlib's 0.35 would leave every photo alone): 6 one-face photos of 3 people, 3 groups."""
    from kao.recognition.cluster import group

    assert set(GROUP_THRESHOLDS) == set(RECOGNITION_MODELS)
    people = (("Tony_Blair", 48, 53), ("Gerhard_Schroeder", 17, 25), ("Colin_Powell", 71, 133))
    photos = [
        str(shared_file(f"data/lfw/lfw-deepfunneled/{name}/{name}_{n:04d}.jpg"))
        for name, *numbers in people
        for n in numbers
    ]
    grouping = group(photos, embedder=FaceEmbedder(model="edgeface_xs"))
    assert len(grouping.found) == 6
    found = sorted(sorted(grouping.found[i].image for i in g) for g in grouping.groups)
    assert found == sorted([photos[0:2], photos[2:4], photos[4:6]])
