"""The per-image work of `kao detect`, `kao analyze`, `kao embed` and `kao count`, as one
function whatever runs it: the plain loop of a command or an engine's worker.

A `Task` names the work and its options; it is picklable, and each worker `load`s it once
(the models load there) into a `Processor`. `process_item` turns one image into its record."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from PIL import Image

from kao.errors import ImageError, KaoError
from kao.image import describe
from kao.jobs.inputs import Source, label, load

Processor = Callable[[np.ndarray], tuple[dict[str, Any], Callable[[], np.ndarray]]]
"""Reads one RGB image (H x W x 3 uint8) -> (its JSON fields, a function drawing its annotated
copy)."""


class Loadable(Protocol):
    """Work an engine can run: `load` builds the `Processor` (once per worker)."""

    def load(self) -> Processor:
        """The processor, with its models loaded."""
        ...


@dataclass(frozen=True)
class Item:
    """One image to process: its path or URL (a str, read where the item is processed: see
    `kao.jobs.inputs.load`), and where its annotated copy goes (None: no copy)."""

    path: Source
    annotated: Path | None = None


@dataclass(frozen=True)
class Task:
    """A command's per-image work by name ("detect", "analyze", "embed" or "count") with its
    keyword options (those of the factory in `FACTORIES`); picklable, so workers can load it."""

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)

    def load(self) -> Processor:
        """The processor of this task, its models loaded."""
        return FACTORIES[self.name](**self.options)

    @property
    def dimension(self) -> int | None:
        """The length of the embeddings in its records (embed), else None."""
        if self.name != "embed":
            return None
        from kao.recognition.embedder import DEFAULT_MODEL, model_table

        model = self.options.get("model") or DEFAULT_MODEL
        return next(int(row["dimension"]) for row in model_table() if row["name"] == model)


@dataclass(frozen=True)
class Given:
    """A processor built by the caller: runs only in the caller's process (one worker)."""

    process: Processor

    def load(self) -> Processor:
        """The processor itself."""
        return self.process


def process_item(item: Item, process: Processor) -> dict[str, Any]:
    """The record of one image: `{"image", "width", "height", ...fields}` (plus "annotated",
    the copy written at `item.annotated`), or `{"image", "error"}` when it failed. "image" is
    the path, or the URL as given (without secrets: see `kao.jobs.inputs.label`)."""
    image = label(item.path)
    try:
        rgb = load(item.path)
        fields, draw = process(rgb)
    except KaoError as error:
        reason = error.reason if isinstance(error, ImageError) else str(error)
        return {"image": image, "error": reason}
    record = {"image": image, "width": int(rgb.shape[1]), "height": int(rgb.shape[0])}
    record.update(fields)
    if item.annotated is not None:
        item.annotated.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(draw()).save(item.annotated, quality=92)
        record["annotated"] = describe(item.annotated)
    return record


class LoadedTask:
    """A task loaded once in a worker process (a pool worker or a Ray actor): `process` gives
    each item's record. A task that cannot load (a KaoError: an unknown model, missing weights)
    is kept and raised by each `process`, with its own message, instead of breaking the worker
    (a failing initializer breaks a pool without the reason; a failing Ray actor is restarted
    forever)."""

    def __init__(self, task: Loadable) -> None:
        self.processor: Processor | None = None
        self.failure: str | None = None
        try:
            self.processor = task.load()
        except KaoError as error:
            self.failure = str(error)

    def process(self, item: Item) -> dict[str, Any]:
        """The record of `item` (see `process_item`)."""
        if self.failure is not None:
            raise KaoError(self.failure)
        assert self.processor is not None
        return process_item(item, self.processor)


def detect(
    *,
    min_score: float = 0.6,
    min_size: float = 0.0,
    detector: str = "yunet-n",
    masked_faces: bool = False,
    draw: frozenset[str] | None = None,
) -> Processor:
    """`kao detect`: faces with their quality; the copy shows the `draw` parts."""
    from kao.detection import FaceDetector
    from kao.quality import rated
    from kao.render import DETECT_DRAWING, draw_faces

    found = FaceDetector(
        min_score=min_score, min_size=min_size, model=detector, masked_faces=masked_faces
    )
    parts = DETECT_DRAWING if draw is None else draw

    def process(rgb: np.ndarray) -> tuple[dict[str, Any], Callable[[], np.ndarray]]:
        faces = rated(rgb, found.detect(rgb))
        return {"faces": [face.to_dict() for face in faces]}, lambda: draw_faces(rgb, faces, parts)

    return process


def analyze(
    *,
    min_score: float = 0.6,
    small_faces: bool = False,
    accurate: bool = False,
    cropped: bool = False,
    mesh: bool = False,
    draw: frozenset[str] | None = None,
) -> Processor:
    """`kao analyze`: every attribute of every face (the mesh points with `mesh`)."""
    from kao.analysis import FaceAnalyzer
    from kao.detection import analysis_detector
    from kao.render import ANALYSIS_DRAWING, draw_analysis

    parts = ANALYSIS_DRAWING if draw is None else draw
    detector = analysis_detector(min_score=min_score, small_faces=small_faces)
    analyzer = FaceAnalyzer(detector, accurate=accurate)
    triangles = analyzer.triangles() if mesh or "mesh" in parts else None

    def process(rgb: np.ndarray) -> tuple[dict[str, Any], Callable[[], np.ndarray]]:
        faces = analyzer.analyze(rgb, cropped=cropped)
        fields = {"faces": [face.to_dict(mesh=mesh) for face in faces]}
        return fields, lambda: draw_analysis(rgb, faces, triangles, parts)

    return process


def embed(*, model: str | None = None) -> Processor:
    """`kao embed`: every face with its embedding from `model` (default: the default model)."""
    from kao.recognition import FaceEmbedder

    embedder = FaceEmbedder() if model is None else FaceEmbedder(model=model)

    def process(rgb: np.ndarray) -> tuple[dict[str, Any], Callable[[], np.ndarray]]:
        faces = embedder.embed(rgb)
        fields = {
            "model": embedder.model_name,
            "faces": [face.to_dict(embedding=True) for face in faces],
        }
        return fields, lambda: rgb

    return process


def count(*, method: str = "auto", roi: str | None = None, points: bool = False) -> Processor:
    """`kao count`: the number of people (crowd density or faces), inside the polygon `roi`
    ("x1,y1 x2,y2 ...", see `kao.crowd.roi`) when given, with head points when `points`; the
    copy is a heat map."""
    from kao.crowd import CrowdCounter
    from kao.crowd.heatmap import draw_count
    from kao.crowd.output import count_output
    from kao.crowd.roi import Roi

    counter = CrowdCounter()
    region = Roi.parse(roi) if roi is not None else None

    def process(rgb: np.ndarray) -> tuple[dict[str, Any], Callable[[], np.ndarray]]:
        height, width = rgb.shape[:2]
        output = count_output(counter.count(rgb, method), width, height, roi=region, points=points)
        return output.to_dict(), lambda: draw_count(rgb, output)

    return process


FACTORIES: dict[str, Callable[..., Processor]] = {
    "detect": detect,
    "analyze": analyze,
    "embed": embed,
    "count": count,
}
"""Each `Task` name -> the function building its processor from the task's options."""
