"""Live video, one frame at a time: the state of one camera stream (`LiveSession`), as the
WebSocket ``/v1/live`` of `kao serve` keeps it per connection.

A session is `kao video` over frames that arrive one by one as encoded images (JPEG, PNG,
...): the same `kao.video.VideoAnalyzer` detects and tracks the faces, names each track by a
vote over its identifications in a collection and smooths its attributes, and each frame's
answer is the per-frame record of `kao video --json` (`kao.video.frame_record`). With
`landmarks`, FaceMesh runs on every face of every frame, for the 468-point mesh, the iris,
the 68 points, the head pose and the gaze.

A frame's answer does not wait for the identification and attribute models: `process` sets
the tracks due for them aside (`VideoAnalyzer(deferred=True)`) and the caller runs
`describe` in another thread meanwhile; the names and attributes reach the answers of the
frames processed after it ends (a new track is named a few frames after it appears).
"""

from __future__ import annotations

import functools
import threading
import time
from dataclasses import dataclass
from typing import Any

from kao.analysis import FaceAnalyzer
from kao.detection import FaceDetector
from kao.errors import ImageError, KaoError
from kao.gallery.database import FaceDatabase
from kao.image import load_image
from kao.video import VideoAnalyzer, frame_record, video_detector

MAX_FRAME_BYTES = 4 * 1024 * 1024
"""Largest encoded frame a session takes (bytes); a 1080p JPEG is a few hundred KB."""
MAX_FRAME_PIXELS = 4096 * 2304
"""Largest frame a session decodes (width x height: 4K UHD), checked from the image's
header before decoding."""
DEFAULT_REFRESH = 30
"""Frames between two identifications / attribute runs of one track: about 1-2 s of live video
(`kao video` refreshes every 10 frames; live, fewer runs leave the frames more CPU: 15.7-17.3
answered frames/s with attributes instead of 8.8-11.5 at refresh 10 in `kao bench live`'s
scene on a busy 2-core machine)."""
TRACKS_PER_BATCH = 1
"""Tracks identified and analysed in one batch at most (`LiveSession.describe`): each face's
name and attributes show up as soon as its own are done."""


class SessionBusy(KaoError):
    """A frame came while the session was still working on the previous one."""


@functools.cache
def live_detector() -> FaceDetector:
    """The detector every live session of this process shares: `kao video`'s (the whole-image
    pass of YuNet, one thread)."""
    return video_detector()


@dataclass(frozen=True)
class LiveOptions:
    """What a session computes.

    Attributes:
        collection: name the tracks from this collection (None: no names).
        model: recognition model to identify with (None: the collection's own).
        attributes: age, gender, emotion and mask, smoothed per track.
        landmarks: FaceMesh on every face of every frame: mesh, iris, 68 points, pose, gaze;
            the frame records then hold the 468 mesh and 10 iris points.
        refresh: frames between two identifications / attribute runs of one track (>= 1).
    """

    collection: str | None = None
    model: str | None = None
    attributes: bool = True
    landmarks: bool = False
    refresh: int = DEFAULT_REFRESH

    def __post_init__(self) -> None:
        if self.refresh < 1:
            raise KaoError(f"refresh must be at least 1, got {self.refresh}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "collection": self.collection,
            "model": self.model,
            "attributes": self.attributes,
            "landmarks": self.landmarks,
            "refresh": self.refresh,
        }


def canonical_layout() -> dict[str, Any]:
    """{"triangles": (T, 3) vertex indices of the 468-point mesh, "uvs": (468, 2) texture
    coordinates in [0, 1] (v up)}: the canonical face's, for drawing a wireframe or mapping a
    texture onto the mesh points of the frame records."""
    from kao.geometry import canonical_model

    model = canonical_model()
    return {
        "triangles": model.triangles.astype(int).tolist(),
        "uvs": [[round(float(u), 5), round(float(v), 5)] for u, v in model.uvs],
    }


class LiveSession:
    """The tracks of one stream of frames; `process` takes them one at a time.

    Args:
        options: what to compute (`LiveOptions`).
        detector: finds the faces (default: `live_detector()`).
        analyzer: for attributes and landmarks (needed when `options` asks for either).
        database: the database to identify from (needed with `options.collection`).
        max_bytes, max_pixels: the largest frame taken, encoded bytes and decoded pixels.
    """

    def __init__(
        self,
        options: LiveOptions,
        *,
        detector: FaceDetector | None = None,
        analyzer: FaceAnalyzer | None = None,
        database: FaceDatabase | None = None,
        max_bytes: int = MAX_FRAME_BYTES,
        max_pixels: int = MAX_FRAME_PIXELS,
    ) -> None:
        if (options.attributes or options.landmarks) and analyzer is None:
            raise KaoError("attributes and landmarks need the analysis models")
        if options.collection is not None and database is None:
            raise KaoError("names need a face database")
        self.options = options
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels
        self.analysis = VideoAnalyzer(
            detector or live_detector(),
            analyzer=analyzer if options.attributes else None,
            database=database if options.collection else None,
            collection=options.collection,
            refresh=options.refresh,
            landmarks=analyzer.landmarks if options.landmarks and analyzer else None,
            most=TRACKS_PER_BATCH,
            deferred=True,
        )
        self.frames = 0
        """Frames processed so far (the next frame's index)."""
        self._start: float | None = None
        self._lock = threading.Lock()

    def process(self, data: bytes, received: float | None = None) -> dict[str, Any]:
        """The answer to one encoded frame `data`, received at `received` (`time.monotonic()`
        seconds; default: now): `kao.video.frame_record` (its "time" counted from the first
        frame) with "type": "frame", the frame's "width" and "height", and "latency_ms", the
        milliseconds from `received` to the answer. Raises `ImageError` for a frame over the
        limits or that does not decode (the session goes on), `SessionBusy` when another
        thread is processing a frame of this session."""
        received = time.monotonic() if received is None else received
        if not self._lock.acquire(blocking=False):
            raise SessionBusy("the previous frame is still being processed")
        try:
            if len(data) > self.max_bytes:
                raise ImageError(
                    "frame", f"image too large: {len(data)} bytes, over {self.max_bytes}"
                )
            rgb = load_image(data, max_pixels=self.max_pixels, copy=False)
            if self._start is None:
                self._start = received
            index = self.frames
            faces = self.analysis.process(rgb, index)
            self.frames += 1
            record = frame_record(index, received - self._start, faces, mesh=self.options.landmarks)
            return {
                "type": "frame",
                **record,
                "width": int(rgb.shape[1]),
                "height": int(rgb.shape[0]),
                "latency_ms": round(1000 * (time.monotonic() - received), 1),
            }
        finally:
            self._lock.release()

    @property
    def pending(self) -> bool:
        """Whether identification / attributes wait for `describe`."""
        return self.analysis.pending

    def describe(self) -> None:
        """Identify and analyse the faces that the frames set aside (see the module's
        docstring); in another thread than `process`, one call at a time."""
        self.analysis.describe_pending()
