"""Annotated images: boxes, keypoints, landmarks, head pose, gaze and captions drawn so that a
person can read them on a 300-pixel photo and on a 4,000-pixel one.

Text is sized for the screen, not by the image: `TEXT_PX` pixels tall when the image is shown
fitted into a `VIEW_PX`-wide view, and never smaller than that in the image's own pixels.
Captions are laid out (`layout_labels`) so that they never overlap each other nor leave the
image. When they cannot all sit beside their faces (a crowded photo, or faces too small for a
caption), each face gets its number instead (1, 2, ... as the command's text numbers faces) and
the captions go to a legend under the image, as on the web page.

What is drawn is chosen by a set of `PARTS` names (`parse_drawing` reads "box,age,...").
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from kao.errors import KaoError
from kao.face import EMOTIONS, Face

PARTS = {
    "box": "the face's box",
    "score": "the detection score",
    "keypoints": "the 5 keypoints (eyes, nose tip, mouth corners)",
    "landmarks": "the 68 landmarks (analysis only)",
    "mesh": "the 468-point mesh as a wireframe (analysis only)",
    "pose": "the head's direction, as an arrow from the nose (analysis only)",
    "gaze": "where the eyes look, as an arrow from each iris (analysis only)",
    "age": "apparent age",
    "gender": "gender",
    "emotion": "the likeliest emotion",
    "mask": "mask or no mask",
    "track": "the track number and identity (video only)",
    "fps": "the live frames per second (video only)",
}
"""What can be drawn: name -> what it shows."""
DETECT_DRAWING = frozenset({"box", "score", "keypoints"})
"""What `kao detect` draws by default."""
ANALYSIS_DRAWING = frozenset({"box", "landmarks", "pose", "age", "gender", "emotion", "mask"})
"""What `kao analyze` draws by default."""
VIDEO_DRAWING = frozenset({"box", "keypoints", "age", "gender", "emotion", "mask", "track"})
"""What `kao video` draws by default: no frame-rate counter unless asked."""

TEXT_PX = 14
"""Height of a capital letter in screen pixels (about a 20 px font)."""
VIEW_PX = 1280
"""Width of the view a large image is assumed to be shown fitted into."""
MAX_CAPTIONS = 12
"""More faces than this get numbered tags and a legend even when their captions would fit."""
MAX_LEGEND_COLUMNS = 4
"""A legend taller than its image spreads over up to this many columns (wider than the image)."""

BOX_COLOUR = (40, 220, 40)
KEYPOINT_COLOURS = ((255, 60, 60), (60, 120, 255), (255, 220, 0), (255, 60, 255), (0, 220, 220))
"""RGB colour per keypoint, in `KEYPOINT_NAMES` order."""
LANDMARK_COLOUR = (255, 255, 255)
MESH_COLOUR = (120, 200, 255)
POSE_COLOUR = (255, 80, 80)
GAZE_COLOUR = (255, 230, 0)
TEXT_COLOUR = (0, 0, 0)
LEGEND_BACKGROUND = (255, 255, 255)
FONT = cv2.FONT_HERSHEY_SIMPLEX


def _glyph_extent() -> tuple[int, int]:
    """Height of a capital letter and depth of a descender below the baseline, in pixels at
    font scale 1, as drawn (`cv2.getTextSize`'s figures differ between OpenCV versions)."""
    canvas = np.zeros((100, 100), np.uint8)
    cv2.putText(canvas, "Hp", (10, 60), FONT, 1.0, 255, 1)
    rows = np.flatnonzero(canvas.any(axis=1))
    return 60 - int(rows[0]), int(rows[-1]) - 60


_FONT_CAP, _FONT_DESCENT = _glyph_extent()

Rect = tuple[int, int, int, int]
"""A rectangle ``(x1, y1, x2, y2)`` in pixels, x2 and y2 excluded."""


def parse_drawing(text: str) -> frozenset[str]:
    """The parts named in `text`, comma-separated (e.g. "box,age,fps"); KaoError naming any
    unknown name and the known ones."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in PARTS]
    if unknown or not names:
        got = ", ".join(unknown) if unknown else "nothing"
        raise KaoError(f"--draw: cannot draw {got}; choose among {','.join(PARTS)}")
    return frozenset(names)


def age_text(age: float) -> str:
    """Age in whole years as every interface prints it: the record's age (rounded to 0.1 year,
    as `Face.to_dict` stores it) rounded half up, so "30.5" and 30.46 both print "31"."""
    return str(math.floor(round(float(age), 1) + 0.5))


@dataclass(frozen=True)
class TextStyle:
    """Sizes for drawing on one image, in its pixels: `cap` (capital letter height), `descent`
    (below the baseline), the OpenCV font `scale` and `thickness`, the label's `pad`ding and
    the `line` width."""

    cap: int
    descent: int
    scale: float
    thickness: int
    pad: int
    line: int

    @property
    def pitch(self) -> int:
        """Pixels from one line's baseline to the next one's."""
        return self.cap + self.descent + max(1, self.pad // 2)

    def label_size(self, text: str) -> tuple[int, int]:
        """Width and height in pixels of `text`'s label (lines split at "\\n"): its text with
        padding all round."""
        lines = text.split("\n")
        width = max(cv2.getTextSize(line, FONT, self.scale, self.thickness)[0][0] for line in lines)
        height = (len(lines) - 1) * self.pitch + self.cap + self.descent
        return width + 2 * self.pad, height + 2 * self.pad


def text_style(shape: Sequence[int]) -> TextStyle:
    """The `TextStyle` for an image of `shape` (H, W, ...): `TEXT_PX` on screen when the image
    is fitted into `VIEW_PX` (so larger on a large image), never less in its own pixels."""
    zoom = max(1.0, max(shape[:2]) / VIEW_PX)
    cap = round(TEXT_PX * zoom)
    return TextStyle(
        cap=cap,
        descent=math.ceil(cap * _FONT_DESCENT / _FONT_CAP),
        scale=cap / _FONT_CAP,
        thickness=max(1, round(cap / 10)),
        pad=max(2, round(cap / 4)),
        line=max(1, round(2 * zoom)),
    )


@dataclass(frozen=True)
class PlacedLabel:
    """A label on the image: its `text`, its `rect` and the index of its `face`; `leader` when
    it sits away from the face and a line joins them."""

    text: str
    rect: Rect
    face: int
    leader: bool = False


@dataclass(frozen=True)
class Layout:
    """Where the labels of an image's faces go. `labels`: one per face that got one (a face in
    a photo so crowded that no room is left gets none); `legend`: with numbered tags, one line
    per face, "N: caption" (empty when the captions are drawn beside the faces)."""

    labels: list[PlacedLabel]
    legend: list[str]

    @property
    def tagged(self) -> bool:
        """Whether faces carry numbers (and the captions are in the legend)."""
        return bool(self.legend)


def layout_labels(
    shape: Sequence[int],
    boxes: Sequence[np.ndarray],
    captions: Sequence[str],
    style: TextStyle,
    tags: Sequence[str] | None = None,
    reserved: Sequence[Rect] = (),
) -> Layout:
    """Place a label for each face of an image of `shape` (H, W, ...): face i has box
    `boxes[i]` (x1, y1, x2, y2 pixels) and caption `captions[i]` (none when empty). The
    captions themselves when there are at most `MAX_CAPTIONS` and each fits beside its face
    (above, below, right, left; on one line, else one line per " | " part) without covering
    another label or another face; else tags (`tags[i]`, default the face numbers "1", "2",
    ...) beside the faces, or nearby with a leader line, and a legend. Labels never overlap,
    lie inside the image and keep out of the `reserved` rectangles (e.g. a banner's)."""
    if len(captions) <= MAX_CAPTIONS:
        placer = _Placer(shape, boxes, reserved)
        placed = [
            placer.beside(i, caption, style, avoid_faces=True)
            or placer.beside(i, caption.replace(" | ", "\n"), style, avoid_faces=True)
            if caption
            else None
            for i, caption in enumerate(captions)
        ]
        if all(
            label is not None or not caption
            for label, caption in zip(placed, captions, strict=True)
        ):
            return Layout([label for label in placed if label is not None], [])
    placer = _Placer(shape, boxes, reserved)
    labels = []
    for i in range(len(boxes)):
        tag = str(i + 1) if tags is None else tags[i]
        label = (
            placer.beside(i, tag, style, avoid_faces=True)
            or placer.beside(i, tag, style, avoid_faces=False)
            or placer.nearby(i, tag, style)
        )
        if label is not None:
            labels.append(label)
    legend = [
        f"{i + 1 if tags is None else tags[i]}: {caption}".rstrip(": ")
        for i, caption in enumerate(captions)
    ]
    return Layout(labels, legend)


class _Placer:
    """Free places for labels on an image: taken label pixels in a mask, faces as boxes."""

    def __init__(
        self, shape: Sequence[int], boxes: Sequence[np.ndarray], reserved: Sequence[Rect]
    ) -> None:
        self.height, self.width = int(shape[0]), int(shape[1])
        self.taken = np.zeros((self.height, self.width), bool)
        self.boxes = np.array([np.asarray(box, float)[:4] for box in boxes]).reshape(-1, 4)
        for x1, y1, x2, y2 in reserved:
            self.taken[max(0, y1) : max(0, y2), max(0, x1) : max(0, x2)] = True

    def beside(
        self, i: int, text: str, style: TextStyle, *, avoid_faces: bool
    ) -> PlacedLabel | None:
        """Face i's label above, below, right or left of its box, the first of these that is
        free (of labels, and of the other faces with `avoid_faces`), or None."""
        width, height = style.label_size(text)
        x1, y1, x2, y2 = (round(float(v)) for v in self.boxes[i])
        corners = (
            (x1, y1 - height),
            (x1, y2),
            (x2 - width, y1 - height),
            (x2 - width, y2),
            (x2, y1),
            (x1 - width, y1),
        )
        for x, y in corners:
            rect = self._fit(x, y, width, height)
            if rect is not None and self._free(rect, i if avoid_faces else None):
                return self._take(PlacedLabel(text, rect, i))
        return None

    def nearby(self, i: int, text: str, style: TextStyle) -> PlacedLabel | None:
        """Face i's label at the free place nearest its box's centre, in rings one label high
        apart, joined to the face by a leader line; None when the image has no room left."""
        width, height = style.label_size(text)
        x1, y1, x2, y2 = self.boxes[i]
        cx, cy = (x1 + x2 - width) / 2, (y1 + y2 - height) / 2
        step = height
        for ring in range(1, max(self.width, self.height) // step + 2):
            for angle in np.linspace(0, 2 * np.pi, 8 * ring, endpoint=False):
                x = round(cx + ring * step * np.cos(angle))
                y = round(cy + ring * step * np.sin(angle))
                rect = self._fit(x, y, width, height)
                if rect is not None and self._free(rect, None):
                    return self._take(PlacedLabel(text, rect, i, leader=True))
        return None

    def _fit(self, x: int, y: int, width: int, height: int) -> Rect | None:
        """The rectangle at (x, y) moved inside the image, or None if it is larger than it."""
        if width > self.width or height > self.height:
            return None
        x = min(max(x, 0), self.width - width)
        y = min(max(y, 0), self.height - height)
        return (x, y, x + width, y + height)

    def _free(self, rect: Rect, face: int | None) -> bool:
        """Whether `rect` covers no label, and (`face` given) no face but that one."""
        x1, y1, x2, y2 = rect
        if self.taken[y1:y2, x1:x2].any():
            return False
        if face is None:
            return True
        boxes = self.boxes
        hits = (boxes[:, 0] < x2) & (boxes[:, 2] > x1) & (boxes[:, 1] < y2) & (boxes[:, 3] > y1)
        hits[face] = False
        return not hits.any()

    def _take(self, label: PlacedLabel) -> PlacedLabel:
        x1, y1, x2, y2 = label.rect
        self.taken[y1:y2, x1:x2] = True
        return label


def caption(face: Face, parts: Collection[str] = ANALYSIS_DRAWING) -> str:
    """A one-line summary of the face's attributes among `parts`, e.g. "female 31 | happy 80% |
    no mask" (with "score", the detection score first: "0.98"); "too small" in place of the
    attributes when the face is too small for every one of them (`kao.quality.too_small`),
    "unreadable" when it is too small, dark, bright or blurred for each (`unreadable`)."""
    from kao.quality import too_small, unreadable

    found = []
    if "score" in parts:
        found.append(f"{face.score:.2f}")
    who = []
    if "gender" in parts and face.gender is not None:
        who.append(face.gender.label)
    if "age" in parts and face.age is not None:
        who.append(age_text(face.age))
    if who:
        found.append(" ".join(who))
    if "emotion" in parts and face.emotion:
        top = max(EMOTIONS, key=lambda name: face.emotion[name])  # type: ignore[index]
        found.append(f"{top} {100 * face.emotion[top]:.0f}%")
    if "mask" in parts and face.mask is not None:
        found.append(face.mask.label.replace("_", " "))
    asked = [key for key in ("gender", "age", "emotion", "mask") if key in parts]
    if asked and face.analysed and all(unreadable(face, key) for key in asked):
        found.append("too small" if all(too_small(face, key) for key in asked) else "unreadable")
    return " | ".join(found)


def draw_faces(
    rgb: np.ndarray,
    faces: Sequence[Face],
    parts: Collection[str] = DETECT_DRAWING,
    *,
    triangles: np.ndarray | None = None,
    captions: Sequence[str] | None = None,
    tags: Sequence[str] | None = None,
    colours: Sequence[tuple[int, int, int]] | None = None,
    legend: bool = True,
    reserved: Sequence[Rect] = (),
) -> np.ndarray:
    """A copy of `rgb` (H x W x 3 uint8, RGB) with the `parts` of each face drawn (see
    `PARTS`) and its caption laid out by `layout_labels`; with tags and `legend`, the legend
    is added under the image (`with_legend`: the copy is taller, maybe wider, than `rgb`).
    `triangles` (T, 3 vertex indices) are the mesh's, needed for "mesh". Per face: `captions`
    replace the captions built from `parts`, `tags` the face numbers, `colours` (RGB) the
    labels' green. No label covers the `reserved` rectangles."""
    canvas = np.ascontiguousarray(rgb).copy()
    style = text_style(canvas.shape)
    for face in faces:
        _draw_geometry(canvas, face, parts, style, triangles)
    texts = [caption(face, parts) for face in faces] if captions is None else list(captions)
    if not any(texts):
        return canvas
    boxes = [face.box for face in faces]
    layout = layout_labels(canvas.shape, boxes, texts, style, tags, reserved)
    for label in layout.labels:
        colour = BOX_COLOUR if colours is None else colours[label.face]
        draw_label(canvas, label, style, faces[label.face].box, colour)
    if legend and layout.tagged:
        canvas = with_legend(canvas, layout.legend, style)
    return canvas


def draw_analysis(
    rgb: np.ndarray,
    faces: Sequence[Face],
    triangles: np.ndarray | None = None,
    parts: Collection[str] = ANALYSIS_DRAWING,
) -> np.ndarray:
    """`draw_faces` with what `kao analyze` draws by default: box, the 68 landmarks, the head's
    direction and a caption with gender, age, top emotion and mask; with `triangles` (T, 3
    vertex indices of the 468-point mesh), the mesh as a wireframe too."""
    if triangles is not None:
        parts = {*parts, "mesh"}
    return draw_faces(rgb, faces, parts, triangles=triangles)


def _draw_geometry(
    canvas: np.ndarray,
    face: Face,
    parts: Collection[str],
    style: TextStyle,
    triangles: np.ndarray | None,
) -> None:
    """Draw the face's mesh, box, points and arrows among `parts` onto `canvas`, in place."""
    line = style.line
    if "mesh" in parts and triangles is not None and face.mesh is not None:
        edges = face.mesh[:, :2][np.asarray(triangles)]
        cv2.polylines(canvas, np.round(edges).astype(np.int32), True, MESH_COLOUR, 1)
    if "box" in parts:
        x1, y1, x2, y2 = (round(float(v)) for v in face.box)
        cv2.rectangle(canvas, (x1, y1), (x2, y2), BOX_COLOUR, line, cv2.LINE_AA)
    if "landmarks" in parts and face.landmarks_68 is not None:
        radius = max(1, min(2 * line, round(face.width / 60)))
        for point in face.landmarks_68:
            cv2.circle(canvas, _pixel(point), radius, LANDMARK_COLOUR, -1, cv2.LINE_AA)
    elif "keypoints" in parts or "landmarks" in parts:
        radius = max(1, min(2 * line, round(face.width / 25)))
        for point, colour in zip(face.keypoints, KEYPOINT_COLOURS, strict=True):
            cv2.circle(canvas, _pixel(point), radius, colour, -1, cv2.LINE_AA)
    if "pose" in parts and face.pose is not None:
        nose = face.keypoints[2] if face.landmarks_68 is None else face.landmarks_68[30]
        _arrow(canvas, nose, face.pose.yaw, face.pose.pitch, face.width / 2, POSE_COLOUR, line)
    if "gaze" in parts and face.gaze is not None and face.iris is not None:
        for eye, start in (("right_eye", face.iris[0]), ("left_eye", face.iris[5])):
            angles = face.gaze[eye]
            _arrow(canvas, start, angles["yaw"], angles["pitch"], face.width / 3, GAZE_COLOUR, line)


def _pixel(point: np.ndarray) -> tuple[int, int]:
    return round(float(point[0])), round(float(point[1]))


def _arrow(
    canvas: np.ndarray,
    start: np.ndarray,
    yaw: float,
    pitch: float,
    length: float,
    colour: tuple[int, int, int],
    line: int,
) -> None:
    """An arrow from `start` (x, y pixels) the way `yaw` and `pitch` (degrees, `Pose`'s signs)
    point: right for positive yaw, up for positive pitch, `length` pixels at 90 degrees."""
    dx = length * np.sin(np.radians(yaw))
    dy = -length * np.sin(np.radians(pitch))
    end = (round(float(start[0] + dx)), round(float(start[1] + dy)))
    cv2.arrowedLine(canvas, _pixel(start), end, colour, line, cv2.LINE_AA, tipLength=0.2)


def draw_label(
    canvas: np.ndarray,
    label: PlacedLabel,
    style: TextStyle,
    box: np.ndarray | None = None,
    colour: tuple[int, int, int] = BOX_COLOUR,
) -> None:
    """Write `label`'s text in black on a filled `colour` rectangle at its place, in place;
    with `box` (x1, y1, x2, y2) and a leader label, a line from the label to the box."""
    x1, y1, x2, y2 = label.rect
    if label.leader and box is not None:
        cx = min(max((x1 + x2) // 2, round(float(box[0]))), round(float(box[2])))
        cy = min(max((y1 + y2) // 2, round(float(box[1]))), round(float(box[3])))
        cv2.line(canvas, ((x1 + x2) // 2, (y1 + y2) // 2), (cx, cy), colour, 1, cv2.LINE_AA)
    cv2.rectangle(canvas, (x1, y1), (x2 - 1, y2 - 1), colour, -1)
    for n, line in enumerate(label.text.split("\n")):
        _text(canvas, line, (x1 + style.pad, y1 + style.pad + style.cap + n * style.pitch), style)


def with_legend(canvas: np.ndarray, lines: Sequence[str], style: TextStyle) -> np.ndarray:
    """`canvas` (H x W x 3 uint8) over a white panel listing `lines` in columns, top to bottom
    then left to right: as many columns as fit in W, or more (up to `MAX_LEGEND_COLUMNS`, the
    result then wider than W, the image padded with white) to keep the legend no taller than
    the image."""
    height, width = canvas.shape[:2]
    column = max(style.label_size(text)[0] for text in lines) + style.pad
    row = style.pitch
    fit = max(1, (width - style.pad) // column)
    needed = -(-len(lines) // max(1, height // row))
    columns = max(1, min(len(lines), max(fit, min(needed, MAX_LEGEND_COLUMNS))))
    rows = -(-len(lines) // columns)
    full = max(width, columns * column + style.pad)
    panel = rows * row + 3 * style.pad
    out = np.full((height + panel, full, 3), LEGEND_BACKGROUND, np.uint8)
    out[:height, :width] = canvas
    for n, text in enumerate(lines):
        x = style.pad + (n // rows) * column + style.pad
        y = height + style.pad + (n % rows) * row + style.pad + style.cap
        _text(out, text, (x, y), style)
    return out


def banner_rect(shape: Sequence[int], text: str) -> Rect:
    """Where `draw_banner` writes `text` on an image of `shape` (H, W, ...): its top left."""
    width, height = text_style(shape).label_size(text)
    return (0, 0, min(width, int(shape[1])), min(height, int(shape[0])))


def draw_banner(
    canvas: np.ndarray, text: str, colour: tuple[int, int, int] = (255, 255, 255)
) -> None:
    """Write `text` on a `colour` label at `banner_rect`, in place (a count, a frame rate)."""
    rect = banner_rect(canvas.shape, text)
    draw_label(canvas, PlacedLabel(text, rect, -1), text_style(canvas.shape), colour=colour)


def _text(canvas: np.ndarray, text: str, origin: tuple[int, int], style: TextStyle) -> None:
    """`text` in black with its baseline's left end at `origin` (x, y pixels), in place."""
    cv2.putText(canvas, text, origin, FONT, style.scale, TEXT_COLOUR, style.thickness, cv2.LINE_AA)
