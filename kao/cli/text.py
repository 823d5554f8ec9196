"""Wording shared by the commands' plain-text output."""

from __future__ import annotations

_PLURALS = {"person": "persons", "photo": "photos", "face": "faces", "image": "images"}


def counted(number: int, noun: str) -> str:
    """ "1 face", "0 faces", "2 persons": `number` and `noun` in the form that agrees with it."""
    return f"{number} {noun if number == 1 else _PLURALS.get(noun, noun + 's')}"
