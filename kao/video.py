"""Faces in video: frames read from a video file, a folder of frames or a camera, faces detected
and tracked (`kao.tracking`), each track's identity voted from a face collection and its
attributes smoothed, annotated frames written to a video, and a summary per track.

Identification and attributes do not run on every frame: a track's face is embedded and
analysed when the track is confirmed, then every `refresh` frames, and only while its box lies
wholly inside the frame (a face cut by the border gives poor answers). With `every` N > 1 the
detector runs on every N-th frame only; the frames between show the tracks' predicted boxes.
Each frame's tracked faces are also a JSON record (`frame_record`: `kao video --json`'s
"per_frame", and what the live WebSocket sends, `kao.live`).
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from kao.analysis import FaceAnalyzer
from kao.detection import FaceDetector
from kao.errors import KaoError
from kao.face import Face, Label
from kao.gallery.database import FaceDatabase
from kao.image import find_images, load_image
from kao.render import VIDEO_DRAWING, banner_rect, caption, draw_banner, draw_faces
from kao.tracking import Track, Tracker, TrackProfile

if TYPE_CHECKING:
    from kao.landmarks import FaceMesh

LOW_SCORE = 0.3
"""Detections down to this score are kept to continue tracks (the tracker's second pass)."""
DETECTOR_THREADS = 1
"""Detector threads for video: on the 2-core test machine, busy with other work, one thread
detected 1.7x faster than two (`kao bench video`), and it leaves a core to decoding, encoding
and the attribute models; unloaded, two threads gain a few milliseconds a frame."""
DEFAULT_FPS = 30.0
"""Frame rate assumed for a folder of frames, or a video that does not say its own."""
FPS_WINDOW = 30
"""Frames over which the live frames-per-second figure is measured."""
WRITERS = {
    ".mp4": ("libx264", "yuv420p", {"preset": "veryfast", "crf": "23"}),
    ".webm": (
        "libvpx-vp9",
        "yuv420p",
        {"deadline": "realtime", "cpu-used": "8", "crf": "32", "b": "0"},
    ),
    ".avi": ("mjpeg", "yuvj420p", {}),
}
"""Annotated video formats: file extension -> (FFmpeg encoder, pixel format, its options).
H.264 (x264, baseline-compatible 4:2:0) and VP9 play in browsers; Motion JPEG is kept for
.avi."""
CONTAINER_OPTIONS = {".mp4": {"movflags": "+faststart"}}
"""Muxer options by extension: the MP4 index goes first, so a browser plays while loading."""
TRACK_COLOURS = ((255, 200, 0), (0, 200, 255), (255, 80, 200), (120, 255, 80), (255, 120, 60))
"""RGB colours of the track labels, by track id."""


def video_detector(
    *,
    min_score: float = 0.6,
    model: str = "yunet-n",
    masked_faces: bool = False,
    threads: int | None = DETECTOR_THREADS,
) -> FaceDetector:
    """The detector for video frames: the whole-image pass only (a 640 x 480 frame gets no
    detail pass anyway), the masked-face pass only when asked (it costs more than YuNet, see
    docs/BENCHMARKS.md), faces kept down to `LOW_SCORE` (or `min_score`, the score that starts
    a track, when lower) for the tracker, on `threads` ONNX Runtime threads (None: as
    `FaceDetector`, `KAO_THREADS` or every core)."""
    return FaceDetector(
        min_score=min(LOW_SCORE, min_score),
        small_faces=False,
        model=model,
        masked_faces=masked_faces,
        threads=threads,
    )


class Video:
    """Frames of a video file, a folder of frames or a camera; `frames()` yields them once.

    Attributes:
        source: the input as given (a camera is "camera N").
        width, height: frame size in pixels.
        fps: frames per second of the source (`DEFAULT_FPS` when it does not say).
        count: frames in the source as it reports it (None for a camera).
    """

    def __init__(
        self,
        source: str,
        first: np.ndarray,
        rest: Iterator[np.ndarray],
        fps: float,
        count: int,
        release: Callable[[], None] | None = None,
    ) -> None:
        self.source = source
        self.height, self.width = first.shape[:2]
        self.fps = fps if np.isfinite(fps) and fps > 0 else DEFAULT_FPS
        self.count = count if count > 0 else None
        self._first: np.ndarray | None = first
        self._rest = rest
        self._release = release

    def frames(self) -> Iterator[np.ndarray]:
        """Each frame, H x W x 3 uint8 RGB, in order."""
        if self._first is not None:
            first, self._first = self._first, None
            yield first
        yield from self._rest

    def close(self) -> None:
        """Stop reading and free the source (the capture device or file)."""
        if self._release is not None:
            self._release()

    def __enter__(self) -> Video:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_video(source: str | os.PathLike[str]) -> Video:
    """Open a video file (whatever OpenCV reads: mp4, avi, ...), a folder of frames (its image
    files in sorted order, all of one size) or a camera (an index such as "0"). The first frame
    is read now: raises KaoError when the source is missing, unreadable or has no frame."""
    text = os.fspath(source)
    path = Path(text)
    if text.isdigit() and not path.exists():
        return _capture(cv2.VideoCapture(int(text)), f"camera {text}", camera=True)
    if path.is_dir():
        return _folder(path)
    if not path.exists():
        raise KaoError(f"{text}: no such file or folder")
    return _capture(cv2.VideoCapture(text), text)


def _capture(capture: cv2.VideoCapture, source: str, *, camera: bool = False) -> Video:
    if not capture.isOpened():
        capture.release()
        raise KaoError(f"{source}: cannot be opened as a video")
    ok, bgr = capture.read()
    if not ok or bgr is None:
        capture.release()
        raise KaoError(f"{source}: no frame could be decoded (not a video, or a damaged one)")

    def rest() -> Iterator[np.ndarray]:
        while True:
            ok, bgr = capture.read()
            if not ok:
                return
            yield np.ascontiguousarray(bgr[:, :, ::-1])

    fps = capture.get(cv2.CAP_PROP_FPS)
    count = 0 if camera else int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    first = np.ascontiguousarray(bgr[:, :, ::-1])
    return Video(source, first, rest(), fps, count, capture.release)


def _folder(path: Path) -> Video:
    files = find_images([path])
    first = load_image(files[0])

    def rest() -> Iterator[np.ndarray]:
        for file in files[1:]:
            rgb = load_image(file)
            if rgb.shape != first.shape:
                raise KaoError(
                    f"{file}: frame of {rgb.shape[1]}x{rgb.shape[0]} pixels, but the first frame "
                    f"({files[0].name}) is {first.shape[1]}x{first.shape[0]}"
                )
            yield rgb

    return Video(str(path), first, rest(), DEFAULT_FPS, len(files))


@dataclass(frozen=True)
class TrackedFace:
    """A face in one frame: its `track_id`, the face (box and keypoints of this frame; age,
    gender, emotion and mask smoothed over the track), the track's `identity` (None: unknown
    or not identified) and whether it was `detected` in this frame (else predicted)."""

    track_id: int
    face: Face
    identity: str | None
    detected: bool

    def to_dict(self, *, mesh: bool = False) -> dict[str, Any]:
        """{"track_id", "identity", "detected"} and the face's record (`Face.to_dict`: box,
        score, keypoints; with attributes or landmarks, every analysis key; with `mesh`, the
        468 mesh and 10 iris points)."""
        return {
            "track_id": self.track_id,
            "identity": self.identity,
            "detected": self.detected,
            **self.face.to_dict(mesh=mesh),
        }


def frame_record(
    index: int, seconds: float, faces: Sequence[TrackedFace], *, mesh: bool = False
) -> dict[str, Any]:
    """The per-frame record of `kao video --json` and of the live WebSocket (`kao.live`):
    {"frame": 0-based index, "time": `seconds` since the first frame (rounded to 1 ms),
    "faces": [`TrackedFace.to_dict`]}."""
    return {
        "frame": index,
        "time": round(seconds, 3),
        "faces": [tracked.to_dict(mesh=mesh) for tracked in faces],
    }


@dataclass(frozen=True)
class FrameResult:
    """One processed frame: its number (0-based), the frame itself (H x W x 3 uint8 RGB), the
    tracked faces and the live frames per second (end to end, over the last `FPS_WINDOW`
    frames)."""

    index: int
    image: np.ndarray
    faces: list[TrackedFace]
    fps: float


@dataclass(frozen=True)
class TrackSummary:
    """A track over the whole video: the first and last frame it was detected in, the number of
    frames it was detected in, the voted identity, mean age (years), dominant emotion, gender
    and mask (by mean probability); attributes are None when never computed."""

    track_id: int
    first_frame: int
    last_frame: int
    frames: int
    identity: str | None
    age: float | None
    emotion: str | None
    gender: Label | None
    mask: Label | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "track_id": self.track_id,
            "first_frame": self.first_frame,
            "last_frame": self.last_frame,
            "frames": self.frames,
            "identity": self.identity,
            "age": None if self.age is None else round(self.age, 1),
            "emotion": self.emotion,
            "gender": None if self.gender is None else self.gender.to_dict(),
            "mask": None if self.mask is None else self.mask.to_dict(),
        }


