"""The probe corpus of issue 15 (tests/hostile.py) through every command that reads images and
through every image endpoint of the HTTP API, and malformed requests and JSON Lines files.

Each CLI command runs once, as a real process, over the whole corpus: it must finish within its
timeout, print no Python traceback, name each bad file in its error output, keep the results
of the good files, exit non-zero, and stay under MEMORY_CEILING_MIB of resident memory."""

from __future__ import annotations

import base64
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kao.evaluation.hostile import ERROR, FACES, NO_FACES, Sample, bad_images
from kao.image import IMAGE_EXTENSIONS, printable
from tests.conftest import shared_file
from tests.hostile import LONG_NAME, NOT_UTF8, face_variants, unlock, write_corpus

pytest.importorskip("httpx")
with warnings.catch_warnings():  # Starlette prefers httpx2 for its TestClient; httpx works
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from kao.server.app import create_app
from kao.server.settings import Settings

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads /proc; makes FIFOs and Unix sockets"
)

PHOTO = "data/lfw/lfw-deepfunneled/Aaron_Peirsol/Aaron_Peirsol_{:04d}.jpg"  # one face each
MEMORY_CEILING_MIB = 1024
"""Most resident memory one command may use on the corpus, whose largest image is 79 megapixels
(measured: 457 MiB for detect, 608 for analyze, 684 for count; 1,530 to 1,600 before images
were decoded in strips, and analyze's masked-face pass tried to allocate 10 GB)."""
ADDRESS_SPACE_LIMIT = 3 << 30
"""Virtual memory a command may reserve (bytes): a runaway allocation fails there, before it can
take the machine's memory."""
UNDER_4_PX = (
    "one_pixel.png",
    "thin_3x60000.png",
    "thin_60000x3.png",
    "thin_3x60000.jpg",
    "thin_60000x3.jpg",
)
"""Corpus images with a side under 4 px, which kao count refuses (one density-map pixel)."""
BATCH_TIMEOUT = 90.0
SINGLE_TIMEOUT = 30.0


@dataclass(frozen=True)
class Run:
    """A finished `kao` process: its exit code, output, peak resident memory (MiB) and whether
    it was killed at its timeout."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    max_rss_mib: float
    timed_out: bool

    def check(self, returncode: int) -> None:
        """It ended in time with exit code `returncode`, printed no traceback and stayed under
        the memory ceiling."""
        assert not self.timed_out, f"kao {' '.join(self.args)} ran past its timeout"
        assert "Traceback" not in self.stderr, self.stderr[-3000:]
        assert self.returncode == returncode, (self.args, self.returncode, self.stderr[-3000:])
        assert 0 < self.max_rss_mib <= MEMORY_CEILING_MIB, (self.args, self.max_rss_mib)


def _limit_address_space() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE_LIMIT, ADDRESS_SPACE_LIMIT))


class Kao:
    """`python -m kao ARGS` started in `cwd`, in its own session, its output in temporary
    files; `wait` ends it (killing it after `timeout` seconds). Its memory peak is its own
    high-water mark (VmHWM), read every 20 ms while it runs: wait4's ru_maxrss would count the
    memory of this process, which the child starts as a copy of."""

    def __init__(self, *args: str, cwd: Path, timeout: float = BATCH_TIMEOUT) -> None:
        self.args, self.timeout = args, timeout
        (out, self.stdout), (err, self.stderr) = tempfile.mkstemp(), tempfile.mkstemp()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "kao", *args],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
            preexec_fn=_limit_address_space,
        )
        os.close(out)
        os.close(err)
        self.start = time.monotonic()
        self.peak = 0.0
        self.sampler = threading.Thread(target=self._sample)
        self.sampler.start()

    def _sample(self) -> None:
        while (mib := _high_water_mib(self.process.pid)) > 0:
            self.peak = max(self.peak, mib)
            time.sleep(0.02)

    def wait(self) -> Run:
        """The finished run, killed (with its process group) at its timeout."""
        try:
            self.process.wait(timeout=max(0.0, self.start + self.timeout - time.monotonic()))
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            timed_out = True
        self.sampler.join()
        return Run(
            self.args,
            self.process.returncode,
            _read(self.stdout),
            _read(self.stderr),
            self.peak,
            timed_out,
        )


def _high_water_mib(pid: int) -> float:
    """The peak resident memory (MiB) of the running process `pid`; 0 once it has ended (a
    zombie has none)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024
    except (OSError, StopIteration):
        return 0.0


