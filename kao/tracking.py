"""Faces followed from frame to frame: a ByteTrack-style tracker and each track's smoothed
attributes and identity. Pure logic: no model, no image.

`Tracker.update` takes the faces detected in one frame and gives each a stable track id:

1. every live track's box is predicted for the frame: its last box moved at constant velocity
   (the centre's motion in pixels per frame, exponentially smoothed over the track's matches);
2. detections scoring at least `high_score` are matched to the tracks by Hungarian assignment
   (`scipy.optimize.linear_sum_assignment`) on the IoU of their box with the predicted box;
3. the tracks still unmatched get a second chance with the low-score detections (a face half
   hidden or blurred scores lower: this keeps its track instead of dropping it);
4. a high-score detection left over starts a *tentative* track, which gets its id (1, 2, ...)
   once matched in `min_hits` updates and is dropped if missed before; a confirmed track
   missed for more than `max_missed` frames ends. A face that leaves the frame for longer
   than that comes back under a new id.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from kao.face import EMOTIONS, Face, Label


@dataclass
class Track:
    """One face followed across frames.

    Attributes:
        track_id: 1, 2, ... once confirmed; 0 while tentative.
        face: the face last matched to the track (a detection, in pixels of its frame).
        velocity: float64 (2,), motion of the box's centre (x, y) in pixels per frame.
        first_frame, last_frame: the first and the last frame in which it was detected.
        hits: the number of updates in which it was detected.
    """

    track_id: int
    face: Face
    first_frame: int
    last_frame: int
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))
    hits: int = 1

    def predicted_box(self, frame: int) -> np.ndarray:
        """float64 (4,): where the box should be in `frame`: the last box, same size, its centre
        moved at the track's velocity."""
        shift = self.velocity * (frame - self.last_frame)
        return self.face.box.astype(np.float64) + np.tile(shift, 2)

    def predicted_face(self, frame: int) -> Face:
        """The last face moved to `predicted_box(frame)`, keypoints moved along with the box."""
        shift = self.velocity * (frame - self.last_frame)
        return dataclasses.replace(
            self.face,
            box=self.predicted_box(frame).astype(np.float32),
            keypoints=(self.face.keypoints + shift).astype(np.float32),
        )


class Tracker:
    """Gives the faces of successive frames stable track ids (see the module's docstring).

    Args:
        high_score: detections scoring at least this can start tracks (0-1); the ones below
            only continue tracks.
        min_iou: smallest IoU between a detection and a track's predicted box to match them.
        max_missed: frames a confirmed track lives on without a detection.
        min_hits: updates with a detection before a track is confirmed and gets its id.
        smoothing: weight of the newest motion in the velocity (0-1; 1: the last step only).
    """

    def __init__(
        self,
        *,
        high_score: float = 0.6,
        min_iou: float = 0.3,
        max_missed: int = 15,
        min_hits: int = 2,
        smoothing: float = 0.5,
    ) -> None:
        if min_hits < 1:
            raise ValueError(f"min_hits must be at least 1, got {min_hits}")
        self.high_score = high_score
        self.min_iou = min_iou
        self.max_missed = max_missed
        self.min_hits = min_hits
        self.smoothing = smoothing
        self.tracks: list[Track] = []
        """Live tracks, confirmed and tentative."""
        self._next_id = 1
        self._last_update = -1

    def update(self, faces: Sequence[Face], frame: int) -> list[Track]:
        """Match the faces detected in `frame` (frame numbers must increase) to the tracks;
        returns the confirmed tracks detected in this frame, each with its new `face`."""
        high = [i for i, face in enumerate(faces) if face.score >= self.high_score]
        low = [i for i, face in enumerate(faces) if face.score < self.high_score]
        matched: dict[int, int] = {}  # track index -> face index
        for candidates, track_pool in (
            (high, range(len(self.tracks))),
            (low, [t for t in range(len(self.tracks)) if self.tracks[t].track_id]),
        ):
            pool = [t for t in track_pool if t not in matched]
            taken = set(matched.values())
            for t, i in self._assign(pool, [i for i in candidates if i not in taken], faces, frame):
                matched[t] = i
        for t, i in matched.items():
            self._extend(self.tracks[t], faces[i], frame)
        kept = [
            track
            for t, track in enumerate(self.tracks)
            if t in matched or (track.track_id and frame - track.last_frame <= self.max_missed)
        ]
        taken = set(matched.values())
        for i in high:
            if i not in taken:
                kept.append(Track(0, faces[i], frame, frame))
                self._confirm(kept[-1])
        self.tracks = kept
        self._last_update = frame
        return [t for t in kept if t.track_id and t.last_frame == frame]

    def predict(self, frame: int) -> list[Track]:
        """The confirmed tracks that were detected in their last update, for a frame without
        detection (e.g. between two detected frames): their faces are `predicted_face(frame)`,
        returned as copies, the tracks themselves unchanged."""
        return [
            dataclasses.replace(t, face=t.predicted_face(frame))
            for t in self.tracks
            if t.track_id and t.last_frame == self._last_update
        ]

    def _assign(
        self, tracks: list[int], candidates: list[int], faces: Sequence[Face], frame: int
    ) -> list[tuple[int, int]]:
        """(track index, face index) pairs of the best one-to-one matching by IoU."""
        if not tracks or not candidates:
            return []
        predicted = np.stack([self.tracks[t].predicted_box(frame) for t in tracks])
        boxes = np.stack([faces[i].box for i in candidates]).astype(np.float64)
        overlap = box_iou(predicted, boxes)
        from scipy.optimize import linear_sum_assignment

        rows, cols = linear_sum_assignment(-overlap)
        return [
            (tracks[r], candidates[c])
            for r, c in zip(rows, cols, strict=True)
            if overlap[r, c] >= self.min_iou
        ]

    def _extend(self, track: Track, face: Face, frame: int) -> None:
        moved = _centre(face.box) - _centre(track.face.box)
        step = moved / max(1, frame - track.last_frame)
        track.velocity = self.smoothing * step + (1 - self.smoothing) * track.velocity
        track.face = face
        track.last_frame = frame
        track.hits += 1
        self._confirm(track)

    def _confirm(self, track: Track) -> None:
        if not track.track_id and track.hits >= self.min_hits:
            track.track_id = self._next_id
            self._next_id += 1


