"""`kao.video` and `kao video` on videos built from real photos (`tests/videos.py`): stable
track ids through crossings and exits, identities from a real face database, the summary and
its JSON, the annotated video, bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from kao.analysis import FaceAnalyzer
from kao.cli import main
from kao.detection import FaceDetector
from kao.errors import KaoError, ModelError
from kao.face import EMOTIONS
from kao.gallery.database import FaceDatabase
from kao.recognition.embedder import DEFAULT_MODEL
from kao.video import VideoAnalyzer, open_video, video_detector
from tests.conftest import shared_file
from tests.videos import LFW, make_video, score

ENROLLED = {  # other photos of the people than those in the videos
    "Colin_Powell": ["Colin_Powell_0049.jpg", "Colin_Powell_0071.jpg"],
    "Serena_Williams": ["Serena_Williams_0003.jpg", "Serena_Williams_0014.jpg"],
    "Tony_Blair": ["Tony_Blair_0032.jpg", "Tony_Blair_0048.jpg"],
    "Hugo_Chavez": ["Hugo_Chavez_0027.jpg"],
}
SUMMARY_KEYS = {
    "track_id", "first_frame", "last_frame", "frames", "identity", "age", "emotion", "gender",
    "mask",
}  # fmt: skip


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, list]]:
    """The test videos: scene name -> (file or folder, ground truth per frame)."""
    folder = tmp_path_factory.mktemp("videos")
    made = {}
    for name, out in (
        ("crossing", "crossing.mp4"),
        ("reentry", "reentry.avi"),
        ("three", "three_frames"),
    ):
        made[name] = (folder / out, make_video(name, folder / out))
    return made


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return video_detector()


@pytest.fixture(scope="module")
def gallery(tmp_path_factory: pytest.TempPathFactory) -> str:
    """An SQLite gallery with collection "people": the people of the videos, from other photos."""
    url = f"sqlite:///{tmp_path_factory.mktemp('gallery') / 'faces.db'}"
    root = shared_file(LFW)
    with FaceDatabase(url) as db:
        for person, photos in ENROLLED.items():
            db.enroll("people", person, [root / person / photo for photo in photos])
    return url


def test_two_people_crossing_keep_their_ids(videos: dict, detector: FaceDetector) -> None:
    path, truth = videos["crossing"]
    analysis = VideoAnalyzer(detector)
    result = score(path, truth, analysis)
    assert (result.people, result.id_switches) == (2, 0)
    assert result.matched > 0.95
    assert len(analysis.summary()) == 2  # entering and leaving the frame, no extra track


def test_three_people_from_a_folder_of_frames(videos: dict, detector: FaceDetector) -> None:
    path, truth = videos["three"]
    analysis = VideoAnalyzer(detector)
    result = score(path, truth, analysis)
    assert (result.people, result.tracks, result.id_switches) == (3, 3, 0)
    tracks = analysis.summary()
    assert [t.track_id for t in tracks] == [1, 2, 3]
    entering = tracks[-1]  # Tony Blair comes in from below at frame 30, then stays
    half_in = min(i for i, people in enumerate(truth) if "Tony_Blair" in people)
    assert 30 <= entering.first_frame <= half_in  # found before half of the face is in
    assert entering.last_frame == 89


def test_detecting_every_other_frame_keeps_the_ids(videos: dict, detector: FaceDetector) -> None:
    path, truth = videos["crossing"]
    analysis = VideoAnalyzer(detector, every=2)
    result = score(path, truth, analysis)
    assert (result.tracks, result.id_switches) == (2, 0)
    assert result.matched > 0.9  # the frames between follow the predicted boxes
    assert all(t.last_frame % 2 == 0 for t in analysis.summary())


def test_a_person_coming_back_gets_a_new_track_and_the_same_name(
    videos: dict, gallery: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Serena Williams leaves at the right (frame 25) and comes back a second later (frame 55):
    more than --max-missed (15) frames away, so her second visit is a new track; the database
    names both."""
    path, truth = videos["reentry"]
    out = tmp_path / "annotated.mp4"
    args = ["video", str(path), "--db", gallery, "--collection", "people", "--no-attributes"]
    assert main([*args, "--json", "--out", str(out)]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["frames"] == len(truth) == 90
    assert (report["width"], report["height"], report["fps"]) == (640, 480, 30.0)
    assert report["processing_fps"] > 0 and report["annotated"] == str(out)
    tracks = report["tracks"]
    assert all(set(track) == SUMMARY_KEYS for track in tracks)
    colin, serena, back = sorted(tracks, key=lambda t: (t["identity"] or "", t["first_frame"]))
    assert [t["identity"] for t in (colin, serena, back)] == [
        "Colin_Powell", "Serena_Williams", "Serena_Williams"
    ]  # fmt: skip
    assert back["track_id"] == 3  # a new id after the absence
    assert colin["first_frame"] == serena["first_frame"] == 0 and colin["last_frame"] == 89
    assert serena["last_frame"] < 26 and back["first_frame"] >= 55
    assert colin["frames"] == 90 and all(t["age"] is None for t in tracks)
    capture = cv2.VideoCapture(str(out))
    frames = 0
    while capture.read()[0]:
        frames += 1
    assert frames == 90
    capture.release()


def _decoded(path: Path) -> tuple[str, str, list[np.ndarray]]:
    """The codec, pixel format and RGB frames of the video at `path`, read with PyAV."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
        return stream.codec_context.name, stream.codec_context.pix_fmt, frames


def test_the_annotated_video_plays_in_browsers_without_a_frame_rate_unless_asked(
    videos: dict, tmp_path: Path
) -> None:
    """H.264 MP4 (and VP9 WebM) in 4:2:0, which browsers play; the frame rate is drawn at the
    top left only with --draw ...,fps."""
    path, _ = videos["crossing"]
    for name, draw in (("plain.mp4", "box,track"), ("counter.webm", "box,track,fps")):
        args = ["video", str(path), "--no-attributes", "--max-frames", "10", "--draw", draw]
        assert main([*args, "--out", str(tmp_path / name)]) == 0
    codec, pixels, plain = _decoded(tmp_path / "plain.mp4")
    assert (codec, pixels, len(plain), plain[0].shape) == ("h264", "yuv420p", 10, (480, 640, 3))
    codec, pixels, counter = _decoded(tmp_path / "counter.webm")
    assert (codec, pixels, len(counter)) == ("vp9", "yuv420p", 10)
    with open_video(path) as video:
        source = next(video.frames()).astype(np.int16)
    corner = (slice(0, 24), slice(0, 90))  # where "30.0 fps" is written
    assert np.abs(plain[0][corner] - source[corner]).mean() < 6  # only the encoding's loss
    assert np.abs(counter[0][corner] - source[corner]).mean() > 40


def test_text_summary(videos: dict, capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = videos["crossing"]
    assert main(["video", str(path), "--no-attributes", "--max-frames", "30"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{path}: 30 frames of 640x480 at 30 fps, processed at ")
    assert lines[0].endswith("; 2 tracks")
    assert lines[1].split() == [
        "track", "first", "last", "frames", "identity", "age", "gender", "emotion", "mask"
    ]  # fmt: skip
    assert lines[2].split()[0] == "1" and lines[3].split()[0] == "2"


def test_attributes_are_smoothed_over_each_track(videos: dict, detector: FaceDetector) -> None:
    try:
        analyzer = FaceAnalyzer(detector).load()
    except ModelError as error:
        pytest.skip(f"attribute models not available yet: {error}")
    path, _ = videos["crossing"]
    analysis = VideoAnalyzer(detector, analyzer=analyzer, refresh=15)
    with open_video(path) as video:
        results = list(analysis.run(video.frames()))
    left = min(results[10].faces, key=lambda tracked: float(tracked.face.box[0])).track_id
    tony, serena = sorted(analysis.summary(), key=lambda t: t.track_id != left)
    assert tony.gender is not None and tony.gender.label == "male"
    assert serena.gender is not None and serena.gender.label == "female"
    for track in (tony, serena):
        assert track.age is not None and 15 < track.age < 70
        assert track.emotion in EMOTIONS and track.mask is not None
    shown = [f.face for r in results[40:] for f in r.faces]
    assert shown and all(f.emotion is not None and f.age is not None for f in shown)
    assert all(sum(f.emotion.values()) == pytest.approx(1) for f in shown)


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("missing", "no such file or folder"),
        ("corrupt", "cannot be opened as a video"),
        ("empty", "no images found"),
    ],
)
def test_bad_input_is_an_error(
    kind: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / {"missing": "none.mp4", "corrupt": "broken.mp4", "empty": "frames"}[kind]
    if kind == "corrupt":
        path.write_bytes(np.random.default_rng(0).bytes(20_000))
    if kind == "empty":
        path.mkdir()
    assert main(["video", str(path), "--no-attributes"]) == 1
    err = capsys.readouterr().err
    assert f"kao: error: {path}: {message}" in err
    with pytest.raises(KaoError, match=message):
        open_video(path)


def test_a_missing_camera_is_an_error() -> None:
    with pytest.raises(KaoError, match="camera 99: cannot be opened as a video"):
        open_video("99")


def test_frames_of_different_sizes_are_refused(videos: dict, tmp_path: Path) -> None:
    source, _ = videos["three"]
    for name in ("frame_0000.jpg", "frame_0001.jpg"):
        (tmp_path / name).write_bytes((source / name).read_bytes())
    small = cv2.resize(cv2.imread(str(source / "frame_0002.jpg")), (320, 240))
    cv2.imwrite(str(tmp_path / "frame_0002.jpg"), small)
    with open_video(tmp_path) as video, pytest.raises(KaoError, match="320x240 pixels, but"):
        list(video.frames())


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--out", "x.mkv"], "must end in .mp4, .webm, .avi"),
        (["--collection", "people"], "--collection needs a database"),
        (["--db", "faces.db"], "--db needs --collection"),
        (["--min-score", "2"], "--min-score must be between 0 and 1"),
    ],
)
def test_bad_options(
    extra: list[str], message: str, videos: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KAO_DB", raising=False)
    path, _ = videos["crossing"]
    assert main(["video", str(path), "--no-attributes", *extra]) == 1
    assert message in capsys.readouterr().err


def test_unknown_collection(videos: dict, gallery: str, capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = videos["crossing"]
    args = ["video", str(path), "--db", gallery, "--collection", "nobody", "--no-attributes"]
    assert main(args) == 1
    assert "there is no collection 'nobody'" in capsys.readouterr().err


def test_video_model_must_be_the_collections(
    videos: dict, gallery: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`kao video --db --model M` names tracks with model M; a collection of another model is
    refused with the collection's model named (without --model, its own model is used)."""
    path, _ = videos["reentry"]
    args = ["video", str(path), "--db", gallery, "--collection", "people", "--no-attributes"]
    assert main([*args, "--model", "dlib_resnet_v1", "--max-frames", "3"]) == 1
    error = capsys.readouterr().err
    assert f"'people' holds {DEFAULT_MODEL} embeddings, not dlib_resnet_v1" in error