def _read(name: str) -> str:
    """The text of the temporary file `name`, which goes."""
    path = Path(name)
    text = path.read_text(errors="replace")
    path.unlink()
    return text


def run_kao(*args: str, cwd: Path, timeout: float = BATCH_TIMEOUT) -> Run:
    """`python -m kao ARGS` in `cwd`, run to its end (see `Kao`)."""
    return Kao(*args, cwd=cwd, timeout=timeout).wait()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Sample]]]:
    """(folder, manifest): the corpus in `folder`/corpus, the commands run in `folder`."""
    folder = tmp_path_factory.mktemp("hostile")
    manifest = write_corpus(folder / "corpus", shared_file(PHOTO.format(1)).read_bytes())
    yield folder, manifest
    unlock(folder / "corpus")


def shown(name: str) -> str:
    """How the commands print the corpus file `name` (run from the corpus's parent folder)."""
    return printable(f"corpus/{name}")


def inputs(manifest: dict[str, Sample]) -> list[str]:
    """The corpus folder, plus the files a folder walk leaves out (their extension is not one
    of IMAGE_EXTENSIONS: the GIFs)."""
    skipped = [
        f"corpus/{name}"
        for name in manifest
        if "/" not in name and Path(name).suffix and Path(name).suffix not in IMAGE_EXTENSIONS
    ]
    return ["corpus", *skipped]


def every_file(manifest: dict[str, Sample]) -> list[str]:
    """Every corpus entry as a path, for the commands that take files only."""
    return [f"corpus/{name}" for name in manifest if name != "locked"]


def check_records(
    run: Run, manifest: dict[str, Sample], faces_key: str = "faces", refused: Iterable[str] = ()
) -> None:
    """`run` printed a JSON list with one record per corpus entry: an error for each bad file
    (also named on stderr) and for those in `refused`, faces (`faces_key`: a list, or a number)
    where the manifest says so, none where it says no faces."""
    records = {record["image"]: record for record in json.loads(run.stdout)}
    wrong = []
    for name, sample in manifest.items():
        if name in refused:
            sample = Sample(sample.what, sample.expect | {ERROR}, sample.data)
        record = records.get(shown(name), {"error": "no record"})
        if "error" in record:
            answer = ERROR if f"{shown(name)}: " in run.stderr else "error not on stderr"
        else:
            value = record[faces_key]
            answer = FACES if (value if isinstance(value, int) else len(value)) else NO_FACES
        if answer not in sample.expect:
            wrong.append((name, sample.what, record))
    assert not wrong, wrong


def test_detect(corpus: tuple[Path, dict[str, Sample]]) -> None:
    folder, manifest = corpus
    run = run_kao("detect", "--json", *inputs(manifest), cwd=folder)
    run.check(1)
    check_records(run, manifest)


def test_analyze(corpus: tuple[Path, dict[str, Sample]]) -> None:
    folder, manifest = corpus
    run = run_kao("analyze", "--json", *inputs(manifest), cwd=folder)
    run.check(1)
    check_records(run, manifest)


def test_count(corpus: tuple[Path, dict[str, Sample]]) -> None:
    folder, manifest = corpus
    run = run_kao("count", "--json", "--method", "detection", *inputs(manifest), cwd=folder)
    run.check(1)
    check_records(run, manifest, faces_key="count", refused=UNDER_4_PX)