class VideoAnalyzer:
    """Detection, tracking, identities and attributes over the frames of one video.

    Args:
        detector: finds the faces of a frame; its `min_score` is the floor of the tracker's
            low-score detections.
        tracker: gives the faces track ids (default: `Tracker()`).
        analyzer: computes age, gender, emotion and mask (None: no attributes).
        database, collection: identify the tracks' faces in this collection (None: no names).
        every: run the detector on every N-th frame (1: every frame).
        refresh: frames between two identifications / attribute runs of one track.
        landmarks: a `kao.landmarks.FaceMesh` to fit on every detected face of every frame,
            with the head pose and gaze from it (None: only the refreshes' analyses).
        most: at most this many tracks are identified and analysed in one frame, the ones
            waiting longest first (None: every track due).
        deferred: `process` does not identify or analyse: it sets aside the tracks due (while
            no earlier batch waits or runs) for `describe_pending`, which another thread
            runs meanwhile; the results reach the frames processed after it ends. Live video
            answers each frame without waiting for the attribute models.
    """

    def __init__(
        self,
        detector: FaceDetector,
        *,
        tracker: Tracker | None = None,
        analyzer: FaceAnalyzer | None = None,
        database: FaceDatabase | None = None,
        collection: str | None = None,
        every: int = 1,
        refresh: int = 10,
        landmarks: FaceMesh | None = None,
        most: int | None = None,
        deferred: bool = False,
    ) -> None:
        if every < 1 or refresh < 1:
            raise KaoError(f"every and refresh must be at least 1, got {every} and {refresh}")
        if most is not None and most < 1:
            raise KaoError(f"most must be at least 1, got {most}")
        if (database is None) != (collection is None):
            raise KaoError("identities need both a database and a collection")
        self.detector = detector
        self.tracker = tracker or Tracker()
        self.analyzer = analyzer
        self.database = database
        self.collection = collection
        self.every = every
        self.refresh = refresh
        self.landmarks = landmarks
        self.most = most
        self.deferred = deferred
        self._profiles_lock = threading.Lock()  # the profiles, when described in another thread
        self._pending: tuple[np.ndarray, list[tuple[int, Face]]] | None = None
        self._describing = False
        self._tracks: dict[int, tuple[Track, TrackProfile]] = {}
        self._refreshed: dict[int, int] = {}  # track id -> frame of its last refresh

    def process(self, rgb: np.ndarray, index: int) -> list[TrackedFace]:
        """The tracked faces of frame number `index` (increasing), `rgb` H x W x 3 uint8."""
        detected = index % self.every == 0
        if detected:
            tracks = self.tracker.update(self.detector.detect(rgb), index)
            with self._profiles_lock:
                for track in tracks:
                    self._tracks.setdefault(track.track_id, (track, TrackProfile()))
            due = self._due(rgb, index, tracks)
            if due and self.deferred:
                self._pending = (rgb, due)
            elif due:
                self._describe(rgb, due)
        else:
            tracks = self.tracker.predict(index)
        faces = [track.face for track in tracks]
        if detected and self.landmarks is not None and faces:
            faces = [_with_geometry(face) for face in self.landmarks.run(rgb, faces)]
        result = []
        with self._profiles_lock:
            for track, face in zip(tracks, faces, strict=True):
                profile = self._tracks[track.track_id][1]
                tracked = TrackedFace(
                    track.track_id, profile.apply(face), profile.identity, detected
                )
                result.append(tracked)
        return result

    @property
    def pending(self) -> bool:
        """Whether a deferred description waits for `describe_pending`."""
        return self._pending is not None

    def describe_pending(self) -> None:
        """Identify and analyse the faces that `process` set aside (`deferred`), if any; may
        run in another thread than `process`, one call at a time."""
        taken, self._pending = self._pending, None
        if taken is None:
            return
        try:
            self._describe(*taken)
        finally:
            self._describing = False

    def run(self, frames: Iterable[np.ndarray]) -> Iterator[FrameResult]:
        """Process `frames` in order; the live fps counts the time between successive frames,
        so the caller's work on each result (drawing, writing) is part of it."""
        spent: deque[float] = deque(maxlen=FPS_WINDOW)
        last = time.perf_counter()
        for index, rgb in enumerate(frames):
            faces = self.process(rgb, index)
            now = time.perf_counter()
            spent.append(now - last)
            last = now
            yield FrameResult(index, rgb, faces, len(spent) / max(sum(spent), 1e-9))

    def summary(self) -> list[TrackSummary]:
        """Every confirmed track so far, by track id."""
        return [
            TrackSummary(
                track_id=track_id,
                first_frame=track.first_frame,
                last_frame=track.last_frame,
                frames=track.hits,
                identity=profile.identity,
                age=profile.age,
                emotion=profile.dominant_emotion,
                gender=profile.gender,
                mask=profile.mask,
            )
            for track_id, (track, profile) in sorted(self._tracks.items())
        ]

    def _due(self, rgb: np.ndarray, index: int, tracks: list[Track]) -> list[tuple[int, Face]]:
        """(track id, face) of the tracks to identify and analyse now (see the module's
        docstring), at most `most`, marked as refreshed in frame `index`; none while a
        deferred description waits or runs."""
        if (self.analyzer is None and self.database is None) or self._describing:
            return []
        height, width = rgb.shape[:2]
        due = [
            track
            for track in tracks
            if index - self._refreshed.get(track.track_id, -self.refresh) >= self.refresh
            and _inside(track.face.box, width, height)
        ]
        due.sort(key=lambda track: self._refreshed.get(track.track_id, -self.refresh))
        due = due[: self.most]
        for track in due:
            self._refreshed[track.track_id] = index
        self._describing = self.deferred and bool(due)
        return [(track.track_id, track.face) for track in due]

    def _describe(self, rgb: np.ndarray, due: list[tuple[int, Face]]) -> None:
        """Identify and analyse the faces `due` (track id, face in `rgb`), into their tracks'
        profiles."""
        faces = [face for _, face in due]
        if self.analyzer is not None:
            analysed = self.analyzer.analyze_faces(rgb, faces)
            with self._profiles_lock:
                for (track_id, _), face in zip(due, analysed, strict=True):
                    self._tracks[track_id][1].add_attributes(face)
        if self.database is not None and self.collection is not None:
            embedder = self.database.embedder_for(self.collection)
            embedded = embedder.embed_faces(rgb, faces)
            found = self.database.identify_faces(self.collection, embedded, top=1)
            with self._profiles_lock:
                for (track_id, _), answer in zip(due, found, strict=True):
                    similarity = answer.matches[0].similarity if answer.matches else 0.0
                    self._tracks[track_id][1].add_identity(answer.person, similarity)


