"""Shared test fixtures: where ../shared is, and real photos with known faces."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
WIDER = SHARED / "data" / "widerface_val_subset"
LFW = SHARED / "data" / "lfw" / "lfw-deepfunneled"


def shared_file(relative: str) -> Path:
    """A file under ../shared, or skip the test when the data is not beside the checkout."""
    path = SHARED / relative
    if not path.exists():
        pytest.skip(f"{path} is not available")
    return path
