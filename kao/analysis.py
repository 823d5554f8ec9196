"""`FaceAnalyzer` and `analyze`: detection, then every analysis stage on each face.

Stages, in order (each a model of its own module; `STAGES` names them):

- ``landmarks``: MediaPipe FaceMesh 468 points, iris, the 68-point layout (`kao.landmarks`);
- ``pose``: head pose and gaze from the mesh and the canonical face (`kao.geometry`), then
  the face's `kao.face.Quality` (`kao.quality`);
- ``age_gender``, ``emotion``, ``mask``: one face crop each (`kao.attributes`), read only on
  faces at least `kao.quality.MIN_SIZE` pixels for the attribute: on a smaller face the
  attribute is None and `missing` says why ("face under 24 px: too small to read").
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property
from typing import Any

import numpy as np

from kao.align import whole_image_face
from kao.detection import FaceDetector, analysis_detector
from kao.errors import KaoError
from kao.face import Face
from kao.image import ImageInput, load_image
from kao.quality import rated, unreadable

STAGES = ("detection", "landmarks", "pose", "age_gender", "emotion", "mask")
"""Stage names, in the order they run (the keys of the timings `analyze_faces` fills)."""
READS = {"age_gender": ("age", "gender"), "emotion": ("emotion",), "mask": ("mask",)}
"""The Face attributes each attribute stage sets."""


class FaceAnalyzer:
    """Everything kao tells about each face of an image. Models load on first use and are
    shared; one analyzer is safe to use from several threads.

    Args:
        detector: the `FaceDetector` to use (default: `kao.detection.analysis_detector()`, with
            the masked-face pass, so that faces behind a mask are found and classified).
        accurate: read each face in more views, for age and gender (mirrored too) and for
            emotion (14 views): 0.1 year less age error, 0.4 point more gender and 0.6 point
            more emotion accuracy, for about 18 ms more a face on one core
            (docs/BENCHMARKS.md).
    """

    def __init__(self, detector: FaceDetector | None = None, *, accurate: bool = False) -> None:
        self._detector = detector
        self.accurate = accurate
        self._lock = threading.Lock()

    @cached_property
    def detector(self) -> FaceDetector:
        return self._detector or analysis_detector()

    @cached_property
    def landmarks(self) -> Any:
        from kao.landmarks import FaceMesh

        return FaceMesh()

    @cached_property
    def attributes(self) -> list[tuple[str, Any, Callable[[Face, Any], Face]]]:
        """(stage name, `CropModel`, how its result goes into a Face) per attribute model."""
        from kao.attributes.age_gender import AgeGender
        from kao.attributes.emotion import DEFAULT_VIEWS, SHIFTED_VIEWS, EmotionClassifier
        from kao.attributes.mask import MaskClassifier

        emotion = EmotionClassifier(views=SHIFTED_VIEWS if self.accurate else DEFAULT_VIEWS)
        return [
            ("age_gender", AgeGender(mirror=self.accurate), _set_age_gender),
            ("emotion", emotion, lambda face, r: dataclasses.replace(face, emotion=r)),
            ("mask", MaskClassifier(), lambda face, r: dataclasses.replace(face, mask=r)),
        ]

    def load(self) -> FaceAnalyzer:
        """Load every model now (they load on first use otherwise); returns self."""
        with self._lock:
            _ = self.detector, self.landmarks, self.attributes
        return self

    def triangles(self) -> np.ndarray:
        """(T, 3) vertex indices of the 468-point mesh's triangles (the canonical face's)."""
        from kao.geometry import canonical_model

        return canonical_model().triangles

    def analyze(self, image: ImageInput, *, cropped: bool = False) -> list[Face]:
        """Every face of `image` (path, bytes, RGB array or PIL image), best detection score
        first, with every attribute set. With `cropped`, the image is already one face crop
        (no detection): one face is returned, its box the whole image."""
        rgb = load_image(image, copy=False)
        self.load()
        faces = [] if cropped else self.detector.detect(rgb)
        return self.analyze_faces(rgb, faces, cropped=cropped)

    def analyze_faces(
        self,
        rgb: np.ndarray,
        faces: Sequence[Face],
        *,
        cropped: bool = False,
        timings: dict[str, float] | None = None,
    ) -> list[Face]:
        """`faces` (found in `rgb`, H x W x 3 uint8 RGB) with every attribute set; with
        `cropped`, `faces` is ignored and `rgb` is read as one face crop. `timings`, when
        given, receives the seconds each stage took (keys from `STAGES`)."""
        self.load()
        with _timed(timings, "landmarks"):
            faces = self._landmarks(rgb, faces, cropped)
        with _timed(timings, "pose"):
            faces = [_with_pose(face) for face in faces]
            faces = rated(rgb, faces)
        for name, model, setter in self.attributes:
            with _timed(timings, name):
                faces = _read(model, setter, READS[name], rgb, faces, cropped)
        return faces

    def _landmarks(self, rgb: np.ndarray, faces: Sequence[Face], cropped: bool) -> list[Face]:
        """`faces` (or the crop `rgb`'s one face) with mesh, iris and 68 points, `missing` {};
        a face FaceMesh does not read keeps the reason in its `missing` instead."""
        from kao.landmarks.facemesh import without_landmarks

        if cropped:
            try:
                faces = [self.landmarks.run_cropped(rgb)]
            except KaoError as error:  # the attribute models still read the crop
                return [without_landmarks(whole_image_face(rgb), str(error))]
        else:
            faces = self.landmarks.run(rgb, faces)
        return [
            face if face.mesh is None else dataclasses.replace(face, missing={}) for face in faces
        ]


def _with_pose(face: Face) -> Face:
    """`face` with its head pose and gaze, or the reason they are missing (no landmarks)."""
    from kao.geometry import gaze, head_pose

    if face.mesh is None:  # `_landmarks` recorded why
        missing = face.missing or {}
        reason = f"needs the landmarks; {missing['landmarks_68']}"
        return dataclasses.replace(face, missing={**missing, "pose": reason, "gaze": reason})
    return dataclasses.replace(face, pose=head_pose(face), gaze=gaze(face))


def _read(
    model: Any,
    setter: Callable[[Face, Any], Face],
    keys: Sequence[str],
    rgb: np.ndarray,
    faces: list[Face],
    cropped: bool,
) -> list[Face]:
    """`faces` (found in `rgb`, or the one face of the crop `rgb`) with the attributes `keys`
    read by `model` and set by `setter`; an attribute is None, with its reason in `missing`,
    on a face too small, dark, bright or blurred to read it (`kao.quality.unreadable`), and a
    face unreadable for all of `keys` is not read at all."""
    reasons = [{key: unreadable(face, key) for key in keys} for face in faces]
    read = [i for i, why in enumerate(reasons) if None in why.values()]
    chosen = [faces[i] for i in read]
    results = model.classify([rgb]) if cropped and read else model.predict(rgb, chosen)
    done = list(faces)
    for i, result in zip(read, results, strict=True):
        done[i] = setter(faces[i], result)
    for i, why in enumerate(reasons):
        unread = {key: reason for key, reason in why.items() if reason is not None}
        if unread:
            missing = {**(done[i].missing or {}), **unread}
            done[i] = dataclasses.replace(done[i], **dict.fromkeys(unread), missing=missing)
    return done


def _set_age_gender(face: Face, result: Any) -> Face:
    """`face` with `result`'s age and gender, and the reason of a withheld gender (a child)."""
    missing = {**(face.missing or {}), **result.missing}
    return dataclasses.replace(face, age=result.age, gender=result.gender, missing=missing)


@contextmanager
def _timed(timings: dict[str, float] | None, stage: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    if timings is not None:
        timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - start


_default: FaceAnalyzer | None = None
_default_lock = threading.Lock()


def analyze(image: ImageInput, *, cropped: bool = False) -> list[Face]:
    """Every face of `image` with landmarks (468 mesh, iris, 68 points), head pose, gaze, age,
    gender, the 7 emotion probabilities and mask / no mask; see `FaceAnalyzer.analyze`."""
    global _default
    with _default_lock:
        if _default is None:
            _default = FaceAnalyzer()
    return _default.analyze(image, cropped=cropped)