def _with_geometry(face: Face) -> Face:
    """`face` (after FaceMesh) with its head pose and gaze; unchanged when FaceMesh did not
    fit it (its `missing` says why)."""
    from kao.geometry import gaze, head_pose

    if face.mesh is None:
        return face
    return dataclasses.replace(face, pose=head_pose(face), gaze=gaze(face))


def _inside(box: np.ndarray, width: int, height: int) -> bool:
    """Whether `box` lies wholly inside the frame (the detector clips boxes at its border)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    return x1 > 0 and y1 > 0 and x2 < width and y2 < height


def label(tracked: TrackedFace) -> str:
    """The track's label, e.g. "#3 alice" (the id alone when no identity)."""
    return f"#{tracked.track_id}" + (f" {tracked.identity}" if tracked.identity else "")


def draw_frame(result: FrameResult, parts: Collection[str] = VIDEO_DRAWING) -> np.ndarray:
    """A copy of the result's frame (H x W x 3 uint8 RGB, the same size) with the `parts` of
    each tracked face drawn (see `kao.render.PARTS`): its caption starts with the track's
    label ("track"), in the track's colour; a crowded frame gets the track labels as tags, and
    no legend. "fps" writes the live frames per second at the top left, where no label goes."""
    faces = [tracked.face for tracked in result.faces]
    tags = [label(tracked) for tracked in result.faces] if "track" in parts else None
    captions = [_frame_caption(tracked, parts) for tracked in result.faces]
    colours = [TRACK_COLOURS[tracked.track_id % len(TRACK_COLOURS)] for tracked in result.faces]
    banner = f"{result.fps:.1f} fps" if "fps" in parts else ""
    reserved = [banner_rect(result.image.shape, banner)] if banner else []
    canvas = draw_faces(
        result.image,
        faces,
        parts,
        captions=captions,
        tags=tags,
        colours=colours,
        legend=False,
        reserved=reserved,
    )
    if banner:
        draw_banner(canvas, banner)
    return canvas