def test_group(corpus: tuple[Path, dict[str, Sample]]) -> None:
    folder, manifest = corpus
    run = run_kao("group", "--json", *inputs(manifest), cwd=folder)
    run.check(1)
    report = json.loads(run.stdout)
    errors = {error["image"] for error in report["errors"]}
    grouped = {face["image"] for group in report["groups"] for face in group["faces"]}
    wrong = []
    for name, sample in manifest.items():
        if shown(name) in errors:
            answer = ERROR if f"{shown(name)}: " in run.stderr else "error not on stderr"
        else:
            answer = FACES if shown(name) in grouped else NO_FACES
        if answer not in sample.expect:
            wrong.append((name, sample.what, answer))
    assert not wrong, wrong
    assert report["people"] == 1  # every face photo is the same man


def test_enroll_and_identify(corpus: tuple[Path, dict[str, Sample]]) -> None:
    """Enrolment is all or nothing: the corpus is refused, naming a bad file; identify finds the
    man in each face photo of the corpus from another photo of him; the face photos (names that
    are not UTF-8 or 255 bytes long included) can be enrolled."""
    folder, manifest = corpus
    (folder / "other.jpg").write_bytes(shared_file(PHOTO.format(4)).read_bytes())
    db = ["--db", str(folder / "faces.db"), "--collection", "c"]
    run_kao("enroll", *db, "--person", "aaron", "other.jpg", cwd=folder).check(0)

    refused = run_kao("enroll", *db, "--person", "mixed", *inputs(manifest), cwd=folder)
    refused.check(1)
    assert any(f"{shown(name)}: " in refused.stderr for name in manifest), refused.stderr

    run = run_kao("identify", *db, "--json", *every_file(manifest), cwd=folder)
    run.check(1)
    check_records(run, manifest)
    people = {face["person"] for r in json.loads(run.stdout) for face in r.get("faces", [])}
    assert people == {"aaron"}

    faces = sorted(name for name, sample in manifest.items() if sample.expect == {FACES})
    assert {NOT_UTF8, LONG_NAME} <= set(faces)
    enrolled = run_kao("enroll", *db, "--person", "faces", "--json", *faces, cwd=folder / "corpus")
    enrolled.check(0)
    assert json.loads(enrolled.stdout)["faces"] == len(faces)
    listed = run_kao("db", "list", *db, "--json", cwd=folder)
    listed.check(0)
    assert {p["person"] for p in json.loads(listed.stdout)} == {"aaron", "faces"}


SINGLE_IMAGE_RUNS: list[tuple[tuple[str, ...], str | None]] = [
    # (arguments, the file the error must name; None: the command succeeds)
    (("verify", "corpus/face_cmyk.jpg", "corpus/face_16bit.png"), None),
    (("verify", "corpus/face_jpeg.png", "corpus/thin_3x60000.png"), "corpus/thin_3x60000.png"),
    (("verify", "corpus/fifo.jpg", "corpus/zero.jpg"), "corpus/fifo.jpg"),
    (("mesh", "--out", "m.obj", "corpus/face_palette.png"), None),
    (("mesh", "--out", "t.obj", "corpus/thin_60000x3.jpg"), "corpus/thin_60000x3.jpg"),
    (("age-transform", "--out", "a.jpg", "corpus/face_orientation_9.jpg"), None),
    (("age-transform", "--out", "b.jpg", "corpus/header_8900.jpg"), "corpus/header_8900.jpg"),
]


def test_single_image_commands(corpus: tuple[Path, dict[str, Sample]]) -> None:
    """verify, mesh and age-transform on a few corpus files (run side by side): a face photo in
    an odd form works, a face-less or unreadable one is an error naming it."""
    folder, _ = corpus
    started = [Kao(*args, cwd=folder, timeout=SINGLE_TIMEOUT) for args, _ in SINGLE_IMAGE_RUNS]
    runs = [kao.wait() for kao in started]
    for run, (_, blamed) in zip(runs, SINGLE_IMAGE_RUNS, strict=True):
        run.check(0 if blamed is None else 1)
        assert blamed is None or f"{blamed}: " in run.stderr, (run.args, run.stderr)


