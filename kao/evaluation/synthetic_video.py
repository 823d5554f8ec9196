"""Test videos made from real photos, with the ground truth of who is where in every frame,
and the identity-switch count of a tracker against it (for `kao bench video` and the tests).

A scene pastes LFW deep-funneled photos (250 x 250, cut to the face and a margin) onto a
640 x 480 window that scrolls across a WIDER FACE photo of a crowd seen from afar (one in
which YuNet finds no face). People move along straight segments between keyframes, enter and
leave the frame, and cross: the one listed later is drawn in front. A person's ground-truth
box in a frame is their face box (`LFW_FACE_BOX`, moved and scaled with the paste), present
while at least `VISIBLE` of it is in the frame and not covered by someone in front.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from kao.errors import KaoError
from kao.image import load_image
from kao.tracking import box_iou

WIDTH, HEIGHT = 640, 480
FPS = 30.0
LFW_FACE_BOX = (77.0, 60.0, 171.0, 192.0)
"""Median YuNet face box in a 250 x 250 LFW deep-funneled photo (40 random people, first
photo each; standard deviation 7-10 px per side), pixels [x1, y1, x2, y2]."""
CROP = (52, 36, 196, 216)
"""The part of each photo pasted [x1, y1, x2, y2]: the face with a margin around it."""
BACKGROUND = "0_Parade_Parade_0_275.jpg"
"""A WIDER FACE subset photo (a parade from above) in which YuNet, at score 0.3, finds no face
in any 640 x 480 window of it resized to 960 x 480."""
BACKGROUND_SIZE = (960, 480)
SCROLL = 2
"""Background scroll in pixels per frame (back and forth across the photo)."""
VISIBLE = 0.5
MATCH_IOU = 0.3
"""Smallest IoU between a tracked box and a ground-truth face box to count them as one."""


@dataclass(frozen=True)
class Walk:
    """One person's path: `photo` (relative to the LFW folder, e.g. "Tony_Blair/
    Tony_Blair_0018.jpg"), the pasted height in pixels, and `keyframes` (frame, x, y) of the
    paste's centre in frame pixels, linearly interpolated; absent before the first keyframe,
    after the last and, when a keyframe's x is None, from it until the next one."""

    photo: str
    height: int
    keyframes: tuple[tuple[int, float | None, float], ...]

    @property
    def person(self) -> str:
        return self.photo.split("/")[0]

    def centre(self, frame: int) -> tuple[float, float] | None:
        """(x, y) of the paste's centre in `frame`, or None while the person is absent."""
        frames = [k[0] for k in self.keyframes]
        if frame < frames[0] or frame > frames[-1]:
            return None
        step = max(i for i, f in enumerate(frames) if f <= frame)
        start = self.keyframes[step]
        end = self.keyframes[min(step + 1, len(frames) - 1)]
        if start[1] is None or end[1] is None:
            return None
        t = 0.0 if end[0] == start[0] else (frame - start[0]) / (end[0] - start[0])
        return start[1] + t * (end[1] - start[1]), start[2] + t * (end[2] - start[2])


@dataclass(frozen=True)
class Scene:
    """A test video: `frames` frames of 640 x 480 at 30 fps with people walking; `walks` in
    drawing order (later ones in front)."""

    name: str
    frames: int
    walks: tuple[Walk, ...]

    @property
    def people(self) -> list[str]:
        return [walk.person for walk in self.walks]