def _frame_caption(tracked: TrackedFace, parts: Collection[str]) -> str:
    """The tracked face's caption: its track label (with "track"), then its attributes."""
    texts = (label(tracked) if "track" in parts else "", caption(tracked.face, parts))
    return " | ".join(text for text in texts if text)


class AnnotatedVideo:
    """An output video of RGB frames of `width` x `height` at `fps`, its format chosen by the
    file's extension (`WRITERS`): H.264 MP4 and VP9 WebM play in web browsers. Written with
    PyAV (FFmpeg's libraries); frames of an odd size get one more row or column (a copy of the
    last) as 4:2:0 video needs even sizes. Raises KaoError for another extension."""

    def __init__(self, path: Path, width: int, height: int, fps: float) -> None:
        import av

        writer = WRITERS.get(path.suffix.lower())
        if writer is None:
            raise KaoError(f"{path}: the annotated video must end in {', '.join(WRITERS)}")
        codec, pixels, options = writer
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.frames = 0
        self._container = av.open(
            str(path), "w", options=CONTAINER_OPTIONS.get(path.suffix.lower(), {})
        )
        self._stream = self._container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        self._stream.width = width + width % 2
        self._stream.height = height + height % 2
        self._stream.pix_fmt = pixels
        self._stream.options = options

    def write(self, rgb: np.ndarray) -> None:
        """Add one frame, H x W x 3 uint8 RGB of the video's size."""
        import av

        height, width = rgb.shape[:2]
        even = np.pad(rgb, ((0, height % 2), (0, width % 2), (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(even), format="rgb24")
        self._container.mux(self._stream.encode(frame))
        self.frames += 1

    def close(self) -> None:
        """Flush the encoder and finish the file."""
        self._container.mux(self._stream.encode(None))
        self._container.close()

    def __enter__(self) -> AnnotatedVideo:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