BAD_JSONL = {
    "empty.jsonl": b"",
    "binary.jsonl": bytes(range(256)) * 4,
    "deep.jsonl": b'{"person": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n",
    "huge_int.jsonl": b'{"person": "x", "model": "dlib_resnet_v1", "embedding": [1'
    + b"0" * 5000
    + b"]}\n",
    "bad_date.jsonl": b'{"person": "x", "model": "dlib_resnet_v1", "embedding": [0.1], '
    b'"created": "99999-01-01T00:00:00"}\n',
    "wrong_dimension.jsonl": b'{"person": "x", "model": "dlib_resnet_v1", '
    b'"embedding": [0.6, 0.8]}\n',
}


def test_db_import_refuses_bad_files(tmp_path: Path) -> None:
    """Each bad JSON Lines file (and a FIFO, /dev/zero) is refused with an error naming it,
    nothing is imported, and the command ends in time without a traceback (run side by side)."""
    for name, data in BAD_JSONL.items():
        (tmp_path / name).write_bytes(data)
    os.mkfifo(tmp_path / "fifo.jsonl")
    db = ["--db", str(tmp_path / "faces.db")]
    names = [*BAD_JSONL, "fifo.jsonl", "/dev/zero"]
    started = [
        Kao("db", "import", *db, "--collection", "c", name, cwd=tmp_path, timeout=SINGLE_TIMEOUT)
        for name in names
    ]
    runs = [kao.wait() for kao in started]
    for name, run in zip(names, runs, strict=True):
        if name == "empty.jsonl":
            run.check(0)  # nothing to import is not an error
            continue
        run.check(1)
        assert f"{name}" in run.stderr, (name, run.stderr)
    listed = run_kao("db", "list", *db, "--json", cwd=tmp_path, timeout=SINGLE_TIMEOUT)
    listed.check(0)
    assert json.loads(listed.stdout) == [], listed.stdout


# -- the HTTP API ------------------------------------------------------------------------------

ENDPOINTS = {
    "detect": ("/v1/detect", "image"),
    "analyze": ("/v1/analyze", "image"),
    "identify": ("/v1/collections/c/identify", "image"),
    "group": ("/v1/group", "images"),
    "verify": ("/v1/verify", "a"),
    "enroll": ("/v1/collections/c/enroll", "images"),
}
"""Endpoint -> (path, the field the corpus file goes in)."""
NEEDS_A_FACE = ("verify", "enroll")
"""Endpoints that answer 422 "no face" for a photo without one; the others answer no faces."""
MULTIPART_ONLY = ("solid_79mp.png", "header_8900.jpg")
"""Files that take seconds to decode: sent in one form only (the form changes how the bytes
arrive, not how they are decoded)."""


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The app on a fresh SQLite file, no keys (loopback), with collection "c" holding one
    photo of the corpus's man."""
    db = tmp_path_factory.mktemp("hostile_api") / "faces.db"
    app = create_app(Settings(db=str(db)))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        assert client.post("/v1/collections", json={"name": "c"}).status_code == 201
        other = [("images", ("other.jpg", shared_file(PHOTO.format(4)).read_bytes(), "image/jpeg"))]
        enrolled = client.post("/v1/collections/c/enroll", files=other, data={"person": "aaron"})
        assert enrolled.status_code == 201, enrolled.text
        yield client


@pytest.fixture(scope="module")
def uploads() -> dict[str, Sample]:
    """The corpus's files as uploads: every bad image and the face photo in odd forms."""
    return {**bad_images(), **face_variants(shared_file(PHOTO.format(1)).read_bytes())}


def send(client: TestClient, endpoint: str, form: str, name: str, data: bytes) -> Any:
    """POST `data` to `endpoint` as `form` ("multipart" or "json"), with the other fields the
    endpoint needs (verify's B: another photo of the man; enroll's person)."""
    path, field = ENDPOINTS[endpoint]
    other = shared_file(PHOTO.format(3)).read_bytes()
    if form == "multipart":
        files = [(field, (printable(name), data, "application/octet-stream"))]
        if endpoint == "verify":
            files.append(("b", ("b.jpg", other, "image/jpeg")))
        text = {"person": "x"} if endpoint == "enroll" else None
        return client.post(path, files=files, data=text)
    encoded = base64.b64encode(data).decode()
    body: dict[str, Any] = {field: [encoded] if field == "images" else encoded}
    if endpoint == "verify":
        body["b"] = base64.b64encode(other).decode()
    if endpoint == "enroll":
        body["person"] = "x"
    return client.post(path, json=body)