SCENES = {
    scene.name: scene
    for scene in (
        Scene(
            "crossing",
            75,
            (
                Walk("Tony_Blair/Tony_Blair_0018.jpg", 150, ((0, -40, 200), (74, 680, 230))),
                Walk(
                    "Serena_Williams/Serena_Williams_0001.jpg", 150, ((0, 680, 260), (74, -40, 240))
                ),
            ),
        ),
        Scene(
            "three",
            90,
            (
                Walk("Colin_Powell/Colin_Powell_0040.jpg", 160, ((0, 120, 150), (89, 200, 170))),
                Walk("Hugo_Chavez/Hugo_Chavez_0002.jpg", 140, ((0, 520, 120), (89, 380, 330))),
                Walk("Tony_Blair/Tony_Blair_0018.jpg", 150, ((30, 330, 560), (89, 330, 300))),
            ),
        ),
        Scene(
            "reentry",
            90,
            (
                Walk("Colin_Powell/Colin_Powell_0040.jpg", 150, ((0, 160, 240), (89, 200, 240))),
                Walk(
                    "Serena_Williams/Serena_Williams_0001.jpg",
                    150,
                    ((0, 420, 200), (25, 720, 200), (26, None, 0), (55, 720, 260), (89, 460, 260)),
                ),
            ),
        ),
        Scene(
            "bench",
            300,
            (
                Walk(
                    "Colin_Powell/Colin_Powell_0040.jpg",
                    150,
                    ((0, 120, 200), (150, 260, 300), (299, 120, 200)),
                ),
                Walk("Hugo_Chavez/Hugo_Chavez_0002.jpg", 140, ((60, 720, 150), (240, -80, 170))),
                Walk(
                    "Serena_Williams/Serena_Williams_0001.jpg",
                    150,
                    ((120, 400, 560), (200, 460, 300), (280, 520, 560)),
                ),
            ),
        ),
    )
}
"""The scenes: two people crossing, entering at one side and leaving at the other; three
people (one entering from below); one leaving and coming back a second later (30 frames);
and a 300-frame one with one to three people at a time for `kao bench video`."""


def render(
    scene: Scene, lfw: Path, wider: Path
) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
    """Each frame of `scene` as (H x W x 3 uint8 RGB, {person: ground-truth face box float32
    (4,)}), the photos read from the LFW deep-funneled folder `lfw` and the WIDER FACE images
    folder `wider`."""
    background = cv2.resize(
        _read(wider / BACKGROUND), BACKGROUND_SIZE, interpolation=cv2.INTER_AREA
    )
    x1, y1, x2, y2 = CROP
    crops = [_read(lfw / walk.photo)[y1:y2, x1:x2] for walk in scene.walks]
    span = BACKGROUND_SIZE[0] - WIDTH
    for frame in range(scene.frames):
        offset = (frame * SCROLL) % (2 * span)
        offset = offset if offset <= span else 2 * span - offset
        canvas = background[:HEIGHT, offset : offset + WIDTH].copy()
        owner = np.full((HEIGHT, WIDTH), -1, np.int16)
        faces: dict[int, tuple[int, int, int, int]] = {}
        for number, (walk, crop) in enumerate(zip(scene.walks, crops, strict=True)):
            centre = walk.centre(frame)
            if centre is None:
                continue
            faces[number] = _paste(canvas, owner, number, crop, walk.height, centre)
        truth = {}
        for number, box in faces.items():
            bx1, by1, bx2, by2 = box
            area = (bx2 - bx1) * (by2 - by1)
            seen = owner[max(0, by1) : max(0, by2), max(0, bx1) : max(0, bx2)] == number
            if area > 0 and seen.sum() >= VISIBLE * area:
                clipped = np.clip(np.array(box, np.float32), 0, [WIDTH, HEIGHT, WIDTH, HEIGHT])
                truth[scene.walks[number].person] = clipped
        yield canvas, truth


def write_scene(scene: Scene, out: Path, lfw: Path, wider: Path) -> list[dict[str, np.ndarray]]:
    """Write `scene` to `out`: an .mp4 (mp4v) or .avi (MJPG) video, or else a folder of JPEG
    frames (frame_0000.jpg, ...). Returns the ground truth of each frame (see `render`)."""
    truth = []
    writer = None
    if out.suffix.lower() in (".mp4", ".avi"):
        codec = "mp4v" if out.suffix.lower() == ".mp4" else "MJPG"
        writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*codec), FPS, (WIDTH, HEIGHT))
        if not writer.isOpened():
            raise KaoError(f"{out}: OpenCV cannot write a {codec} video")
    else:
        out.mkdir(parents=True, exist_ok=True)
    try:
        for frame, (rgb, people) in enumerate(render(scene, lfw, wider)):
            bgr = np.ascontiguousarray(rgb[:, :, ::-1])
            if writer is None:
                cv2.imwrite(
                    str(out / f"frame_{frame:04d}.jpg"), bgr, [cv2.IMWRITE_JPEG_QUALITY, 95]
                )
            else:
                writer.write(bgr)
            truth.append(people)
    finally:
        if writer is not None:
            writer.release()
    return truth


