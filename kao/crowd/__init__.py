"""Crowd counting: MCNN density maps, kao's trained counters and face detection, the rule that
picks one per image, and the count's uncertainty range.

``kao.count_people("street.jpg").count`` -> how many people the photo holds."""

from __future__ import annotations

import threading

from kao.crowd.counting import (
    CHOICES,
    METHOD_CHOICES,
    METHODS,
    CrowdCount,
    CrowdCounter,
    Estimates,
    Method,
    interval,
)
from kao.image import ImageInput

__all__ = [
    "CHOICES",
    "METHODS",
    "METHOD_CHOICES",
    "CrowdCount",
    "CrowdCounter",
    "Estimates",
    "count_people",
    "interval",
]

_counter: CrowdCounter | None = None
_lock = threading.Lock()


def count_people(image: ImageInput, method: Method = "auto") -> CrowdCount:
    """How many people `image` (path, bytes, RGB array or PIL image, as `kao.detect`) holds:
    `CrowdCount.count` (people, unrounded), its 80% range (`low`, `high`), the `method` that
    counted (one of `CHOICES`: "density-A", "density-B", "detection", "trained-mall", ...) and
    its density map or detected faces.

    `method` is one of `METHOD_CHOICES`: "auto" (the rule in `kao.crowd.counting`), "density"
    (MCNN alone) or one of `CHOICES` by name. One
    `CrowdCounter` is made on first use and shared; its models load when first needed."""
    global _counter
    with _lock:
        if _counter is None:
            _counter = CrowdCounter()
    return _counter.count(image, method)