def answer(endpoint: str, response: Any, label: str) -> str:
    """What the response says of the upload named `label` in error messages: ERROR, NO_FACES,
    FACES, or why it is not an acceptable answer."""
    if response.status_code >= 500:
        return f"HTTP {response.status_code}: {response.text[:300]}"
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code} without a JSON body: {response.text[:300]}"
    if response.status_code >= 400:
        if not isinstance(body.get("error"), str) or label not in body["error"]:
            return f"HTTP {response.status_code} error not naming {label}: {body}"
        if endpoint in NEEDS_A_FACE and "no face" in body["error"]:
            return NO_FACES
        return ERROR
    if endpoint == "group" and body["errors"]:
        return ERROR if label in body["errors"][0]["image"] else f"errors: {body['errors']}"
    if endpoint == "group":
        return FACES if body["faces"] else NO_FACES
    if endpoint in NEEDS_A_FACE:
        return FACES
    return FACES if body["faces"] else NO_FACES


@pytest.mark.parametrize("form", ["multipart", "json"])
@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_api_answers_every_corpus_file(
    api: TestClient, uploads: dict[str, Sample], endpoint: str, form: str
) -> None:
    """No 5xx; a bad file is a JSON 4xx naming the upload (or listed in group's errors); a
    face-less image is 200 with no faces (422 "no face" for verify and enroll)."""
    field = ENDPOINTS[endpoint][1]
    wrong = []
    for name, sample in uploads.items():
        if form == "json" and name in MULTIPART_ONLY:
            continue
        label = printable(name) if form == "multipart" else field
        response = send(api, endpoint, form, name, sample.data)
        said = answer(endpoint, response, label)
        if said not in sample.expect:
            wrong.append((name, sample.what, said))
    assert not wrong, wrong


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _json(text: str) -> dict[str, Any]:
    return {"content": text.encode(), "headers": {"content-type": "application/json"}}


def _photo_part(field: str = "image") -> dict[str, Any]:
    photo = shared_file(PHOTO.format(1)).read_bytes()
    return {"files": [(field, ("p.jpg", photo, "image/jpeg"))]}