@dataclass(frozen=True)
class TrackingScore:
    """How a tracker's ids follow the people of a scene.

    Attributes:
        people: people in the ground truth.
        tracks: distinct track ids matched to someone.
        id_switches: times a person's matched track id changed while they stayed in view (seen
            again within `gap` frames of their last match).
        new_ids_after_absence: times a person came back after more than `gap` frames unseen
            under another id than before.
        matched: fraction of ground-truth boxes matched to a track (0-1).
    """

    people: int
    tracks: int
    id_switches: int
    new_ids_after_absence: int
    matched: float

    def to_dict(self) -> dict[str, float]:
        return {
            "people": self.people,
            "tracks": self.tracks,
            "id_switches": self.id_switches,
            "new_ids_after_absence": self.new_ids_after_absence,
            "matched": round(self.matched, 4),
        }


def score_tracking(
    truth: Sequence[dict[str, np.ndarray]], tracked: Sequence[dict[int, np.ndarray]], gap: int
) -> TrackingScore:
    """Compare `tracked` ({track id: box} per frame) with `truth` ({person: box} per frame):
    in each frame, people and tracks are paired by Hungarian assignment on IoU (pairs below
    `MATCH_IOU` dropped), then each person's sequence of track ids is read (see
    `TrackingScore`)."""
    if len(truth) != len(tracked):
        raise KaoError(f"{len(tracked)} tracked frames for {len(truth)} frames of ground truth")
    last: dict[str, tuple[int, int]] = {}  # person -> (track id, frame)
    switches = new_ids = matched = total = 0
    ids: set[int] = set()
    people: set[str] = set()
    for frame, (persons, tracks) in enumerate(zip(truth, tracked, strict=True)):
        people.update(persons)
        total += len(persons)
        if not persons or not tracks:
            continue
        names, track_ids = list(persons), list(tracks)
        overlap = box_iou(
            np.stack([persons[n] for n in names]).astype(np.float64),
            np.stack([tracks[t] for t in track_ids]).astype(np.float64),
        )
        for row, col in zip(*linear_sum_assignment(-overlap), strict=True):
            if overlap[row, col] < MATCH_IOU:
                continue
            name, track_id = names[row], track_ids[col]
            matched += 1
            ids.add(track_id)
            if name in last and last[name][0] != track_id:
                if frame - last[name][1] <= gap:
                    switches += 1
                else:
                    new_ids += 1
            last[name] = (track_id, frame)
    return TrackingScore(len(people), len(ids), switches, new_ids, matched / max(1, total))


def _read(path: Path) -> np.ndarray:
    if not path.is_file():
        raise KaoError(f"{path}: not found (the test videos need ../shared/data)")
    return load_image(path)


def _paste(
    canvas: np.ndarray,
    owner: np.ndarray,
    number: int,
    crop: np.ndarray,
    height: int,
    centre: tuple[float, float],
) -> tuple[int, int, int, int]:
    """Paste `crop` resized to `height` pixels (aspect kept) centred at `centre`, clipped to the
    canvas; mark its pixels as `number` in `owner`. Returns the face box of the paste, in
    canvas pixels (may lie partly outside)."""
    scale = height / crop.shape[0]
    width = round(crop.shape[1] * scale)
    resized = cv2.resize(crop, (width, height), interpolation=cv2.INTER_AREA)
    left, top = round(centre[0] - width / 2), round(centre[1] - height / 2)
    x1, y1 = max(0, left), max(0, top)
    x2, y2 = min(WIDTH, left + width), min(HEIGHT, top + height)
    if x2 > x1 and y2 > y1:
        canvas[y1:y2, x1:x2] = resized[y1 - top : y2 - top, x1 - left : x2 - left]
        owner[y1:y2, x1:x2] = number
    fx1, fy1, fx2, fy2 = LFW_FACE_BOX
    cx, cy = CROP[0], CROP[1]
    return (
        round(left + (fx1 - cx) * scale),
        round(top + (fy1 - cy) * scale),
        round(left + (fx2 - cx) * scale),
        round(top + (fy2 - cy) * scale),
    )
