"""Test videos built from real photos (`kao.evaluation.synthetic_video`), and tracking them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from kao.evaluation.synthetic_video import SCENES, TrackingScore, score_tracking, write_scene
from kao.video import VideoAnalyzer, open_video
from tests.conftest import shared_file

LFW = "data/lfw/lfw-deepfunneled"
WIDER = "data/widerface_val_subset/images"


def make_video(scene: str, out: Path) -> list[dict[str, np.ndarray]]:
    """Write scene `scene` to `out` (.mp4, .avi or a folder of frames); its ground truth per
    frame. Skips the test when ../shared is not there."""
    return write_scene(SCENES[scene], out, shared_file(LFW), shared_file(WIDER))


def track(source: Path, analysis: VideoAnalyzer) -> list[dict[int, np.ndarray]]:
    """{track id: box} in each frame of `source`, tracked by `analysis`."""
    with open_video(source) as video:
        return [
            {tracked.track_id: tracked.face.box for tracked in result.faces}
            for result in analysis.run(video.frames())
        ]


def score(
    source: Path, truth: list[dict[str, np.ndarray]], analysis: VideoAnalyzer
) -> TrackingScore:
    """How `analysis` tracks the people of `source` against its ground truth `truth`."""
    return score_tracking(truth, track(source, analysis), gap=analysis.tracker.max_missed)
