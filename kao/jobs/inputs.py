"""The inputs of a batch: folders (walked), glob patterns and list files of paths, expanded
into images, with what cannot be read kept as errors so the rest of the batch still runs."""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

from kao.errors import ImageError
from kao.image import find_images

LIST_SUFFIXES = frozenset({".txt", ".lst", ".list"})
"""A file given with one of these extensions is a list of image paths, one a line."""
GLOB_CHARACTERS = frozenset("*?[")


@dataclass(frozen=True)
class Job:
    """One image to process: where it is, and where its annotated copy goes (relative)."""

    path: Path
    relative: Path


def collect(inputs: list[str]) -> tuple[list[Job], list[ImageError]]:
    """Expand the command's arguments into images, in the order given (a folder's images
    sorted). Each argument is a folder (walked recursively, see `find_images`), an image, a
    glob pattern (``photos/**/*.jpg``; `**` crosses folders) or a list file (.txt, .lst,
    .list: one path a line, relative ones from the list file's folder, blank lines and lines
    starting with # skipped). What cannot be read (a missing path, a pattern matching nothing,
    an unreadable sub-folder or list, ...) is returned as errors."""
    jobs: list[Job] = []
    errors: list[ImageError] = []
    for given in inputs:
        path = Path(given)
        if path.is_file() and path.suffix.lower() in LIST_SUFFIXES:
            jobs.extend(_listed(path, errors))
        elif not path.exists() and GLOB_CHARACTERS & set(given):
            matches = sorted(glob.glob(given, recursive=True))
            if not matches:
                errors.append(ImageError(given, "no file matches this pattern"))
            for match in matches:
                if Path(match).is_file():
                    jobs.append(Job(Path(match), Path(Path(match).name)))
        else:
            for image in find_images([given], errors=errors):
                relative = image.relative_to(path) if path.is_dir() else Path(image.name)
                jobs.append(Job(image, relative))
    return jobs, errors


def _listed(listing: Path, errors: list[ImageError]) -> list[Job]:
    """The images named in the list file `listing` (see `collect`)."""
    try:
        lines = listing.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        errors.append(ImageError(str(listing), f"cannot read the list: {error}"))
        return []
    jobs = []
    for line in lines:
        name = line.strip()
        if name and not name.startswith("#"):
            image = Path(name) if Path(name).is_absolute() else listing.parent / name
            jobs.append(Job(image, Path(image.name)))
    return jobs