MALFORMED: list[tuple[str, str, str, dict[str, Any]]] = [
    # (what, method, path, request arguments)
    (
        "text/plain body",
        "POST",
        "/v1/detect",
        {"content": b"abc", "headers": {"content-type": "text/plain"}},
    ),
    (
        "multipart without boundary",
        "POST",
        "/v1/detect",
        {"content": b"--x\r\n", "headers": {"content-type": "multipart/form-data"}},
    ),
    (
        "multipart garbage",
        "POST",
        "/v1/detect",
        {
            "content": b"--x\r\ngarbage",
            "headers": {"content-type": "multipart/form-data; boundary=x"},
        },
    ),
    (
        "JSON in another charset",
        "POST",
        "/v1/detect",
        {
            "content": '{"image": "AAAA"}'.encode("utf-16"),
            "headers": {"content-type": "application/json; charset=utf-16"},
        },
    ),
    ("bad base64", "POST", "/v1/detect", {"json": {"image": "@@not base64@@"}}),
    ("data URL without base64", "POST", "/v1/detect", {"json": {"image": "data:image/png,abc"}}),
    ("JSON nested 1,000 deep", "POST", "/v1/detect", _json('{"image": ' + _nested(1000) + "}")),
    (
        "JSON nested 1,000 deep, list field",
        "POST",
        "/v1/group",
        _json('{"images": ' + _nested(1000) + "}"),
    ),
    (
        "JSON nested 100,000 deep",
        "POST",
        "/v1/collections",
        _json('{"name": ' + _nested(100_000) + "}"),
    ),
    ("a 5,000-digit integer", "POST", "/v1/detect", _json('{"image": 1' + "0" * 5000 + "}")),
    ("a number beyond float", "POST", "/v1/collections", _json('{"name": 1e999999}')),
    ("a 40-digit top", "POST", "/v1/collections/c/identify?top=" + "9" * 40, _photo_part()),
    ("an infinite threshold", "POST", "/v1/group?threshold=1e400", _photo_part("images")),
    ("a NaN threshold", "POST", "/v1/group?threshold=nan", _photo_part("images")),
    ("face_a not a number", "POST", "/v1/verify?face_a=abc", {"json": {}}),
    ("cropped=maybe", "POST", "/v1/analyze?cropped=maybe", _photo_part()),
    ("image is a number", "POST", "/v1/detect", {"json": {"image": 123}}),
    ("image is null", "POST", "/v1/detect", {"json": {"image": None}}),
    ("image is a list", "POST", "/v1/detect", {"json": {"image": ["AAAA"]}}),
    ("images is a string", "POST", "/v1/group", {"json": {"images": "AAAA"}}),
    ("images holds a number", "POST", "/v1/group", {"json": {"images": [1]}}),
    ("b is an object", "POST", "/v1/verify", {"json": {"a": "AAAA", "b": {}}}),
    (
        "person is a number",
        "POST",
        "/v1/collections/c/enroll",
        {"json": {"person": 5, "images": ["AAAA"]}},
    ),
    ("collection name is a list", "POST", "/v1/collections", {"json": {"name": ["x"]}}),
    ("missing image", "POST", "/v1/detect", {"json": {}}),
    (
        "a text part instead of the file",
        "POST",
        "/v1/detect",
        {"data": {"image": "text"}, "files": [("other", ("o.jpg", b"x", "image/jpeg"))]},
    ),
    (
        "two image parts",
        "POST",
        "/v1/detect",
        {
            "files": [
                ("image", ("1.jpg", b"x", "image/jpeg")),
                ("image", ("2.jpg", b"y", "image/jpeg")),
            ]
        },
    ),
    ("an empty body", "POST", "/v1/collections", _json("")),
    (
        "a 20,000-character collection in the URL",
        "GET",
        "/v1/collections/" + "a" * 20_000 + "/persons",
        {},
    ),
    (
        "a 100,000-character collection name",
        "POST",
        "/v1/collections",
        {"json": {"name": "a" * 100_000}},
    ),
    ("collection '.'", "POST", "/v1/collections", {"json": {"name": "."}}),
    ("collection '..'", "POST", "/v1/collections", {"json": {"name": ".."}}),
    ("collection 'a/b'", "POST", "/v1/collections", {"json": {"name": "a/b"}}),
    (
        "collection with a right-to-left override",
        "POST",
        "/v1/collections",
        {"json": {"name": "ab\u202ecd"}},
    ),
    (
        "collection with a zero-width space",
        "POST",
        "/v1/collections",
        {"json": {"name": "a\u200bb"}},
    ),
    ("'..' in the path", "GET", "/v1/collections/../persons", {}),
    ("'%2e%2e' in the path", "GET", "/v1/collections/%2e%2e/persons", {}),
    ("'a%2Fb' in the path", "GET", "/v1/collections/a%2Fb/persons", {}),
    ("an unknown face id", "DELETE", "/v1/collections/c/faces/" + "9" * 30, {}),
]
"""Requests that must be answered 4xx with a JSON error."""

AWKWARD: list[tuple[str, str, str, dict[str, Any]]] = [
    ("a duplicate JSON key", "POST", "/v1/detect", _json('{"image": "@@", "image": "AAAA"}')),
    ("an unknown query parameter", "POST", "/v1/detect?colour=blue", _photo_part()),
]
"""Requests whose answer may be a success or a 4xx, but never a 5xx."""


@pytest.mark.parametrize("case", MALFORMED + AWKWARD, ids=[case[0] for case in MALFORMED + AWKWARD])
def test_malformed_requests_are_4xx_json(
    api: TestClient, case: tuple[str, str, str, dict[str, Any]]
) -> None:
    _, method, path, arguments = case
    response = api.request(method, path, **arguments)
    if case in AWKWARD and response.status_code < 400:
        return
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:500])
    body = response.json()
    assert isinstance(body.get("error"), str) and body.get("status") == response.status_code, body
