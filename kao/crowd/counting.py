"""People counting: MCNN density maps (part A for dense crowds, part B for sparse scenes), kao's
own trained counters (`kao.crowd.trained`), face detection, the rule that picks one of them per
image, and the uncertainty range of the count.

The rule (`Rule`, thresholds in `RULE`) was chosen on held-out images of four scene types and
scored on others (see `kao.evaluation.crowd.cross_validate` and docs/BENCHMARKS.md):

1. detection when MCNN part A counts at most `Rule.crowd_count` people and the detector finds
   at most `Rule.max_faces` faces whose median height is at least `Rule.min_face` px: the people
   are few and near enough for their faces to be seen (group photos), and the count is the
   number of faces (density networks, trained on crowds seen from afar, count such close-ups
   several times over);
2. else MCNN part A when it counts more than `Rule.dense_count` (a dense crowd);
3. else `Rule.few` when MCNN part A counts at most `Rule.few_count`, and `Rule.sparse` above.

`RULE` today: detection for at most 30 faces of median height 20 px or more unless MCNN-A
counts over 800 (group photos); MCNN-A above 350 (dense crowds, ShanghaiTech A); kao's Mall
counter when MCNN-A counts 25 or fewer (few people, e.g. a camera looking down on a mall);
MCNN-B otherwise (street scenes, ShanghaiTech B). Fitted on the first halves of the held-out
fold 0 of ShanghaiTech A, B and Mall and of 51 WIDER FACE group photos (truth: annotated faces)
and scored on the second halves (Mall frames: MAE 1.9 against 13.7 for the previous rule).
MCNN was trained by its authors on the ShanghaiTech training images, so on A and B its errors
there are optimistic; that is why kao's B counter (held-out MAE 26.3 against MCNN-B's 22.2 on
images MCNN-B was trained on) is not chosen.

`--method density` is MCNN alone (A above `Rule.dense_count`, else B); `--method detection`
counts the faces; any of `CHOICES` can be asked for by name.

Every count comes with a range (`interval`): the estimate scaled by the 10th and 90th
percentiles of (true + 1) / (estimate + 1) measured for the method on held-out images
(`RANGES`), an 80% range whose coverage was measured on other images.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np

from kao.crowd.mcnn import STRIDE, McnnNetwork, Part
from kao.crowd.trained import TrainedCounter, shipped
from kao.detection import FaceDetector
from kao.errors import ImageError, KaoError
from kao.face import Face
from kao.image import ImageInput, describe, load_image

TRAINED_NAMES: dict[str, str] = {
    "mall": "trained-mall",
    "shanghaitech_A": "trained-A",
    "shanghaitech_B": "trained-B",
}
"""Training set of a trained counter -> its method name."""
TRAINED: dict[str, str] = {TRAINED_NAMES[name]: name for name in shipped()}
"""Method name -> training set, for every trained counter kao ships."""
DENSITY = ("density-A", "density-B")
"""The MCNN methods (part A, part B)."""
CHOICES = (*DENSITY, "detection", *TRAINED)
"""What a count can come from (`CrowdCount.method`)."""
METHOD_CHOICES = ("auto", "density", *CHOICES)
"""Every method a caller may ask for (`kao count --method`): the rule, MCNN's A/B rule, or one
of `CHOICES` by name."""
METHODS = (*CHOICES, "auto")
"""Every way `Estimates.count` can count (evaluated by `kao eval count`)."""
Method = str
"""One of `METHOD_CHOICES`."""


@dataclass(frozen=True)
class Rule:
    """The thresholds of the rule (see the module's docstring): `max_faces` (most faces for
    which detection is trusted), `min_face` (smallest median face height, px), `crowd_count`
    (MCNN-A counts above this are a crowd whatever the detector finds), `dense_count` (MCNN-A
    counts above this are kept), `few_count` and `few` (the method for scenes where MCNN-A counts
    at most `few_count`) and `sparse` (the method of the other scenes)."""

    max_faces: int = 30
    min_face: float = 20.0
    crowd_count: float = 500.0
    dense_count: float = 250.0
    few_count: float = 0.0
    few: str = "density-B"
    sparse: str = "density-B"


RULE = Rule(
    max_faces=30,
    min_face=20.0,
    crowd_count=800.0,
    dense_count=350.0,
    few_count=25.0,
    few="trained-mall",
    sparse="density-B",
)
"""The rule `kao count` applies: `kao.evaluation.crowd.fit_rule` on the first halves of the
held-out images (`kao eval count --train-data .data/crowd_train --groups WIDER_val`, 175
images: ShanghaiTech A 30, B 40, Mall 80, WIDER group photos 25)."""
RANGES: dict[str, tuple[float, float]] = {
    "density-A": (-0.4825, 0.4218),
    "density-B": (-0.1659, 0.3498),
    "detection": (-0.1117, 0.5071),
    "trained-mall": (-0.1413, 0.1039),
    "trained-B": (-0.0688, 3.3017),
}
"""Method -> 10th and 90th percentiles of log((true + 1) / (estimate + 1)) on the same 175
images (`kao.evaluation.crowd.fit_ranges`: the images `RULE` sends to the method; all 175 for
a method it sends fewer than 10, e.g. trained-B, whose range is wide for it undercounts dense
crowds)."""
DEFAULT_RANGE = (math.log(0.5), math.log(2.0))
"""The range factor of a method with no measured residuals: half to twice the estimate."""


def interval(
    method: str, estimate: float, ranges: dict[str, tuple[float, float]] | None = None
) -> tuple[float, float]:
    """The 80% range (low, high) of the true number of people when `method` (one of `CHOICES`)
    estimates `estimate` (people, e.g. the count of a whole image or of a region of it):
    low <= estimate <= high, low >= 0. `ranges` replaces `RANGES` (log factors per method)."""
    if method not in CHOICES:
        raise KaoError(f"unknown counting method {method!r}; choose one of {', '.join(CHOICES)}")
    below, above = (RANGES if ranges is None else ranges).get(method, DEFAULT_RANGE)
    base = max(estimate, 0.0) + 1.0
    low = max(0.0, min(estimate, base * math.exp(below) - 1.0))
    return low, max(estimate, base * math.exp(above) - 1.0)


class Evidence(Protocol):
    """What the rule looks at in one image."""

    def count(self, method: str) -> float:
        """People counted by one of `CHOICES`."""
        ...

    def face_count(self) -> int:
        """Faces detected."""
        ...

    def median_face_height(self) -> float:
        """Median height (px) of the detected faces, 0 when there is none."""
        ...


def choose(evidence: Evidence, method: Method = "auto", rule: Rule = RULE) -> str:
    """Which of `CHOICES` `method` uses for the image `evidence` describes (see the module's
    docstring); KaoError for an unknown method."""
    if method in CHOICES:
        return method
    if method not in ("auto", "density"):
        raise KaoError(
            f"unknown counting method {method!r}; choose one of {', '.join(METHOD_CHOICES)}"
        )
    dense = evidence.count("density-A")
    if method == "density":
        return "density-A" if dense > rule.dense_count else "density-B"
    if (
        dense <= rule.crowd_count
        and evidence.face_count() <= rule.max_faces
        and evidence.median_face_height() >= rule.min_face
    ):
        return "detection"
    if dense > rule.dense_count:
        return "density-A"
    return rule.few if dense <= rule.few_count else rule.sparse


@dataclass
class Estimates:
    """The counts of one image, each computed at first use and kept.

    `faces` are the detected faces (best first; `detected` is None until they are asked for);
    `density(method)` the map of people per cell of a density method (`DENSITY` or `TRAINED`):
    (H / 4, W / 4) float32 for MCNN, (H * scale / 8, W * scale / 8) rounded up for a trained
    counter (`kao.crowd.trained`)."""

    counter: CrowdCounter
    rgb: np.ndarray
    detected: list[Face] | None = None
    _densities: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def faces(self) -> list[Face]:
        if self.detected is None:
            self.detected = self.counter.detector.detect(self.rgb)
        return self.detected

    def density(self, method: str) -> np.ndarray:
        if method not in self._densities:
            if method in DENSITY:
                network = self.counter.network(method[-1])  # type: ignore[arg-type]
                self._densities[method] = network.density(self.rgb)
            elif method in TRAINED:
                self._densities[method] = self.counter.trained(method).density(self.rgb)
            else:
                raise KaoError(f"{method!r} is not a density method")
        return self._densities[method]

    def face_count(self) -> int:
        return len(self.faces)

    def median_face_height(self) -> float:
        """Median height (px) of the detected faces, 0 when there is none."""
        return float(np.median([f.height for f in self.faces])) if self.faces else 0.0

    def choice(self, method: Method = "auto") -> str:
        """Which of `CHOICES` `method` uses on this image (see the module's docstring)."""
        return choose(self, method)

    def count(self, method: str) -> float:
        """People counted by one of `METHODS` ("auto": the rule's choice)."""
        if method == "auto":
            method = self.choice("auto")
        if method == "detection":
            return float(len(self.faces))
        if method in CHOICES:
            return float(self.density(method).sum())
        raise KaoError(f"unknown counting method {method!r}; choose one of {', '.join(METHODS)}")


@dataclass(frozen=True)
class CrowdCount:
    """How many people one image holds and how that was found.

    `method` is one of `CHOICES`; `density` the map that was summed (None for detection; its
    resolution depends on the method, see `Estimates`); `faces` the detected faces when
    detection ran (else empty: the rule may run detection and still choose a density map);
    `low` and `high` the 80% range of the true count (`interval`)."""

    count: float
    method: str
    density: np.ndarray | None
    faces: list[Face]
    low: float
    high: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: `count` (whole people), `estimate` (unrounded, 0.1), `range` ([low,
        high] in whole people, rounded outwards), `method`, and the number of `faces` detected
        when detection ran."""
        record: dict[str, Any] = {
            "count": round(self.count),
            "estimate": round(self.count, 1),
            "range": [math.floor(self.low), math.ceil(self.high)],
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
        self._trained: dict[str, TrainedCounter] = {}

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

    def trained(self, method: str) -> TrainedCounter:
        """The trained counter of `method` (one of `TRAINED`), loaded at first use."""
        if method not in self._trained:
            self._trained[method] = TrainedCounter(TRAINED[method], threads=self.threads)
        return self._trained[method]

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
        density = None if chosen == "detection" else estimates.density(chosen)
        people = estimates.count(chosen)
        low, high = interval(chosen, people)
        return CrowdCount(people, chosen, density, estimates.detected or [], low, high)

    @staticmethod
    def rule() -> dict[str, Any]:
        """The rule's thresholds and the ranges' log factors, JSON-ready."""
        return asdict(RULE) | {"ranges": {m: list(RANGES.get(m, DEFAULT_RANGE)) for m in CHOICES}}
