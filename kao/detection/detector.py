"""`FaceDetector`: YuNet run at the scales that let it see every face size in an image.

YuNet finds faces from about 10 to about 300 pixels in the image it is given. So kao runs:

1. a *whole-image pass* with the image resized so its long side is `whole_side` pixels
   (640 by default: up-scaled when smaller, at most `whole_upscale` times, down-scaled when
   larger), which finds the large and medium faces, a face filling the whole frame included;
2. a *detail pass* for small faces (`small_faces=True`, the default):
   - on an image larger than `whole_side`: **tiling** at the original resolution (down-scaled
     to `detail_side` on its long side for very large photos), in overlapping `tile` x `tile`
     tiles, which finds the small faces of group photos that the down-scaled whole-image pass
     misses;
   - on an image smaller than `whole_side` (thumbnails, low-resolution crowds): an
     **up-scaled pass** at `upscale` times the original size.
   It keeps only faces smaller than a quarter of a tile, so no face is cut by a tile border,
   and smaller than `DETAIL_MAX_FACE` pixels at the whole-image pass's scale; larger faces
   come from the whole-image pass. An image of exactly `whole_side` pixels (a
   640 x 480 photo) gets the whole-image pass only.

The passes are merged by non-maximum suppression, then every box of which more than `nested`
of the area lies inside a larger face that scores at least as high and is at least
`NESTED_MIN_FACE` pixels at the whole-image pass's scale is dropped: at a finer scale YuNet
can take part of a face (its forehead, one half) for a small face, a box too much smaller than
the face around it for IoU-based suppression to drop. (Smaller faces do not drop the boxes
inside them: their boxes are too loose, and the box inside is often the better one.) On WIDER
FACE val at full size this leaves AP as it was (docs/BENCHMARKS.md), and on its 416 px photos
enlarged 3-4x it halves the boxes lying mostly inside another face.

With `masked_faces` (off by default: it costs about 10 ms per 640 x 480 photo on two cores;
`kao.analyze` turns it on), a last pass of UltraFace's masked-face network
(`kao.detection.masked`) adds the faces YuNet missed, most of them faces behind a mask: its
boxes at least `masked.MIN_SIDE` of the image's long side that lie less than `nms_iou` inside
any YuNet face. `analysis_detector` is the setting `kao.analyze` uses. Output is
deterministic: faces are sorted by score, then by position. docs/BENCHMARKS.md measures what
the detail and masked passes add.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from kao.detection.boxes import coverage, drop_nested, nms
from kao.detection.masked import MaskedFaceNet
from kao.detection.yunet import RawDetections, YuNet
from kao.face import Face
from kao.image import ImageInput, load_image

MODELS = {"yunet-n": "yunet_n_dynamic.onnx", "yunet-2023": "face_detection_yunet_from_RuDr8A.onnx"}
"""Detector names -> YuNet files in the model store. yunet-n scores higher on WIDER FACE,
yunet-2023 (the OpenCV Zoo release) runs faster; see docs/BENCHMARKS.md."""
DEFAULT_MODEL = "yunet-n"
DETAIL_MAX_FACE = 96.0
"""The detail pass keeps faces smaller than this, in pixels at the whole-image pass's scale:
larger faces the whole-image pass sees itself, and a face both passes see can come out twice."""
NESTED_MIN_FACE = 48.0
"""Smallest face, in pixels at the whole-image pass's scale, whose box drops the boxes nested
in it (see the module's docstring)."""


@dataclass(frozen=True)
class Pass:
    """One detection pass: image resized by `scale`, cut into tiles of at most `tile` pixels
    (0: no tiling) overlapping by `overlap` pixels; faces at least `max_face` pixels wide
    (in pass pixels) are dropped (0: keep all)."""

    scale: float
    tile: int = 0
    overlap: int = 0
    max_face: float = 0.0


class FaceDetector:
    """Finds faces with YuNet; reusable across images and threads (create once, call often).

    Args:
        min_score: faces scoring below this are dropped (0-1).
        min_size: faces whose box is smaller than this on both sides (pixels) are dropped.
        nms_iou: boxes overlapping a better one by more than this IoU are dropped.
        nested: boxes with more than this share of their area inside a larger face are dropped
            (0-1; 1: none; see the module's docstring).
        whole_side: long side in pixels of the whole-image pass.
        small_faces: run the detail pass (see the module's docstring); off: whole-image pass only.
        detail_side: largest long side in pixels of the tiled detail pass.
        tile: tile size of the detail pass, pixels.
        upscale: scale of the detail pass for images smaller than `whole_side`.
        whole_upscale: largest up-scaling of the whole-image pass (default: none, a small
            image is always resized to `whole_side`).
        model: a name in `MODELS`.
        masked_faces: run the masked-face pass (see the module's docstring).
        masked_min_score: faces of the masked-face pass scoring below this are dropped (0-1).
        threads: ONNX Runtime threads (default: `KAO_THREADS`, else the idle cores at each run;
            see `kao.models.runtime`).
    """

    def __init__(
        self,
        *,
        min_score: float = 0.6,
        min_size: float = 0.0,
        nms_iou: float = 0.3,
        nested: float = 0.5,
        whole_side: int = 640,
        small_faces: bool = True,
        detail_side: int = 4096,
        tile: int = 1024,
        upscale: float = 2.0,
        whole_upscale: float = math.inf,
        model: str = DEFAULT_MODEL,
        masked_faces: bool = False,
        masked_min_score: float = 0.7,
        threads: int | None = None,
    ) -> None:
        if not 0.0 <= min_score <= 1.0:
            raise ValueError(f"min_score must be in [0, 1], got {min_score}")
        if not 0.0 <= nested <= 1.0:
            raise ValueError(f"nested must be in [0, 1], got {nested}")
        self.min_score = min_score
        self.min_size = min_size
        self.nms_iou = nms_iou
        self.nested = nested
        self.whole_side = whole_side
        self.small_faces = small_faces
        self.detail_side = detail_side
        self.tile = tile
        self.upscale = upscale
        self.whole_upscale = whole_upscale
        if model not in MODELS:
            raise ValueError(f"unknown detector {model!r}; choose one of {', '.join(MODELS)}")
        self.network = YuNet(MODELS[model], threads)
        self.masked_min_score = masked_min_score
        self.masked = MaskedFaceNet(threads) if masked_faces else None

    def passes(self, height: int, width: int) -> list[Pass]:
        """The passes run on an image of `height` x `width` pixels."""
        long_side = max(height, width)
        whole = Pass(scale=min(self.whole_side / long_side, self.whole_upscale))
        detail_scale = min(1.0, self.detail_side / long_side)
        if long_side < self.whole_side:
            detail_scale = self.upscale
        if not self.small_faces or detail_scale <= whole.scale * 1.2:
            return [whole]
        overlap = self.tile // 4
        max_face = min(overlap, DETAIL_MAX_FACE * detail_scale / whole.scale)
        return [whole, Pass(scale=detail_scale, tile=self.tile, overlap=overlap, max_face=max_face)]

    def detect(self, image: ImageInput) -> list[Face]:
        """Faces in `image` (path, bytes, RGB array or PIL image), best score first."""
        rgb = load_image(image, copy=False)
        height, width = rgb.shape[:2]
        passes = self.passes(height, width)
        found = RawDetections.concat([self._run_pass(rgb, p) for p in passes])
        found = found.take(nms(found.boxes, found.scores, self.nms_iou))
        min_side = NESTED_MIN_FACE / passes[0].scale
        found = found.take(drop_nested(found.boxes, found.scores, self.nested, min_side))
        if self.masked is not None:
            extra = self.masked.run(rgb, self.masked_min_score)
            found = RawDetections.concat([found, _new_faces(extra, found, self.nms_iou)])
        boxes = found.boxes.copy()
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, width)
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, height)
        sizes = RawDetections(boxes, found.scores, found.keypoints).sizes()
        faces = [
            Face(box=boxes[i], score=float(found.scores[i]), keypoints=found.keypoints[i])
            for i in range(len(boxes))
            if sizes[i] >= self.min_size and sizes[i] > 0
        ]
        faces.sort(key=lambda f: (-round(f.score, 6), float(f.box[1]), float(f.box[0])))
        return faces

    def detect_many(self, images: Iterable[ImageInput]) -> Iterator[list[Face]]:
        """Faces of each image in turn (see `detect`)."""
        for image in images:
            yield self.detect(image)

    def _run_pass(self, rgb: np.ndarray, p: Pass) -> RawDetections:
        height, width = rgb.shape[:2]
        new_w = max(1, round(width * p.scale))
        new_h = max(1, round(height * p.scale))
        if (new_w, new_h) == (width, height):
            resized = rgb
        else:
            interpolation = cv2.INTER_AREA if p.scale < 1 else cv2.INTER_LINEAR
            resized = cv2.resize(rgb, (new_w, new_h), interpolation=interpolation)
        sx, sy = new_w / width, new_h / height
        parts = []
        for x0, y0, x1, y1 in _tiles(new_w, new_h, p.tile, p.overlap):
            raw = self.network.run(resized[y0:y1, x0:x1], self.min_score)
            if p.max_face:
                raw = raw.take(np.nonzero(raw.sizes() < p.max_face)[0])
            parts.append(raw.mapped(x0, y0))
        return RawDetections.concat(parts).mapped(0, 0, sx, sy)


