"""Wording shared by the commands' plain-text output."""

from __future__ import annotations

from typing import Any

_PLURALS = {"person": "persons", "photo": "photos", "face": "faces", "image": "images"}


def counted(number: int, noun: str) -> str:
    """ "1 face", "0 faces", "2 persons": `number` and `noun` in the form that agrees with it."""
    return f"{number} {noun if number == 1 else _PLURALS.get(noun, noun + 's')}"


def quality_line(quality: dict[str, Any]) -> str:
    """A record's quality as one line, e.g. "quality 0.72 (size 118 px, sharpness 0.72,
    exposure 1.00, yaw 3.1, pitch -2.0 from the mesh; weakest: sharpness)"."""
    pose = "the mesh" if quality["pose_from"] == "mesh" else "the keypoints"
    landmarks = ", no landmarks" if quality["landmarks"] is False else ""
    return (
        f"quality {quality['score']:.2f} (size {quality['size']:.0f} px, sharpness "
        f"{quality['sharpness']:.2f}, exposure {quality['exposure']:.2f}, yaw "
        f"{quality['yaw']:.1f}, pitch {quality['pitch']:.1f} from {pose}{landmarks}; "
        f"weakest: {quality['weakest']})"
    )
