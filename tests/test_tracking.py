"""The tracker and the per-track attribute smoothing, on hand-made detections (no model)."""

from __future__ import annotations

import numpy as np
import pytest

from kao.evaluation.synthetic_video import SCENES, score_tracking
from kao.face import EMOTIONS, Face, Label
from kao.tracking import Tracker, TrackProfile, box_iou


def face(x: float, y: float, score: float = 0.9, side: float = 60.0) -> Face:
    """A detection whose box has its top-left corner at (x, y)."""
    box = np.array([x, y, x + side, y + side], np.float32)
    keypoints = np.tile(box[:2] + side / 2, (5, 1)).astype(np.float32)
    return Face(box=box, score=score, keypoints=keypoints)


def test_box_iou() -> None:
    a = np.array([[0, 0, 10, 10], [0, 0, 0, 0]], np.float64)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], np.float64)
    assert box_iou(a, b) == pytest.approx(np.array([[1, 1 / 3, 0], [0, 0, 0]]))


def test_two_faces_crossing_keep_their_ids() -> None:
    """Two faces moving 12 px a frame towards each other and past; while they overlap only the
    front one is detected (the other is hidden behind it for 6 frames)."""
    tracker = Tracker()
    truth, tracked = [], []
    for frame in range(50):
        left, right = face(12 * frame, 100), face(600 - 12 * frame, 110)
        hidden = 22 <= frame < 28
        found = [left] if hidden else [right, left]
        tracks = tracker.update(found, frame)
        truth.append({"left": left.box} | ({} if hidden else {"right": right.box}))
        tracked.append({t.track_id: t.face.box for t in tracks})
    result = score_tracking(truth, tracked, gap=tracker.max_missed)
    assert (result.people, result.tracks, result.id_switches) == (2, 2, 0)
    assert result.matched == pytest.approx(1 - 2 / 94)  # all but frame 0 (tracks tentative)


def test_a_one_frame_detection_never_gets_an_id() -> None:
    tracker = Tracker()
    assert tracker.update([face(0, 0), face(300, 300)], 0) == []  # tentative
    (track,) = tracker.update([face(2, 0)], 1)
    assert track.track_id == 1 and track.first_frame == 0 and track.hits == 2
    assert tracker.update([face(4, 0), face(300, 300)], 2)[0].track_id == 1
    assert [t.track_id for t in tracker.update([face(6, 0), face(300, 300)], 3)] == [1, 2]


def test_low_scores_continue_tracks_but_do_not_start_them() -> None:
    tracker = Tracker(high_score=0.6)
    tracker.update([face(0, 0)], 0)
    tracker.update([face(5, 0)], 1)
    tracks = tracker.update([face(10, 0, score=0.4), face(300, 0, score=0.4)], 2)
    assert [t.track_id for t in tracks] == [1]
    assert len(tracker.tracks) == 1


def test_missed_frames_keep_the_id_until_max_missed() -> None:
    tracker = Tracker(max_missed=5)
    for frame in range(3):
        tracker.update([face(10 * frame, 0)], frame)
    (track,) = tracker.update([face(10 * 7, 0)], 7)  # 4 frames missed, predicted at x=70
    assert track.track_id == 1
    for frame in range(8, 14):
        assert tracker.update([], frame) == []
    assert tracker.tracks == []  # missed 6 frames > max_missed
    tracker.update([face(140, 0)], 14)
    assert [t.track_id for t in tracker.update([face(150, 0)], 15)] == [2]


def test_prediction_moves_the_box_at_constant_velocity() -> None:
    tracker = Tracker(smoothing=1.0)
    for frame in range(3):
        tracker.update([face(10 * frame, 5 * frame)], frame)
    (predicted,) = tracker.predict(5)
    assert predicted.face.box.tolist() == pytest.approx([50, 25, 110, 85])
    assert predicted.face.keypoints[0].tolist() == pytest.approx([80, 55])
    assert tracker.tracks[0].face.box[0] == 20  # the track itself is unchanged


def test_tracker_rejects_min_hits_below_one() -> None:
    with pytest.raises(ValueError, match="min_hits"):
        Tracker(min_hits=0)


def emotion(top: str, p: float) -> dict[str, float]:
    rest = (1 - p) / (len(EMOTIONS) - 1)
    return {name: p if name == top else rest for name in EMOTIONS}


def test_profile_smooths_attributes() -> None:
    profile = TrackProfile(emotion_smoothing=0.5)
    base = face(0, 0)
    profile.add_attributes(
        Face(
            **{
                **base.__dict__,
                "age": 30.0,
                "gender": Label("female", 0.9),
                "emotion": emotion("happy", 0.9),
                "mask": Label("no_mask", 0.8),
            }
        )
    )
    profile.add_attributes(
        Face(
            **{
                **base.__dict__,
                "age": 40.0,
                "gender": Label("male", 0.6),
                "emotion": emotion("sad", 0.6),
                "mask": Label("mask", 0.6),
            }
        )
    )
    assert profile.age == pytest.approx(35)
    assert profile.gender == Label("female", pytest.approx(0.65))  # mean p(female) (0.9 + 0.4) / 2
    assert profile.mask is not None and profile.mask.label == "no_mask"
    assert profile.dominant_emotion == "happy"
    shown = profile.apply(base)
    assert shown.emotion is not None and shown.emotion["happy"] == pytest.approx(
        0.5 * 0.9 + 0.5 * 0.4 / 6
    )
    assert shown.age == pytest.approx(35) and shown.box is base.box


def test_profile_without_attributes_leaves_faces_bare() -> None:
    profile = TrackProfile()
    shown = profile.apply(face(0, 0))
    assert (shown.age, shown.gender, shown.emotion, shown.mask) == (None, None, None, None)
    assert profile.identity is None and profile.dominant_emotion is None


def test_identity_is_a_vote() -> None:
    profile = TrackProfile()
    for person, similarity in (("ann", 0.7), (None, 0.3), ("bob", 0.9), ("ann", 0.6)):
        profile.add_identity(person, similarity)
    assert profile.identity == "ann"
    profile.add_identity("bob", 0.55)
    assert profile.identity == "bob"  # 2 votes each, bob's similarities sum higher
    unknown = TrackProfile()
    for person in (None, "ann", None):
        unknown.add_identity(person, 0.4)
    assert unknown.identity is None


def test_score_counts_switches_and_new_ids_after_an_absence() -> None:
    box = np.array([0, 0, 50, 50], np.float32)
    truth = [{"a": box}] * 4 + [{}] * 20 + [{"a": box}] * 2
    tracked = [{1: box}, {1: box}, {2: box}, {2: box}] + [{}] * 20 + [{3: box}, {3: box}]
    result = score_tracking(truth, tracked, gap=15)
    assert (result.id_switches, result.new_ids_after_absence, result.tracks) == (1, 1, 3)
    assert result.matched == 1.0


def test_walks_interpolate_and_leave() -> None:
    walk = SCENES["reentry"].walks[1]
    assert walk.centre(0) == (420, 200)
    assert walk.centre(10) == pytest.approx((420 + 300 * 10 / 25, 200))
    assert walk.centre(40) is None  # away between frames 26 and 55
    assert walk.centre(89) == (460, 260)
    assert walk.centre(90) is None