def _centre(box: np.ndarray) -> np.ndarray:
    return (box[:2].astype(np.float64) + box[2:]) / 2


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every box of `a` (N, 4) with every box of `b` (M, 4), boxes
    ``[x1, y1, x2, y2]`` -> (N, M) in [0, 1]."""
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(bottom_right - top_left, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


@dataclass
class TrackProfile:
    """What a track's faces said about the person, gathered over the track.

    Age is the mean of the estimates; gender and mask are decided by the mean probability of
    "female" and of "mask"; emotion is shown as an exponential moving average of the
    probabilities (weight `emotion_smoothing` for the newest) and summed for the track's
    dominant emotion. The identity is a vote over the identifications: the answer given most
    often (a person or "unknown"), ties going to the person with the higher total similarity.
    """

    emotion_smoothing: float = 0.3
    ages: list[float] = field(default_factory=list)
    female: list[float] = field(default_factory=list)
    masked: list[float] = field(default_factory=list)
    emotion: np.ndarray | None = None
    emotion_total: np.ndarray = field(default_factory=lambda: np.zeros(len(EMOTIONS)))
    votes: dict[str | None, list[float]] = field(default_factory=dict)

    def add_attributes(self, face: Face) -> None:
        """Take in the age, gender, emotion and mask of `face` (those that are set)."""
        if face.age is not None:
            self.ages.append(float(face.age))
        if face.gender is not None:
            self.female.append(_probability(face.gender, "female"))
        if face.mask is not None:
            self.masked.append(_probability(face.mask, "mask"))
        if face.emotion is not None:
            new = np.array([face.emotion[name] for name in EMOTIONS], np.float64)
            self.emotion_total += new
            alpha = self.emotion_smoothing
            self.emotion = new if self.emotion is None else alpha * new + (1 - alpha) * self.emotion

    def add_identity(self, person: str | None, similarity: float) -> None:
        """Take in one identification: `person` (None: unknown) at `similarity` (0-1)."""
        self.votes.setdefault(person, []).append(similarity)

    @property
    def identity(self) -> str | None:
        """The person the votes name, or None (unknown, or never identified)."""
        if not self.votes:
            return None
        return max(
            self.votes,
            key=lambda p: (len(self.votes[p]), p is not None and sum(self.votes[p])),
        )

    @property
    def age(self) -> float | None:
        """Mean age in years, or None."""
        return float(np.mean(self.ages)) if self.ages else None

    @property
    def gender(self) -> Label | None:
        return _decision(self.female, "female", "male")

    @property
    def mask(self) -> Label | None:
        return _decision(self.masked, "mask", "no_mask")

    @property
    def dominant_emotion(self) -> str | None:
        """The emotion of highest total probability over the track, or None."""
        if self.emotion is None:
            return None
        return EMOTIONS[int(np.argmax(self.emotion_total))]

    def apply(self, face: Face) -> Face:
        """`face` with the smoothed attributes (those known) in place of its own."""
        emotion = None
        if self.emotion is not None:
            emotion = {name: float(p) for name, p in zip(EMOTIONS, self.emotion, strict=True)}
        return dataclasses.replace(
            face, age=self.age, gender=self.gender, mask=self.mask, emotion=emotion
        )


def _probability(label: Label, positive: str) -> float:
    """The probability of `positive` that a two-class `label` gives."""
    return label.score if label.label == positive else 1.0 - label.score


def _decision(probabilities: list[float], positive: str, negative: str) -> Label | None:
    if not probabilities:
        return None
    mean = float(np.mean(probabilities))
    return Label(positive, mean) if mean >= 0.5 else Label(negative, 1.0 - mean)
