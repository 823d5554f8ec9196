"""People counted over the frames of a video or camera: one row per counted frame, a smoothed
count, and the rows written as CSV or JSON as they come.

The smoother is a centred running median over `window_s` seconds: a frame's smoothed count is
the median of the counts of the counted frames within half a window before and after it. A
median ignores a frame or two that a passing occlusion or a glare throws off (a mean would
follow them) and, being centred, it does not lag behind a crowd that grows or leaves. Each
smoothed value waits for half a window of later frames, so the series runs that far behind the
video; only one window of counts is held (bounded memory on a camera that never ends).
"""

from __future__ import annotations

import csv
import json
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from typing import IO, TYPE_CHECKING

import numpy as np

from kao.errors import KaoError

if TYPE_CHECKING:
    from kao.crowd.counting import CrowdCounter
    from kao.crowd.roi import Polygon
    from kao.video import AnnotatedVideo, Video

WINDOW_S = 3.0
"""Default smoothing window, seconds."""
FORMATS = (".csv", ".json")
"""Series file formats, by extension."""


@dataclass(frozen=True)
class Row:
    """One counted frame: its index `frame` (0-based, in the source), `time_s` (frame / fps),
    the `count` (people, unrounded), the `smoothed` count and the count's 80% range `low` -
    `high`."""

    frame: int
    time_s: float
    count: float
    smoothed: float
    low: float
    high: float

    def to_dict(self) -> dict[str, float | int]:
        """JSON-ready: counts to 0.01 people, the time to 0.001 s."""
        return {
            "frame": self.frame,
            "time_s": round(self.time_s, 3),
            "count": round(self.count, 2),
            "smoothed": round(self.smoothed, 2),
            "low": round(self.low, 2),
            "high": round(self.high, 2),
        }


COLUMNS = tuple(field.name for field in fields(Row))
"""The series' columns, in order."""


@dataclass(frozen=True)
class Sample:
    """A counted frame before smoothing."""

    frame: int
    time_s: float
    count: float
    low: float
    high: float


class CentredMedian:
    """The centred running median of the module's docstring: `push` each sample in time order,
    take the rows it makes ready, and `flush` the rest at the end."""

    def __init__(self, window_s: float = WINDOW_S) -> None:
        if not window_s >= 0:
            raise KaoError(f"--smooth must be 0 or more seconds, got {window_s}")
        self.half = window_s / 2
        self._samples: deque[Sample] = deque()
        self._next = 0  # index in _samples of the first sample without its row

    def push(self, sample: Sample) -> list[Row]:
        """Add `sample` (later than every sample before); the rows whose window is now full."""
        self._samples.append(sample)
        rows = []
        while self._next < len(self._samples):
            pending = self._samples[self._next]
            if sample.time_s - pending.time_s < self.half:
                break
            rows.append(self._row())
        return rows

    def flush(self) -> list[Row]:
        """The rows of the samples still waiting (their windows cut by the end)."""
        return [self._row() for _ in range(self._next, len(self._samples))]

    def _row(self) -> Row:
        pending = self._samples[self._next]
        while self._samples[0].time_s < pending.time_s - self.half:
            self._samples.popleft()
            self._next -= 1
        window = [
            s.count for s in self._samples if abs(s.time_s - pending.time_s) <= self.half + 1e-9
        ]
        self._next += 1
        return Row(
            pending.frame,
            pending.time_s,
            pending.count,
            float(np.median(window)),
            pending.low,
            pending.high,
        )


def smooth(samples: Iterator[Sample], window_s: float = WINDOW_S) -> Iterator[Row]:
    """The rows of `samples` (in time order) smoothed by `CentredMedian`, as they are ready."""
    median = CentredMedian(window_s)
    for sample in samples:
        yield from median.push(sample)
    yield from median.flush()


def count_frames(
    video: Video,
    counter: CrowdCounter,
    *,
    method: str = "auto",
    every: int = 1,
    roi: Polygon | None = None,
    points: bool = False,
    max_frames: int | None = None,
    annotated: AnnotatedVideo | None = None,
) -> Iterator[Sample]:
    """Count the people in every `every`-th frame of `video` (frames 0, every, 2 every, ...,
    up to `max_frames` frames read) by `method`, inside `roi` when given (a polygon placed on
    the frames: `Roi.polygon(video.width, video.height)`), yielding each count as it is made
    (`smooth` them for the series). Each counted frame is drawn to `annotated` with its heat
    map (and head points when `points`). One frame is held at a time."""
    from kao.crowd.heatmap import draw_count
    from kao.crowd.output import count_output

    def samples() -> Iterator[Sample]:
        for index, rgb in enumerate(video.frames()):
            if max_frames is not None and index >= max_frames:
                return
            if index % every:
                continue
            whole = counter.count(rgb, method)
            output = count_output(whole, video.width, video.height, roi=roi, points=points)
            if annotated is not None:
                annotated.write(draw_count(rgb, output))
            shown = output.shown
            yield Sample(index, index / video.fps, shown.count, shown.low, shown.high)

    return samples()


class SeriesWriter:
    """Rows written to `path` as they come: CSV (a header, then `COLUMNS`) or JSON (a list of
    row objects, closed by `close`), chosen by the extension; KaoError for another one."""

    def __init__(self, path: Path) -> None:
        suffix = path.suffix.lower()
        if suffix not in FORMATS:
            raise KaoError(f"--series {path}: write a .csv or .json file")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.rows = 0
        self._file: IO[str] = path.open("w", encoding="utf-8", newline="")
        self._csv = csv.writer(self._file) if suffix == ".csv" else None
        if self._csv is not None:
            self._csv.writerow(COLUMNS)
        else:
            self._file.write("[")

    def write(self, row: Row) -> None:
        """Add `row`."""
        if self._csv is not None:
            self._csv.writerow(row.to_dict().values())
        else:
            self._file.write(("," if self.rows else "") + "\n" + json.dumps(row.to_dict()))
        self.rows += 1
        self._file.flush()

    def close(self) -> None:
        """Finish the file (the JSON list's end)."""
        if self._csv is None:
            self._file.write("\n]\n")
        self._file.close()

    def __enter__(self) -> SeriesWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
