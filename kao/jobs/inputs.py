"""The inputs of a batch: folders (walked), glob patterns and list files of paths or URLs,
expanded into images, with what cannot be read kept as errors so the rest of the batch still
runs.

A URL (``file:///photos/a.jpg``, ``s3://bucket/key``, ``gs://``, ``hdfs://``, ``abfs://``: what
`pyarrow.fs.FileSystem.from_uri` opens; needs the batch extra) names an image, a folder walked
like a local one, or a glob pattern (``s3://bucket/2024/**/*.jpg``). Only the listing happens
where the inputs are collected; each image's bytes are read where it is processed (`load`), so
they never pass through the process that runs the job. HTTP(S) URLs and URLs holding a password
or a secret query parameter are refused (see `refusal`)."""

from __future__ import annotations

import functools
import glob
import re
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit, urlunsplit

import numpy as np

from kao.errors import ImageError, KaoError
from kao.extras import require
from kao.image import IMAGE_EXTENSIONS, describe, find_images, load_image, pixel_limit

LIST_SUFFIXES = frozenset({".txt", ".lst", ".list"})
"""A file given with one of these extensions is a list of image paths or URLs, one a line."""
GLOB_CHARACTERS = frozenset("*?[")
URL_GLOB_CHARACTERS = frozenset("*[")
"""The pattern characters of a URL's path (``?`` starts a URL's query)."""
URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
SECRET_PARAMETER = re.compile(r"secret|password|token|sig|access_key|account_key|^key$", re.I)
"""Query parameters of a URL whose value is a secret (S3's, Azure's ...)."""
BYTES_PER_PIXEL = 8
"""The most bytes a pixel takes in a file kao decodes (16-bit RGBA, uncompressed)."""
HEADER_BYTES = 16 * 2**20
"""Room for metadata (EXIF, ICC profiles, thumbnails) in an image file, bytes."""
REASON_CHARACTERS = 300
"""Reasons from the file system are cut to their first line and this many characters."""

Source = Path | str
"""Where an image is: a local path, or (a str) a URL."""


@dataclass(frozen=True)
class Job:
    """One image to process: where it is (a str: a URL, as given), and where its annotated
    copy goes (relative)."""

    path: Source
    relative: Path


def is_url(text: str) -> bool:
    """Whether `text` is a URL (``scheme://...``) rather than a local path."""
    return URL.match(text) is not None


def redact(url: str) -> str:
    """`url` without its secrets, for messages and records: the password of its user part
    (``s3://KEY:SECRET@bucket/k`` -> ``s3://KEY:***@bucket/k``) and the values of query
    parameters named like secrets (`SECRET_PARAMETER`) become ``***``."""
    split = urlsplit(url)
    netloc = split.netloc
    if "@" in netloc:
        user, host = netloc.rsplit("@", 1)
        if ":" in user:
            netloc = f"{user.split(':', 1)[0]}:***@{host}"
    query = split.query
    pairs = parse_qsl(query, keep_blank_values=True)
    if any(SECRET_PARAMETER.search(name) for name, _ in pairs):
        query = "&".join(
            f"{quote(name)}={'***' if SECRET_PARAMETER.search(name) else quote(value)}"
            for name, value in pairs
        )
    if netloc == split.netloc and query == split.query:
        return url
    return urlunsplit((split.scheme, netloc, split.path, query, split.fragment))


def refusal(url: str) -> str | None:
    """Why the URL `url` is not read, or None: HTTP(S) (pyarrow has no HTTP file system, and a
    fetcher of arbitrary web addresses is a risk kao does not take), or secrets in the URL
    (they would be written into every record and message; give them in the environment)."""
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("http", "https"):
        return (
            f"{scheme} URLs are not read (pyarrow has no HTTP file system): download the files, "
            "or give their s3://, gs://, hdfs:// or abfs:// URL"
        )
    if redact(url) != url:
        return (
            "a password or secret in the URL is refused (it would be written into the records): "
            "give credentials in the environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
            "GOOGLE_APPLICATION_CREDENTIALS, AZURE_STORAGE_ACCOUNT_KEY, ...)"
        )
    return None


