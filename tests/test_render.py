"""Drawings a person can read (`kao.render`): captions laid out without overlaps inside the
image, numbered tags and a legend on crowded photos, text sized for the screen on a 300-pixel
and a 4,000-pixel photo, one age in the caption and the text, and `--draw`."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from kao.analysis import FaceAnalyzer
from kao.cli import main
from kao.cli.analyze import print_text
from kao.detection import FaceDetector, analysis_detector
from kao.errors import KaoError
from kao.face import Face
from kao.image import load_image
from kao.render import (
    DETECT_DRAWING,
    GAZE_COLOUR,
    TEXT_PX,
    VIEW_PX,
    Layout,
    PlacedLabel,
    age_text,
    banner_rect,
    caption,
    draw_faces,
    layout_labels,
    parse_drawing,
    text_style,
)
from tests.conftest import shared_file

CROWD = "data/widerface_val_subset/images/0_Parade_marchingband_1_172.jpg"  # 112 faces, 416 px
PORTRAIT = "data/lfw/lfw-deepfunneled/Tony_Blair/Tony_Blair_0018.jpg"  # one face, 250 x 250
LONG_SIDE = 4000


@pytest.fixture(scope="module")
def crowd() -> tuple[np.ndarray, list[Face]]:
    """The crowded Parade photo and its faces (about 70, most under 25 px)."""
    rgb = load_image(shared_file(CROWD))
    return rgb, FaceDetector().detect(rgb)


@pytest.fixture(scope="module")
def portrait() -> tuple[np.ndarray, Face]:
    """A one-face LFW photo and its analysed face (age, gender, emotion, mask)."""
    rgb = load_image(shared_file(PORTRAIT))
    (face,) = FaceAnalyzer(analysis_detector()).analyze(rgb)
    return rgb, face


def _scaled(rgb: np.ndarray, faces: list[Face], long_side: int) -> tuple[np.ndarray, list[Face]]:
    """`rgb` resized to `long_side` pixels on its long side, and its `faces` with it."""
    factor = long_side / max(rgb.shape[:2])
    big = cv2.resize(rgb, None, fx=factor, fy=factor, interpolation=cv2.INTER_LINEAR)
    scaled = [
        dataclasses.replace(face, box=face.box * factor, keypoints=face.keypoints * factor)
        for face in faces
    ]
    return big, scaled


def _check_disjoint_and_inside(layout: Layout, shape: tuple[int, ...]) -> None:
    height, width = shape[:2]
    for label in layout.labels:
        x1, y1, x2, y2 = label.rect
        assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height, label
    for a, b in itertools.combinations(layout.labels, 2):
        (ax1, ay1, ax2, ay2), (bx1, by1, bx2, by2) = a.rect, b.rect
        assert ax2 <= bx1 or bx2 <= ax1 or ay2 <= by1 or by2 <= ay1, (a, b)


@pytest.mark.parametrize("size", ["original", "4000 px"])
def test_a_crowded_photo_gets_numbered_tags_that_never_overlap(
    crowd: tuple[np.ndarray, list[Face]], size: str
) -> None:
    rgb, faces = crowd if size == "original" else _scaled(*crowd, LONG_SIDE)
    assert len(faces) > 40
    style = text_style(rgb.shape)
    captions = [caption(face, DETECT_DRAWING) for face in faces]
    banner = banner_rect(rgb.shape, "30.0 fps")  # a frame rate written at the top left
    boxes = [face.box for face in faces]
    layout = layout_labels(rgb.shape, boxes, captions, style, reserved=[banner])
    assert layout.tagged
    assert sorted(label.face for label in layout.labels) == list(range(len(faces)))
    assert [label.text for label in layout.labels] == [str(n + 1) for n in range(len(faces))]
    assert layout.legend == [f"{n}: {text}" for n, text in enumerate(captions, 1)]
    _check_disjoint_and_inside(layout, rgb.shape)
    with_banner = dataclasses.replace(layout, labels=[*layout.labels, PlacedLabel("", banner, -1)])
    _check_disjoint_and_inside(with_banner, rgb.shape)


def test_a_portrait_gets_its_caption_inside_the_image(portrait: tuple[np.ndarray, Face]) -> None:
    """Beside the face on one line when it fits (500 px), one line per part when the line is
    wider than the photo (250 px)."""
    rgb, face = portrait
    small = layout_labels(rgb.shape, [face.box], [caption(face)], text_style(rgb.shape))
    assert not small.tagged
    assert [label.text for label in small.labels] == [caption(face).replace(" | ", "\n")]
    _check_disjoint_and_inside(small, rgb.shape)
    rgb, (face,) = _scaled(rgb, [face], 500)
    text = caption(face)
    assert age_text(face.age) in text and face.gender.label in text  # type: ignore[union-attr, arg-type]
    layout = layout_labels(rgb.shape, [face.box], [text], text_style(rgb.shape))
    assert not layout.tagged and [label.text for label in layout.labels] == [text]
    _check_disjoint_and_inside(layout, rgb.shape)
    drawn = draw_faces(rgb, [face], {"box", "age", "gender", "emotion", "mask"})
    assert drawn.shape == rgb.shape  # no legend


def test_the_legend_goes_under_a_crowded_photo(crowd: tuple[np.ndarray, list[Face]]) -> None:
    """About 70 analysis captions: in columns (the copy wider than the photo, white beside it)
    so that the legend is no taller than the photo (4 columns at most)."""
    rgb, faces = crowd
    height, width = rgb.shape[:2]
    captions = [f"female {20 + n % 50} | neutral 40% | no mask" for n in range(len(faces))]
    drawn = draw_faces(rgb, faces, captions=captions)
    assert width < drawn.shape[1] and height + 10 * TEXT_PX < drawn.shape[0] <= 2 * height
    assert (drawn[:height, width:] == 255).all()
    legend = drawn[height:]
    assert (legend < 100).any() and (legend == 255).mean() > 0.5  # black text on white


def _text_height(drawn: np.ndarray, rect: tuple[int, int, int, int]) -> int:
    """Rows of the label `rect` of `drawn` that hold text (black on green: dark green)."""
    x1, y1, x2, y2 = rect
    dark = (drawn[y1:y2, x1:x2, 1] < 128).any(axis=1)
    rows = np.flatnonzero(dark)
    return int(rows[-1] - rows[0] + 1) if rows.size else 0


@pytest.mark.parametrize("long_side", [250, 4000])
def test_text_is_sized_for_the_screen(portrait: tuple[np.ndarray, Face], long_side: int) -> None:
    """At least `TEXT_PX` pixels in the image, and `TEXT_PX` when fitted into `VIEW_PX` (less
    2 px: the anti-aliased glyphs' measured extent)."""
    rgb, face = portrait
    big, (face,) = _scaled(rgb, [face], long_side)
    style = text_style(big.shape)
    (label,) = layout_labels(big.shape, [face.box], ["female 31"], style).labels
    blank = np.full_like(big, 255)
    drawn = draw_faces(blank, [face], {"box"}, captions=["female 31"])
    height = _text_height(drawn, label.rect)
    assert height >= TEXT_PX - 2
    on_screen = height * min(1.0, VIEW_PX / long_side)
    assert TEXT_PX - 2 <= on_screen <= 2 * TEXT_PX


def test_the_caption_and_the_text_print_the_same_age(
    portrait: tuple[np.ndarray, Face], capsys: pytest.CaptureFixture[str]
) -> None:
    """The record keeps the age to 0.1 year; 31.46 is 31.5 there, which rounds to 32 half-even
    (Python's format) but 31 from the raw value: both must print one age."""
    _, face = portrait
    for age in (31.46, 31.44, 30.5, 30.55, float(face.age)):  # type: ignore[arg-type]
        aged = dataclasses.replace(face, age=age)
        record = {"image": "x.jpg", "width": 250, "height": 250, "faces": [aged.to_dict()]}
        print_text(record)
        text = capsys.readouterr().out
        shown = age_text(age)
        assert f"age {shown} " in text and f" {shown} |" in caption(aged), (age, text)
    assert age_text(31.46) == age_text(31.5) == "32" and age_text(31.44) == "31"


def test_parse_drawing() -> None:
    assert parse_drawing("box, age,fps") == {"box", "age", "fps"}
    with pytest.raises(KaoError, match=r"cannot draw hat; choose among box,score"):
        parse_drawing("box,hat")
    with pytest.raises(KaoError, match="cannot draw nothing"):
        parse_drawing(" , ")


def test_kao_detect_draws_what_draw_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photo = shared_file(PORTRAIT)
    drawn = {}
    for parts in ("box,score,keypoints", "box"):
        out = tmp_path / parts.replace(",", "_")
        assert main(["detect", str(photo), "--out", str(out), "--draw", parts]) == 0
        drawn[parts] = np.asarray(Image.open(out / photo.name).convert("RGB"), np.int16)
    original = np.asarray(Image.open(photo).convert("RGB"), np.int16)
    changed = {
        parts: (np.abs(image - original).sum(axis=2) > 60).mean() for parts, image in drawn.items()
    }
    assert 0 < changed["box"] < changed["box,score,keypoints"]
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        main(["detect", str(photo), "--draw", "box,hat"])
    assert exit_.value.code == 2
    assert "cannot draw hat; choose among" in capsys.readouterr().err


def test_kao_analyze_draws_what_draw_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The default (box, landmarks, pose arrow, caption) against --draw box,gaze: no caption
    nor landmarks, but the gaze arrows in their yellow."""
    photo = shared_file(PORTRAIT)
    drawn = {}
    for parts in (None, "box,gaze"):
        out = tmp_path / str(parts)
        extra = [] if parts is None else ["--draw", parts]
        assert main(["analyze", str(photo), "--out", str(out), *extra]) == 0
        drawn[parts] = np.asarray(Image.open(out / photo.name).convert("RGB"), np.int16)
    original = np.asarray(Image.open(photo).convert("RGB"), np.int16)
    changed = {k: (np.abs(image - original).sum(axis=2) > 60).mean() for k, image in drawn.items()}
    assert 0 < changed["box,gaze"] < changed[None] / 2
    yellow = np.abs(drawn["box,gaze"] - GAZE_COLOUR).sum(axis=2) < 60
    assert yellow.sum() > 20 and (np.abs(drawn[None] - GAZE_COLOUR).sum(axis=2) < 60).sum() < 5