ANALYSIS_UPSCALE = 1.5
"""How much `analysis_detector` up-scales small photos, at most (both passes)."""


def analysis_detector(
    *,
    min_score: float = 0.6,
    small_faces: bool = False,
    masked_faces: bool = True,
    threads: int | None = None,
) -> FaceDetector:
    """The detector of `kao.analyze` (and of the attribute evaluations): the masked-face pass
    on, so that faces behind a mask are found, and photos smaller than `whole_side` up-scaled
    `ANALYSIS_UPSCALE` times at most instead of to `whole_side` (unless `small_faces`). So a
    250 x 250 photo runs YuNet at 375 x 375, not 640 x 640: half the detection time, but fewer
    of the faces under about 20 pixels of small photos are found (docs/BENCHMARKS.md measures
    both). `masked_faces=False` leaves the masked-face pass out (to measure what it adds);
    `min_score` and `threads` as for `FaceDetector`."""
    if small_faces:
        return FaceDetector(min_score=min_score, masked_faces=masked_faces, threads=threads)
    return FaceDetector(
        min_score=min_score,
        masked_faces=masked_faces,
        whole_upscale=ANALYSIS_UPSCALE,
        upscale=ANALYSIS_UPSCALE,
        threads=threads,
    )


def _new_faces(extra: RawDetections, found: RawDetections, iou: float) -> RawDetections:
    """The faces of `extra`, after non-maximum suppression, of which no more than `iou` of the
    box lies inside a face of `found` (a box mostly inside a face is that face, or part of it)."""
    extra = extra.take(nms(extra.boxes, extra.scores, iou))
    if len(found.scores) and len(extra.scores):
        overlap = coverage(extra.boxes, found.boxes).max(axis=1)
        extra = extra.take(np.nonzero(overlap <= iou)[0])
    return extra


def _tiles(width: int, height: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """Windows (x0, y0, x1, y1) covering a width x height image with tiles of at most `tile`
    pixels overlapping by at least `overlap` (one window when `tile` is 0 or large enough)."""
    if not tile:
        return [(0, 0, width, height)]
    return [
        (x, y, min(x + tile, width), min(y + tile, height))
        for y in _starts(height, tile, overlap)
        for x in _starts(width, tile, overlap)
    ]


def _starts(length: int, tile: int, overlap: int) -> list[int]:
    if length <= tile:
        return [0]
    count = int(np.ceil((length - overlap) / (tile - overlap)))
    step = (length - tile) / (count - 1)
    return [round(i * step) for i in range(count)]
