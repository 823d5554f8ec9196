"""Crowd counting: MCNN density maps and face detection, and the rule that picks one.

``kao.count_people("street.jpg").count`` -> how many people the photo holds."""

from __future__ import annotations

import threading

from kao.crowd.counting import CHOICES, METHODS, CrowdCount, CrowdCounter, Estimates, Method
from kao.image import ImageInput

__all__ = ["CHOICES", "METHODS", "CrowdCount", "CrowdCounter", "Estimates", "count_people"]

_counter: CrowdCounter | None = None
_lock = threading.Lock()


def count_people(image: ImageInput, method: Method = "auto") -> CrowdCount:
    """How many people `image` (path, bytes, RGB array or PIL image, as `kao.detect`) holds:
    `CrowdCount.count` (people, unrounded), the `method` that counted ("density-A",
    "density-B" or "detection") and its (H / 4, W / 4) density map or detected faces.

    `method` is "auto" (the rule in `kao.crowd.counting`), "density" or "detection". One
    `CrowdCounter` is made on first use and shared; its models load when first needed."""
    global _counter
    with _lock:
        if _counter is None:
            _counter = CrowdCounter()
    return _counter.count(image, method)
