"""People counting: MCNN density maps (part A for dense crowds, part B for sparse scenes), face
detection, and the rule that picks one of them.

The rule, tuned on train scenes (ShanghaiTech A and B train, Mall train, crowd_sample's
train_data: the lowest mean relative error averaged over the four sets; see docs/BENCHMARKS.md):

1. MCNN part A first: above `CROWD_COUNT` people the scene is a dense crowd, and A counts it
   (no close-up of the train scenes gets more than about 260 from A);
2. else detection: when it finds at most `DETECTION_MAX_FACES` faces whose median height is at
   least `DETECTION_MIN_FACE` px, the people are few and near enough for their faces to be
   seen, and the count is the number of faces (MCNN, trained on crowds seen from afar, counts
   such close-ups several times over);
3. else MCNN part A when it counts more than `DENSE_COUNT`, MCNN part B (sparse street scenes)
   when it counts `DENSE_COUNT` or fewer.

`--method density` applies steps 1 and 3 (A above `DENSE_COUNT`, else B); `--method detection`
counts the faces.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from kao.crowd.mcnn import STRIDE, McnnNetwork, Part
from kao.detection import FaceDetector
from kao.errors import ImageError, KaoError
from kao.face import Face
from kao.image import ImageInput, describe, load_image

Method = Literal["auto", "density", "detection"]
"""What the caller asks for: the rule, the density rule alone, or detection alone."""
CHOICES = ("density-A", "density-B", "detection")
"""What a count can come from."""
METHODS = (*CHOICES, "auto")
"""Every way `Estimates.count` can count (evaluated by `kao eval count`)."""
DETECTION_MAX_FACES = 30
"""Most faces for which detection is trusted over the density maps."""
DETECTION_MIN_FACE = 20.0
"""Smallest median face height (px) for which detection is trusted."""
CROWD_COUNT = 500.0
"""MCNN-A counts above this are a dense crowd whatever the detector finds."""
DENSE_COUNT = 250.0
"""MCNN-A counts above this are kept (a dense crowd); at most this, MCNN-B counts."""


@dataclass
class Estimates:
    """The counts of one image, each computed at first use and kept.

    `faces` are the detected faces (best first; `detected` is None until they are asked for);
    `density(part)` the (H / 4, W / 4) float32 map of people per output pixel of MCNN `part`."""

    counter: CrowdCounter
    rgb: np.ndarray
    detected: list[Face] | None = None
    _densities: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def faces(self) -> list[Face]:
        if self.detected is None:
            self.detected = self.counter.detector.detect(self.rgb)
        return self.detected

    def density(self, part: Part) -> np.ndarray:
        if part not in self._densities:
            self._densities[part] = self.counter.network(part).density(self.rgb)
        return self._densities[part]

    def median_face_height(self) -> float:
        """Median height (px) of the detected faces, 0 when there is none."""
        return float(np.median([f.height for f in self.faces])) if self.faces else 0.0

    def choice(self, method: Method = "auto") -> str:
        """Which of `CHOICES` `method` uses on this image (see the module's docstring)."""
        if method == "detection":
            return "detection"
        if method not in ("auto", "density"):
            raise KaoError(f"unknown counting method {method!r}; choose auto, density or detection")
        dense = float(self.density("A").sum())
        if (
            method == "auto"
            and dense <= CROWD_COUNT
            and len(self.faces) <= DETECTION_MAX_FACES
            and self.median_face_height() >= DETECTION_MIN_FACE
        ):
            return "detection"
        return "density-A" if dense > DENSE_COUNT else "density-B"

    def count(self, method: str) -> float:
        """People counted by one of `METHODS` ("auto": the rule's choice)."""
        if method == "auto":
            method = self.choice("auto")
        if method == "detection":
            return float(len(self.faces))
        if method in ("density-A", "density-B"):
            return float(self.density(method[-1]).sum())  # type: ignore[arg-type]
        raise KaoError(f"unknown counting method {method!r}; choose one of {', '.join(METHODS)}")


@dataclass(frozen=True)
class CrowdCount:
    """How many people one image holds and how that was found.

    `method` is one of `CHOICES`; `density` the (H / 4, W / 4) float32 map that was summed
    (None for detection); `faces` the detected faces when detection ran (else empty: the rule
    may run detection and still choose a density map)."""

    count: float
    method: str
    density: np.ndarray | None
    faces: list[Face]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: `count` (whole people), `estimate` (unrounded, 0.1), `method`, and the
        number of `faces` detected when detection ran."""
        record: dict[str, Any] = {
            "count": round(self.count),
            "estimate": round(self.count, 1),
            "method": self.method,
        }
        if self.method == "detection":
            record["faces"] = len(self.faces)
        return record


class CrowdCounter:
    """Counts people in images (create once, reuse: the models load at first use)."""

    def __init__(self, threads: int | None = None) -> None:
        self.threads = threads
        self._detector: FaceDetector | None = None
        self._networks: dict[str, McnnNetwork] = {}

    @property
    def detector(self) -> FaceDetector:
        if self._detector is None:
            self._detector = FaceDetector(threads=self.threads)
        return self._detector

    def network(self, part: Part) -> McnnNetwork:
        """MCNN `part`, converted and loaded at first use."""
        if part not in self._networks:
            self._networks[part] = McnnNetwork(part, self.threads)
        return self._networks[part]

    def estimates(self, image: ImageInput) -> Estimates:
        """The lazily computed counts of `image` (path, bytes, RGB array or PIL image); ImageError
        when it cannot be read or is smaller than 4 x 4 px (one density-map pixel)."""
        rgb = load_image(image)
        height, width = rgb.shape[:2]
        if min(height, width) < STRIDE:
            raise ImageError(describe(image), f"{width} x {height} px is too small to count")
        return Estimates(self, rgb)

    def count(self, image: ImageInput, method: Method = "auto") -> CrowdCount:
        """People in `image` by `method` (see the module's docstring)."""
        estimates = self.estimates(image)
        chosen = estimates.choice(method)
        density = None if chosen == "detection" else estimates.density(chosen[-1])  # type: ignore[arg-type]
        return CrowdCount(estimates.count(chosen), chosen, density, estimates.detected or [])

    @staticmethod
    def rule() -> dict[str, Any]:
        """The rule's thresholds, JSON-ready."""
        return {
            "crowd_count": CROWD_COUNT,
            "detection_max_faces": DETECTION_MAX_FACES,
            "detection_min_face_px": DETECTION_MIN_FACE,
            "dense_count": DENSE_COUNT,
        }