def collect(inputs: list[str]) -> tuple[list[Job], list[ImageError]]:
    """Expand the command's arguments into images, in the order given (a folder's images
    sorted). Each argument is a folder (walked recursively, see `find_images`), an image, a
    glob pattern (``photos/**/*.jpg``; `**` crosses folders), a list file (.txt, .lst, .list:
    one path or URL a line, relative paths from the list file's folder, blank lines and lines
    starting with # skipped) or a URL (an image, a folder or a pattern: see the module). What
    cannot be read (a missing path, a pattern matching nothing, an unreadable sub-folder or
    list, a refused URL, ...) is returned as errors; a URL's error names it without secrets."""
    jobs: list[Job] = []
    errors: list[ImageError] = []
    for given in inputs:
        path = Path(given)
        if is_url(given):
            jobs.extend(_url_jobs(given, errors))
        elif path.is_file() and path.suffix.lower() in LIST_SUFFIXES:
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


def load(source: Source) -> np.ndarray:
    """The image at `source` (H x W x 3 uint8 RGB, see `load_image`): a local path, or a URL
    read whole through pyarrow's file systems, at most `max_bytes` of it. ImageError (naming
    the URL without secrets) when it cannot be read."""
    if isinstance(source, str) and is_url(source):
        return load_image(read_url(source))
    return load_image(source)


def label(source: Source) -> str:
    """`source` as records and messages name it: a path as `describe` gives it, a URL as given
    but without its secrets (`redact`)."""
    return describe(redact(source) if isinstance(source, str) and is_url(source) else source)


def max_bytes(source: str = "KAO_MAX_PIXELS") -> int:
    """The largest file read from a URL, bytes: what an image of the pixel limit
    (`kao.image.pixel_limit`, ``KAO_MAX_PIXELS``; an error there names `source`) takes at most,
    plus `HEADER_BYTES`."""
    return BYTES_PER_PIXEL * pixel_limit(source) + HEADER_BYTES


def read_url(url: str) -> bytes:
    """The bytes of the file at `url` (see the module), read in one request after its size is
    checked against `max_bytes`. ImageError, naming the URL without secrets, when it is refused
    (see `refusal`), pyarrow is missing, the scheme is unknown, the file is missing, too large,
    empty or cannot be read."""
    source = redact(url)
    problem = refusal(url)
    if problem is not None:
        raise ImageError(source, problem)
    limit = max_bytes(source)
    try:
        system, path = _filesystem(url)
        with system.open_input_file(path) as file:
            size = file.size()
            if size > limit:
                raise ImageError(
                    source,
                    f"file too large: {size} bytes, over the limit of {limit} bytes (set "
                    "KAO_MAX_PIXELS to raise it)",
                )
            data = file.read(size)
    except ImageError:
        raise
    except (KaoError, OSError, ValueError) as error:
        raise ImageError(source, _reason(error, url)) from None
    if not data:
        raise ImageError(source, "empty file")
    return data


def _url_jobs(url: str, errors: list[ImageError]) -> list[Job]:
    """The images of the URL argument `url`: itself, the images under it (a folder) or those
    its pattern matches; its problems are appended to `errors`."""
    problem = refusal(url)
    if problem is None:
        try:
            if URL_GLOB_CHARACTERS & set(urlsplit(url).path):
                return _url_matches(url, errors)
            system, path = _filesystem(url)
            from pyarrow.fs import FileType

            info = system.get_file_info(path)
            if info.is_file:
                return [Job(url, _name(url))]
            if info.type == FileType.Directory:
                return _url_folder(url, system, path, errors)
            problem = "no such file or directory"
        except (KaoError, OSError, ValueError) as error:
            problem = _reason(error, url)
    errors.append(ImageError(redact(url), problem))
    return []


def _url_folder(url: str, system: Any, path: str, errors: list[ImageError]) -> list[Job]:
    """The images under the folder `path` of `system` (named by `url`), walked like a local
    folder (hidden names skipped, image extensions only, sorted); none: an error."""
    from pyarrow.fs import FileSelector

    found = []
    for info in system.get_file_info(FileSelector(path, recursive=True)):
        relative = info.path[len(path) :].lstrip("/")
        image = PurePosixPath(relative).suffix.lower() in IMAGE_EXTENSIONS
        if info.is_file and image and not _hidden(relative):
            found.append(relative)
    if not found:
        looked_for = ", ".join(sorted(IMAGE_EXTENSIONS))
        errors.append(ImageError(redact(url), f"no images found (looked for {looked_for})"))
    return [Job(_child(url, relative), Path(relative)) for relative in sorted(found)]


