"""Annotated images: boxes, scores, keypoints and analysis results drawn at a size readable on
any image."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from kao.face import EMOTIONS, Face

BOX_COLOUR = (40, 220, 40)
KEYPOINT_COLOURS = ((255, 60, 60), (60, 120, 255), (255, 220, 0), (255, 60, 255), (0, 220, 220))
"""RGB colour per keypoint, in `KEYPOINT_NAMES` order."""


LANDMARK_COLOUR = (255, 255, 255)
MESH_COLOUR = (120, 200, 255)
POSE_COLOUR = (255, 80, 80)


def line_unit(canvas: np.ndarray) -> int:
    """Line width in pixels: about 1/400 of the image's shorter side, so the drawing stays
    visible on a 4,000 px photo and does not swamp a 200 px one."""
    return max(1, round(min(canvas.shape[:2]) / 400))


def draw_faces(rgb: np.ndarray, faces: Sequence[Face]) -> np.ndarray:
    """A copy of `rgb` (H x W x 3 uint8, RGB) with each face's box, score and keypoints drawn."""
    canvas = np.ascontiguousarray(rgb).copy()
    unit = line_unit(canvas)
    for face in faces:
        _box_and_keypoints(canvas, face, unit)
        x1, y1 = (round(float(v)) for v in face.box[:2])
        draw_label(canvas, f"{face.score:.2f}", (x1, y1), unit)
    return canvas


def draw_analysis(
    rgb: np.ndarray, faces: Sequence[Face], triangles: np.ndarray | None = None
) -> np.ndarray:
    """A copy of `rgb` (H x W x 3 uint8, RGB) with what `kao.analyze` found on each face: box,
    the 68 landmarks (or the 5 keypoints), the head's direction as a line from the nose, and a
    caption with gender, age, top emotion and mask. With `triangles` (T, 3 vertex indices of
    the 468-point mesh), the mesh is drawn as a wireframe too."""
    canvas = np.ascontiguousarray(rgb).copy()
    unit = line_unit(canvas)
    for face in faces:
        if triangles is not None and face.mesh is not None:
            edges = face.mesh[:, :2][np.asarray(triangles)]
            cv2.polylines(canvas, np.round(edges).astype(np.int32), True, MESH_COLOUR, 1)
        if face.landmarks_68 is not None:
            x1, y1, x2, y2 = (round(float(v)) for v in face.box)
            cv2.rectangle(canvas, (x1, y1), (x2, y2), BOX_COLOUR, unit, cv2.LINE_AA)
            radius = max(1, min(unit * 2, round(face.width / 60)))
            for x, y in face.landmarks_68:
                centre = (round(float(x)), round(float(y)))
                cv2.circle(canvas, centre, radius, LANDMARK_COLOUR, -1, cv2.LINE_AA)
        else:
            _box_and_keypoints(canvas, face, unit)
        if face.pose is not None:
            _pose_line(canvas, face, unit)
        x1, y1 = (round(float(v)) for v in face.box[:2])
        draw_label(canvas, caption(face) or f"{face.score:.2f}", (x1, y1), unit)
    return canvas


def caption(face: Face) -> str:
    """A one-line summary of a face's attributes, e.g. "female 31 | happy 80% | no mask"."""
    parts = []
    who = " ".join(
        text
        for text in (
            face.gender.label if face.gender else "",
            f"{face.age:.0f}" if face.age is not None else "",
        )
        if text
    )
    if who:
        parts.append(who)
    if face.emotion:
        top = max(EMOTIONS, key=lambda name: face.emotion[name])  # type: ignore[index]
        parts.append(f"{top} {100 * face.emotion[top]:.0f}%")
    if face.mask:
        parts.append(face.mask.label.replace("_", " "))
    return " | ".join(parts)


def _box_and_keypoints(canvas: np.ndarray, face: Face, unit: int) -> None:
    x1, y1, x2, y2 = (round(float(v)) for v in face.box)
    cv2.rectangle(canvas, (x1, y1), (x2, y2), BOX_COLOUR, unit, cv2.LINE_AA)
    radius = max(1, min(unit * 2, round(face.width / 25)))
    for (x, y), colour in zip(face.keypoints, KEYPOINT_COLOURS, strict=True):
        cv2.circle(canvas, (round(float(x)), round(float(y))), radius, colour, -1, cv2.LINE_AA)


def _pose_line(canvas: np.ndarray, face: Face, unit: int) -> None:
    """A line from the nose tip the way the head faces: right for positive yaw, up for positive
    pitch, half the box width long when the head faces 90 degrees away."""
    assert face.pose is not None
    nose = face.keypoints[2] if face.landmarks_68 is None else face.landmarks_68[30]
    length = face.width / 2
    dx = length * np.sin(np.radians(face.pose.yaw))
    dy = -length * np.sin(np.radians(face.pose.pitch))
    start = (round(float(nose[0])), round(float(nose[1])))
    end = (round(float(nose[0] + dx)), round(float(nose[1] + dy)))
    cv2.arrowedLine(canvas, start, end, POSE_COLOUR, unit, cv2.LINE_AA, tipLength=0.2)


def draw_label(
    canvas: np.ndarray,
    text: str,
    corner: tuple[int, int],
    unit: int,
    colour: tuple[int, int, int] = BOX_COLOUR,
    *,
    above: bool = True,
) -> None:
    """Write black `text` on a filled box of `colour` at `corner` (x, y pixels): just above it
    (inside the image when at its top), or with `above=False` just below it. `unit` is the line
    width (`line_unit`); the text size follows it."""
    scale = 0.4 * unit
    (width, height), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, unit)
    x, y = corner
    top = y - height - baseline - 2 * unit if above else y
    if top < 0:
        top = y
    cv2.rectangle(
        canvas, (x, top), (x + width + 2 * unit, top + height + baseline + 2 * unit), colour, -1
    )
    cv2.putText(
        canvas,
        text,
        (x + unit, top + height + unit),
        cv2.FONT_HERSHEY_SIMPLEX,
        scale,
        (0, 0, 0),
        unit,
        cv2.LINE_AA,
    )