def _url_matches(url: str, errors: list[ImageError]) -> list[Job]:
    """The files a URL pattern matches (``*``, ``[...]`` within a name, ``**`` any folders;
    hidden names skipped), sorted; none: an error. The folder before the first pattern
    character is listed."""
    split = urlsplit(url)
    first = min(split.path.index(character) for character in URL_GLOB_CHARACTERS & set(split.path))
    cut = split.path.rfind("/", 0, first) + 1
    base = urlunsplit((split.scheme, split.netloc, split.path[:cut], split.query, ""))
    pattern = unquote(split.path[cut:]).split("/")
    from pyarrow.fs import FileSelector

    system, path = _filesystem(base)
    selector = FileSelector(
        path, recursive=len(pattern) > 1 or "**" in pattern, allow_not_found=True
    )
    found = []
    for info in system.get_file_info(selector):
        relative = info.path[len(path) :].lstrip("/")
        if info.is_file and not _hidden(relative) and _matches(relative.split("/"), pattern):
            found.append(relative)
    if not found:
        errors.append(ImageError(redact(url), "no file matches this pattern"))
    return [
        Job(_child(base, relative), Path(PurePosixPath(relative).name))
        for relative in sorted(found)
    ]


def _hidden(relative: str) -> bool:
    """Whether a /-separated path has a hidden name (starting with '.'), skipped as locally."""
    return any(part.startswith(".") for part in relative.split("/"))


def _matches(parts: list[str], pattern: list[str]) -> bool:
    """Whether the path `parts` matches the `pattern` parts (fnmatch per name; ``**`` matches
    any number of folders, none included)."""
    if not pattern:
        return not parts
    if pattern[0] == "**":
        return any(_matches(parts[skip:], pattern[1:]) for skip in range(len(parts) + 1))
    return bool(parts) and fnmatchcase(parts[0], pattern[0]) and _matches(parts[1:], pattern[1:])


def _child(url: str, relative: str) -> str:
    """The URL of the file `relative` (a /-separated path) under the folder URL `url`."""
    split = urlsplit(url)
    path = split.path.rstrip("/") + "/" + quote(relative)
    return urlunsplit((split.scheme, split.netloc, path, split.query, ""))


def _name(url: str) -> Path:
    """The file name of a URL, for its annotated copy ("image" if it has none)."""
    return Path(PurePosixPath(unquote(urlsplit(url).path)).name or "image")


def _filesystem(url: str) -> tuple[Any, str]:
    """The pyarrow file system of `url` and the path of its file there; the file system is
    made once per process for each root (scheme, host or bucket, query): making an S3 one may
    ask the bucket's region over the network."""
    require("batch", "reading URLs", "pyarrow")
    split = urlsplit(url)
    system, root = _root(split.scheme.lower(), split.netloc, split.query)
    path = (root.rstrip("/") + "/" + unquote(split.path).lstrip("/")).rstrip("/")
    return system, path or "/"


@functools.lru_cache(maxsize=64)
def _root(scheme: str, netloc: str, query: str) -> tuple[Any, str]:
    """`pyarrow.fs.FileSystem.from_uri` of the root of a URL: (its file system, its path)."""
    from pyarrow.fs import FileSystem

    return FileSystem.from_uri(urlunsplit((scheme, netloc, "/", query, "")))


def _reason(error: Exception, url: str) -> str:
    """A short reason for a file system's `error` about `url` (a URL that `refusal` let pass:
    no secrets reach the file systems, nor their messages)."""
    if isinstance(error, FileNotFoundError):
        return "no such file"
    if isinstance(error, PermissionError):
        return "permission denied"
    text = str(error).strip().splitlines()
    reason = text[0] if text else type(error).__name__
    if reason.startswith("Unrecognized filesystem type in URI"):
        scheme = urlsplit(url).scheme
        return f"unknown URL scheme {scheme!r}: pyarrow opens file, s3, gs, hdfs and abfs URLs"
    if len(reason) > REASON_CHARACTERS:
        reason = reason[:REASON_CHARACTERS] + "..."
    return reason if isinstance(error, KaoError) else f"cannot read: {reason}"


def _listed(listing: Path, errors: list[ImageError]) -> list[Job]:
    """The images named in the list file `listing` (see `collect`); a URL line is read where
    it is processed, apart from a refused one (an error here)."""
    try:
        lines = listing.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        errors.append(ImageError(str(listing), f"cannot read the list: {error}"))
        return []
    jobs = []
    for line in lines:
        name = line.strip()
        if not name or name.startswith("#"):
            continue
        if is_url(name):
            problem = refusal(name)
            if problem is None:
                jobs.append(Job(name, _name(name)))
            else:
                errors.append(ImageError(redact(name), problem))
            continue
        image = Path(name) if Path(name).is_absolute() else listing.parent / name
        jobs.append(Job(image, Path(image.name)))
    return jobs
