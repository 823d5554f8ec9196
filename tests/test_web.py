"""The web page of `kao serve` in a real browser: Debian's Chromium, headless, driven by
Playwright, on a real `kao serve` process (127.0.0.1, a free port, a temporary SQLite file),
with real photos. The browser may reach only that server. Each test saves a screenshot of what
it checked under $KAO_SCREENSHOTS, else kao-screenshots/ in the temporary folder; the ones in
docs/screenshots/ are refreshed only on purpose:
``KAO_SCREENSHOTS=docs/screenshots .venv/bin/pytest tests/test_web.py``.

Needs /usr/bin/chromium and Playwright (`bash scripts/browser.sh` installs both); without them
the tests skip, except under CI=true where they fail."""

from __future__ import annotations

import base64
import io
import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from kao.recognition.verify import FAR_TABLES
from kao.server.keys import KeyStore
from kao.server.settings import DEFAULT_MAX_UPLOAD
from tests.conftest import lfw_photo as lfw
from tests.conftest import shared_file
from tests.serving import kao_serve

httpx = pytest.importorskip("httpx")

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(
    os.environ.get("KAO_SCREENSHOTS") or Path(tempfile.gettempdir(), "kao-screenshots")
)
WAIT_MS = 60_000  # the longest a page may take to show a result (models run on a busy CPU)
GROUP = "data/widerface_val_subset/images/0_Parade_Parade_0_194.jpg"  # 5 faces, 416 x 416
MODEL_LABELS = {
    "edgeface_xs": "EdgeFace XS (512-d, default)",
    "edgeface_xxs": "EdgeFace XXS (512-d)",
    "dlib_resnet_v1": "dlib ResNet (128-d)",
}
"""The recognition models of GET /v1/models as the page's selectors name them."""
THREE_PEOPLE = [("Abdoulaye_Wade", 2), ("Adam_Sandler", 3), ("Alan_Greenspan", 3)]
"""The groups of the Group tests' photos: (LFW person, faces)."""
COLLECTIONS_MODEL = "the collection's model"  # the first choice of the enrol & identify selector


def _missing(reason: str) -> None:
    """Skip the test, or fail it under CI, which must run the browser tests."""
    reason += " (bash scripts/browser.sh installs it)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI must run the browser tests")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with kao_serve(tmp_path_factory.mktemp("web")) as base:
        yield base


@pytest.fixture(scope="module")
def playwright() -> Iterator[Any]:
    """Playwright, its assertions waiting up to `WAIT_MS`; skipped (failed under CI) without it
    or without Chromium."""
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        _missing("Playwright for Python is not installed")
    if not CHROMIUM.exists():
        _missing(f"{CHROMIUM} (Debian's chromium) is not installed")
    expect.set_options(timeout=WAIT_MS)
    with sync_playwright() as started:
        yield started


@contextmanager
def launch(playwright: Any, *args: str) -> Iterator[Any]:
    """Debian's Chromium, headless and offline (no proxy; every host name but 127.0.0.1 fails
    to resolve), with the extra command-line `args`."""
    chromium = playwright.chromium.launch(
        executable_path=str(CHROMIUM),
        args=[
            "--no-proxy-server",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            *args,
        ],
    )
    try:
        yield chromium
    finally:
        chromium.close()


@pytest.fixture(scope="module")
def browser(playwright: Any) -> Iterator[Any]:
    with launch(playwright) as chromium:
        yield chromium


@contextmanager
def open_page(browser: Any, base: str, width: int = 1280, height: int = 900) -> Iterator[Any]:
    """A page of a fresh browser context (empty localStorage) on `base`; afterwards, checks
    that it asked for nothing but `base` (and its own blob: URLs, the photos it draws) and
    showed no script error."""
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    requests: list[str] = []
    problems: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on("pageerror", lambda error: problems.append(str(error)))
    try:
        page.goto(base + "/")
        yield page
    finally:
        context.close()
    assert problems == []
    outside = [url for url in requests if not url.startswith((base + "/", f"blob:{base}/"))]
    assert requests and outside == []


def screenshot(page: Any, name: str) -> None:
    """SCREENSHOTS/<name>.png of the whole page, in 256 colours (a few hundred KB)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = Image.open(io.BytesIO(page.screenshot(full_page=True))).convert("RGB")
    shot.quantize(256).save(SCREENSHOTS / f"{name}.png", optimize=True)


def tab(page: Any, name: str) -> None:
    page.click(f"nav a[data-tab={name}]")
    expect(page.locator(f"#{name}")).to_be_visible()  # once the hashchange handler has run


def shown_error(page: Any, section: str) -> str | None:
    """Once the request that `section` of the page sent has been answered: the error it shows,
    or None."""
    page.wait_for_selector(f"#{section} .status:not(.working)", state="attached")
    error = page.locator(f"#{section} .error")
    return error.inner_text() if error.is_visible() else None


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Files that are not face photos: a grey PNG (no face) and text named like a JPEG."""
    folder = tmp_path_factory.mktemp("files")
    grey, text = folder / "grey.png", folder / "notes.jpg"
    stream = io.BytesIO()
    Image.fromarray(np.full((240, 320, 3), 128, np.uint8)).save(stream, "PNG")
    grey.write_bytes(stream.getvalue())
    text.write_text("hello, not an image")
    return {"grey": grey, "text": text}


def photo_size(page: Any, canvases: str) -> list[list[int]]:
    """The sizes of the photos drawn on `canvases`, from each canvas' size and scale."""
    return page.eval_on_selector_all(
        canvases,
        "cs => cs.map(c => [c.width, c.height].map(n => Math.round(n / c.dataset.scale)))",
    )


def box_drawn(page: Any, canvas: str, box: list[float], color: str) -> bool:
    """Whether most of 9 pixels down the middle of `box`'s left edge (photo pixels) on
    `canvas` are `color`."""
    samples = page.evaluate(
        """([selector, x, top, bottom]) => {
            const canvas = document.querySelector(selector);
            const ctx = canvas.getContext("2d");
            const scale = Number(canvas.dataset.scale);
            const out = [];
            for (let i = 0; i < 9; i++) {
                const y = Math.round(scale * (top + (bottom - top) * (0.3 + 0.05 * i)));
                out.push([...ctx.getImageData(Math.round(scale * x), y, 1, 1).data.slice(0, 3)]);
            }
            return out;
        }""",
        [canvas, box[0], box[1], box[3]],
    )
    want = [int(color[i : i + 2], 16) for i in (1, 3, 5)]
    close = [all(abs(a - b) <= 40 for a, b in zip(rgb, want, strict=True)) for rgb in samples]
    return sum(close) >= 6


def test_analyze_draws_every_face(browser: Any, server: str) -> None:
    with open_page(browser, server) as page:
        assert page.is_visible("#analyze")  # the first page
        page.set_input_files("#analyze-file", shared_file(GROUP))
        assert shown_error(page, "analyze") is None
        cards = page.locator("#analyze-faces > li")
        expect(cards).to_have_count(5)
        expect(page.locator("#analyze .status")).to_contain_text("5 faces in")
        assert photo_size(page, "#analyze-canvas") == [[416, 416]]
        for i in range(5):
            card = cards.nth(i)
            reasons = " ".join(card.locator(".missing").all_inner_texts())
            # one bar per emotion, or none on a face too small to read it
            assert card.locator(".bar").count() == 7 or "too small to read" in reasons
            assert "age " in card.locator(".facts").inner_text()
            quality = card.locator(".quality").inner_text()
            assert re.fullmatch(r"quality [01]\.\d\d \(weakest: \w+\) · \d+ px", quality), quality
            box = [float(v) for v in card.get_attribute("data-box").split(",")]
            assert box_drawn(page, "#analyze-canvas", box, card.get_attribute("data-color"))
        assert page.locator("#analyze .error").is_hidden()
        # five faces: compact cards, emotion bars folded under the likeliest emotion
        expect(page.locator("#analyze .result")).to_have_class(re.compile(r"\bmany\b"))
        assert page.locator("#analyze details.emotions[open]").count() == 0
        assert page.eval_on_selector("#analyze canvas", "c => getComputedStyle(c).position") == (
            "sticky"
        )
        screenshot(page, "analyze")


def drop(page: Any, zone: str, photo: Path) -> None:
    """Drops `photo` on the element `zone`, as a file dragged from the desktop."""
    transfer = page.evaluate_handle(
        """([data, name]) => {
            const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, { type: "image/jpeg" }));
            return transfer;
        }""",
        [base64.b64encode(photo.read_bytes()).decode(), photo.name],
    )
    page.dispatch_event(zone, "drop", {"dataTransfer": transfer})


def test_photos_can_be_dropped(browser: Any, server: str) -> None:
    with open_page(browser, server) as page:
        tab(page, "compare")
        for side, number in (("a", 1), ("b", 2)):
            zone, photo = f"#compare .drop:has(#compare-{side})", lfw("Alan_Greenspan", number)
            drop(page, zone, photo)
            expect(page.locator(zone)).to_contain_text(photo.name)
        expect(page.locator("#compare-verdict")).to_contain_text("Same person")


def test_compare_same_and_different(browser: Any, server: str) -> None:
    with open_page(browser, server) as page:
        tab(page, "compare")
        page.set_input_files("#compare-a", lfw("Abdoulaye_Wade", 1))
        page.set_input_files("#compare-b", lfw("Alan_Greenspan", 2))
        verdict = page.locator("#compare-verdict")
        expect(verdict).to_contain_text("Not the same person")
        expect(verdict).to_have_class("verdict different")
        # far apart: the calibrated false-accept rate is clamped at the table's top, 0.1
        expect(page.locator("#compare-far")).to_have_text(
            "1 in 10 or more strangers look this similar"
        )
        page.set_input_files("#compare-b", lfw("Abdoulaye_Wade", 4))
        expect(verdict).to_contain_text("Same person")
        expect(verdict).not_to_contain_text("Not the same")
        assert "similarity" in verdict.inner_text()
        # very close: clamped at the table's bottom, 1e-5
        expect(page.locator("#compare-far")).to_have_text(
            "fewer than 1 in 100,000 strangers look this similar"
        )
        expect(page.locator("#compare-details")).to_contain_text(MODEL_LABELS["edgeface_xs"])
        assert photo_size(page, "#compare canvas") == [[250, 250], [250, 250]]
        screenshot(page, "compare")
        # stricter: the threshold becomes the distance at which 1 in 100,000 strangers match
        with page.expect_response(lambda r: "/v1/verify?" in r.url and "far=" in r.url) as sent:
            page.select_option("#compare-strictness", "0.00001")
        assert sent.value.json()["threshold"] == FAR_TABLES["edgeface_xs"][-1][1]
        expect(page.locator("#compare-details")).to_contain_text(
            f"same person below {FAR_TABLES['edgeface_xs'][-1][1]}"
        )


def in_words(far: float) -> str:
    """What the page should say of a false-accept rate inside the calibrated range (1e-5, 0.1):
    one in 1 / far, to two significant digits."""
    return f"1 in {float(f'{1 / far:.2g}'):,.0f} strangers look this similar"


def test_false_accept_rate_in_words(browser: Any, server: str) -> None:
    with open_page(browser, server) as page:
        said = page.evaluate("fars => fars.map(farWords)", [3.2e-5, 1e-5, 0.1, 1.23e-3, 0.05])
        assert said == [
            "1 in 31,000 strangers look this similar",
            "fewer than 1 in 100,000 strangers look this similar",
            "1 in 10 or more strangers look this similar",
            "1 in 810 strangers look this similar",
            "1 in 20 strangers look this similar",
        ]


def test_a_person_with_many_faces(browser: Any, server: str) -> None:
    """The people view shows a person's first 24 faces and says how many more there are."""
    with open_page(browser, server) as page:
        card = page.evaluate_handle(
            """() => personCard("c", "Ann Lee", Array.from({ length: 30 }, (_, i) => ({
                id: i + 1, person: "Ann Lee", source: "<bytes>", box: [0, 0, 9, 9],
                created: "2026-12-02T12:00:00+00:00" })))"""
        )
        assert card.evaluate("c => c.querySelectorAll('figure').length") == 24
        assert card.evaluate("c => c.querySelector('.more').textContent") == "and 6 more"
        assert card.evaluate("c => c.querySelector('.initials').textContent") == "AL"


def test_compare_with_each_model(browser: Any, server: str) -> None:
    """Two strangers who look somewhat alike (an LFW pair of different people): the page sends
    the chosen model, names it, and puts the server's calibrated false-accept rate of their
    distance, inside the calibrated range for both models, into words."""
    with open_page(browser, server) as page:
        tab(page, "compare")
        models = page.locator("#compare-model option")
        expect(models).to_have_count(len(MODEL_LABELS))
        assert sorted(models.all_inner_texts()) == sorted(MODEL_LABELS.values())
        expect(page.locator("#compare-model option:checked")).to_have_text(
            MODEL_LABELS["edgeface_xs"]
        )
        page.set_input_files("#compare-a", lfw("Billy_Bob_Thornton", 1))
        for model in ("edgeface_xs", "dlib_resnet_v1"):
            with page.expect_response(lambda r: "/v1/verify" in r.url) as answer:
                if model == "edgeface_xs":
                    page.set_input_files("#compare-b", lfw("Herb_Dhaliwal", 1))
                else:
                    page.select_option("#compare-model", model)  # compares again
            assert f"model={model}" in answer.value.url
            result = answer.value.json()
            assert result["model"] == model and not result["same"]
            assert 1e-5 < result["far"] < 0.1
            expect(page.locator("#compare-details")).to_contain_text(MODEL_LABELS[model])
            expect(page.locator("#compare-far")).to_have_text(in_words(result["far"]))


def test_errors_are_shown(browser: Any, server: str, files: dict[str, Path]) -> None:
    with open_page(browser, server) as page:
        tab(page, "compare")
        error = page.locator("#compare .error")
        page.set_input_files("#compare-a", lfw("Abdoulaye_Wade", 1))
        page.set_input_files("#compare-b", files["text"])
        expect(error).to_contain_text("'b' (notes.jpg): not an image")
        page.set_input_files("#compare-b", files["grey"])
        expect(error).to_contain_text("'b' (grey.png): no face found")
        assert page.locator("#compare .result").is_hidden()
        assert "Traceback" not in page.content()
        screenshot(page, "error")
        tab(page, "identify")  # no collection chosen yet: the page says so
        page.set_input_files("#identify-file", lfw("Abdoulaye_Wade", 1))
        expect(page.locator("#identify .error")).to_contain_text("create one first")


def test_enrol_and_identify(browser: Any, server: str) -> None:
    with open_page(browser, server) as page:
        tab(page, "identify")
        page.fill("#collection-name", "friends")
        page.click("#collection-create")
        expect(page.locator("#collection")).to_have_value("friends")
        for person, folder in (
            ("Abdoulaye Wade", "Abdoulaye_Wade"),
            ("Alan Greenspan", "Alan_Greenspan"),
        ):
            page.fill("#enroll-person", person)
            page.set_input_files("#enroll-files", [lfw(folder, 1), lfw(folder, 2)])
            page.click("#enroll-run")
            expect(page.locator("#identify .status")).to_contain_text(
                f"Enrolled 2 photos of {person}"
            )
        expect(page.locator("#persons li")).to_have_count(2)
        expect(page.locator("#collection option:checked")).to_contain_text("2 people, 4 faces")

        page.set_input_files("#identify-file", lfw("Adam_Sandler", 1))  # not enrolled
        expect(page.locator("#identify-faces > li")).to_have_attribute("data-person", "")
        expect(page.locator("#identify-faces h3")).to_contain_text("unknown")
        page.set_input_files("#identify-file", lfw("Alan_Greenspan", 3))
        face = page.locator("#identify-faces > li")
        expect(face).to_have_attribute("data-person", "Alan Greenspan")
        expect(face.locator("h3")).to_have_text("Face 1: Alan Greenspan")
        expect(page.locator("#identify .status")).to_contain_text("1 of 1 face recognised")
        expect(page.locator("#collection option:checked")).to_contain_text(
            MODEL_LABELS["edgeface_xs"]  # a new collection takes the default model
        )
        screenshot(page, "identify")


def test_collection_pinned_to_its_model(browser: Any, server: str) -> None:
    """A collection enrolled with EdgeFace XXS: the page shows its model; enrolling or
    identifying with another model shows the server's 409 and what to choose instead; "the
    collection's model" sends no model and the server uses the collection's."""
    with open_page(browser, server) as page:
        tab(page, "identify")
        select = page.locator("#identify-model")
        expect(select.locator("option")).to_have_count(1 + len(MODEL_LABELS))
        assert select.locator("option").all_inner_texts()[0] == COLLECTIONS_MODEL
        expect(select).to_have_value("")
        page.fill("#collection-name", "pinned")
        page.click("#collection-create")
        expect(page.locator("#collection")).to_have_value("pinned")
        expect(page.locator("#collection-model")).to_contain_text("No faces yet")
        select.select_option("edgeface_xxs")
        page.fill("#enroll-person", "Abdoulaye Wade")
        page.set_input_files("#enroll-files", [lfw("Abdoulaye_Wade", n) for n in (1, 2)])
        with page.expect_request(lambda r: "/enroll" in r.url) as sent:
            page.click("#enroll-run")
        assert sent.value.url.endswith("/v1/collections/pinned/enroll?model=edgeface_xxs")
        expect(page.locator("#identify .status")).to_contain_text("Enrolled 2 photos")
        pinned = MODEL_LABELS["edgeface_xxs"]
        expect(page.locator("#collection option:checked")).to_contain_text(pinned)
        expect(page.locator("#collection-model")).to_contain_text(f"embedded with {pinned}")

        select.select_option("dlib_resnet_v1")
        error = page.locator("#identify .error")
        page.set_input_files("#identify-file", lfw("Abdoulaye_Wade", 3))
        expect(error).to_contain_text("holds edgeface_xxs embeddings, not dlib_resnet_v1")
        expect(error.locator(".hint")).to_have_text(
            f'Choose "{COLLECTIONS_MODEL}" ({pinned}) as the recognition model, or use another '
            "collection."
        )
        assert page.locator("#identify .result").is_hidden()
        page.fill("#enroll-person", "Alan Greenspan")
        page.set_input_files("#enroll-files", lfw("Alan_Greenspan", 1))
        with page.expect_response(lambda r: "/enroll" in r.url) as answer:
            page.click("#enroll-run")
        assert answer.value.status == 409
        assert shown_error(page, "identify") is not None
        expect(error).to_contain_text("holds edgeface_xxs embeddings, not dlib_resnet_v1")
        persons = httpx.get(f"{server}/v1/collections/pinned/persons").json()
        assert persons == [{"person": "Abdoulaye Wade", "faces": 2}]  # nothing was enrolled
        screenshot(page, "identify-409")

        select.select_option("")
        with page.expect_request(lambda r: "/identify" in r.url) as sent:
            page.set_input_files("#identify-file", lfw("Abdoulaye_Wade", 4))
        assert "model=" not in sent.value.url
        wade = page.locator('#identify-faces > li[data-person="Abdoulaye Wade"]')
        expect(wade).to_have_count(1)
        assert error.is_hidden()


def test_group_photos_by_person(browser: Any, server: str, files: dict[str, Path]) -> None:
    photos = [lfw("Abdoulaye_Wade", n) for n in (1, 2)]
    photos += [lfw(person, n) for person in ("Adam_Sandler", "Alan_Greenspan") for n in (1, 2, 3)]
    with open_page(browser, server) as page:
        tab(page, "group")
        page.set_input_files("#group-files", [*photos, files["text"]])
        expect(page.locator("#group-summary")).to_have_text("3 people among 8 faces in 9 photos")
        assert group_people(page) == THREE_PEOPLE
        expect(page.locator("#group-errors li")).to_have_text(
            "notes.jpg: not an image or unsupported format"
        )
        screenshot(page, "group")
        embeds: list[str] = []
        page.on("request", lambda r: embeds.append(r.url) if "/v1/embed" in r.url else None)
        with page.expect_response(lambda r: "/v1/group/embeddings" in r.url) as answer:
            page.select_option("#group-model", "dlib_resnet_v1")  # groups again
        assert answer.value.ok
        assert answer.value.request.post_data_json["model"] == "dlib_resnet_v1"
        assert len(embeds) == 9 and all(
            u.endswith("/v1/embed?model=dlib_resnet_v1") for u in embeds
        )
        assert shown_error(page, "group") is None  # once drawn
        expect(page.locator("#group-summary")).to_have_text("3 people among 8 faces in 9 photos")
        with page.expect_response(lambda r: "/v1/group/embeddings" in r.url) as answer:
            page.select_option("#group-strictness", "0.001")  # and again, at FAR 1e-3
        assert answer.value.ok
        body = answer.value.request.post_data_json
        assert (body["model"], body["far"], body["images"]) == ("dlib_resnet_v1", 0.001, 9)
        assert len(body["faces"]) == 8 and len(body["faces"][0]["embedding"]) == 128
        assert body["errors"] == [
            {"image": "notes.jpg", "error": "not an image or unsupported format"}
        ]
        # the same answer /v1/group gives for the same photos, at the same settings
        files = [
            ("images", (p.name, p.read_bytes(), "image/jpeg")) for p in [*photos, files["text"]]
        ]
        whole = httpx.post(
            f"{server}/v1/group",
            params={"model": "dlib_resnet_v1", "far": 0.001},
            files=files,
            timeout=WAIT_MS / 1000,
        )
        assert answer.value.json() == whole.json()


PHONE_SIZE = (4000, 3000)  # a phone camera's 12-megapixel photo
PHONE_SET = [("Abdoulaye_Wade", n) for n in (1, 2)] + [
    (person, n)
    for person, numbers in (("Adam_Sandler", (1, 3, 4)), ("Alan_Greenspan", (1, 3, 5)))
    for n in numbers
]  # (Alan_Greenspan_0002, enlarged, shows a second face at its edge)


@pytest.fixture(scope="module")
def phone_photos(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """PHONE_SET's LFW photos as a phone takes them: the face enlarged 12 times on a 4000 x 3000
    frame with sensor-like noise, JPEG quality 95 (about 4 MB each, more than the server's
    upload limit together); the last one stored on its side (3000 x 4000) with EXIF
    orientation 6 (turn 90 degrees clockwise to view), as phones often store photos."""
    folder = tmp_path_factory.mktemp("phone")
    random = np.random.default_rng(19)
    width, height = PHONE_SIZE
    made = []
    for person, number in PHONE_SET:
        face = Image.open(lfw(person, number)).convert("RGB")
        face = face.resize((height, height), Image.BICUBIC)
        frame = Image.new("RGB", PHONE_SIZE, (96, 104, 112))
        frame.paste(face, ((width - height) // 2, 0))
        noise = random.normal(0, 6, (height, width, 3)).astype(np.int16)
        pixels = np.asarray(frame, np.int16) + noise
        photo = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
        path = folder / f"{person}_{number}.jpg"
        if len(made) == len(PHONE_SET) - 1:
            exif = Image.Exif()
            exif[0x0112] = 6  # Orientation: the stored pixels are turned 90 degrees anticlockwise
            photo.transpose(Image.Transpose.ROTATE_90).save(path, quality=95, exif=exif)
        else:
            photo.save(path, quality=95)
        made.append(path)
    return made


def test_photos_shown_shrunk_and_previewed(
    browser: Any, server: str, files: dict[str, Path], phone_photos: list[Path]
) -> None:
    """A photo without a face is still shown; a phone photo stored on its side is analysed
    upright at 2,048 px; Compare previews each photo as it is chosen."""
    with open_page(browser, server) as page:
        page.set_input_files("#analyze-file", files["grey"])
        expect(page.locator("#analyze .status")).to_contain_text("No face found in grey.png (320 ")
        assert page.locator("#analyze .error").is_hidden()
        expect(page.locator("#analyze-canvas")).to_be_visible()
        assert photo_size(page, "#analyze-canvas") == [[320, 240]]
        page.set_input_files("#analyze-file", phone_photos[-1])
        expect(page.locator("#analyze .status")).to_have_text(
            f"1 face in {phone_photos[-1].name} (4000 × 3000 sent at 2048 × 1536)."  # noqa: RUF001
        )
        assert photo_size(page, "#analyze-canvas") == [[2048, 1536]]
        tab(page, "compare")
        page.set_input_files("#compare-a", lfw("Abdoulaye_Wade", 1))  # one photo: no request yet
        preview = page.locator("#compare-preview-a")
        expect(preview).to_be_visible()
        page.wait_for_function("() => document.querySelector('#compare-preview-a').naturalWidth")
        assert preview.evaluate("i => [i.naturalWidth, i.naturalHeight]") == [250, 250]
        assert page.locator("#compare-preview-b").is_hidden()
        page.set_input_files("#compare-b", lfw("Abdoulaye_Wade", 2))
        expect(page.locator("#compare-verdict")).to_contain_text("Same person")
        expect(page.locator("#compare-preview-b")).to_be_visible()


def group_people(page: Any) -> list[tuple[str, int]]:
    """The groups shown as (person of LFW, faces), from the photos' names of each group."""
    groups = page.locator("#group-list > li")
    people = []
    for i in range(groups.count()):
        titles = groups.nth(i).locator("canvas").evaluate_all("cs => cs.map(c => c.title)")
        (person,) = {title.rsplit("_", 1)[0] for title in titles}  # one person a group
        people.append((person, len(titles)))
    return sorted(people)


def test_group_of_phone_photos(browser: Any, server: str, phone_photos: list[Path]) -> None:
    """Eight 12-megapixel photos (too large together for the server's upload limit) are shrunk
    in the browser, upright, and sent a few at a time to /v1/embed with each photo's progress
    shown, then grouped by /v1/group/embeddings; a grouping can be cancelled midway."""
    assert sum(p.stat().st_size for p in phone_photos) > DEFAULT_MAX_UPLOAD
    assert Image.open(phone_photos[-1]).size == (3000, 4000)
    with open_page(browser, server) as page:
        tab(page, "group")
        rows = page.locator("#group-photos > li")
        posts: list[str] = []
        page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
        page.set_input_files("#group-files", phone_photos)
        expect(page.locator("#group-photos > li[data-state=found]").first).to_be_visible()
        assert page.eval_on_selector("#group-progress", "p => p.value") < 1  # not all done
        screenshot(page, "group-progress")
        page.click("#group-cancel")
        expect(page.locator("#group .status")).to_have_text("Cancelled.")
        expect(rows.filter(has_text="not grouped")).to_have_count(8)
        assert page.locator("#group .result").is_hidden()
        assert page.locator("#group-working").is_hidden()
        assert page.locator("#group .error").is_hidden()
        started = len(posts)
        page.wait_for_timeout(2_000)
        assert len(posts) == started and "/v1/group/embeddings" not in str(posts)  # none after

        posts.clear()
        with page.expect_response(lambda r: "/v1/group/embeddings" in r.url) as answer:
            page.set_input_files("#group-files", phone_photos)
        assert answer.value.ok
        expect(page.locator("#group-summary")).to_have_text("3 people among 8 faces in 8 photos")
        assert group_people(page) == THREE_PEOPLE
        expect(rows.filter(has_text="1 face")).to_have_count(8)
        embeds = [url for url in posts if "/v1/embed" in url]
        assert (len(embeds), len(posts)) == (8, 9)  # 8 photos one by one, then their faces
        sent = page.evaluate(
            """async () => Promise.all([...document.querySelector("#group-files").files].map(
                async (file) => {
                    const { upload, image } = await prepare(file);
                    return [image.naturalWidth, image.naturalHeight, upload.size];
                }))"""
        )
        assert [size[:2] for size in sent] == [[2048, 1536]] * 8  # the last one turned upright
        assert max(size[2] for size in sent) < 2**20  # each request under 1 MB
        screenshot(page, "group-phone-photos")


def test_group_over_the_upload_limit(
    browser: Any, tmp_path: Path, phone_photos: list[Path]
) -> None:
    """A server taking 1 MB a request groups the eight shrunk phone photos (3 MB together),
    sent one by one; with 0.2 MB, each photo is refused (413) and marked so, and nothing is
    grouped."""
    options = ("--max-upload-mb", "1", "--no-analysis")
    with kao_serve(tmp_path, *options) as base, open_page(browser, base) as page:
        tab(page, "group")
        page.set_input_files("#group-files", phone_photos)
        expect(page.locator("#group-summary")).to_have_text("3 people among 8 faces in 8 photos")
        assert shown_error(page, "group") is None
    options = ("--max-upload-mb", "0.2", "--no-analysis")
    (tmp_path / "small").mkdir()
    with kao_serve(tmp_path / "small", *options) as base, open_page(browser, base) as page:
        tab(page, "group")
        page.set_input_files("#group-files", phone_photos[:3])
        expect(page.locator("#group-summary")).to_have_text("0 people among 0 faces in 3 photos")
        failed = page.locator("#group-photos > li[data-state=failed]")
        expect(failed).to_have_count(3)
        expect(failed.first).to_contain_text("larger than the limit")
        expect(page.locator("#group-errors li")).to_have_count(3)


def test_enrol_a_group_and_the_people_view(
    browser: Any, server: str, phone_photos: list[Path]
) -> None:
    """Two groups found by Group enrolled under names (each face by its box), then the people
    view: thumbnails, rename, delete a face (asked first), a person (not when the question is
    declined) with their thumbnails, forget the thumbnails, delete the collection."""
    assert httpx.post(f"{server}/v1/collections", json={"name": "phones"}).status_code == 201
    answers: list[bool] = [True]  # what the page's next confirm() questions get
    with open_page(browser, server) as page:
        page.on("dialog", lambda d: d.accept() if answers[0] else d.dismiss())
        tab(page, "group")
        page.set_input_files("#group-files", phone_photos[2:])  # Adam Sandler, Alan Greenspan
        expect(page.locator("#group-summary")).to_have_text("2 people among 6 faces in 6 photos")
        page.select_option("#group-collection", "phones")
        for folder, name in (("Alan_Greenspan", "Alan Greenspan"), ("Adam_Sandler", "Adam")):
            group = page.locator("#group-list > li", has=page.locator(f"canvas[title^={folder}]"))
            group.locator(".enrol-name").fill(name)
            with page.expect_request(lambda r: "/enroll?" in r.url) as sent:
                group.locator(".enrol-group").click()
            assert sent.value.url.count("box=") == 3  # each face by its box in its photo
            expect(page.locator("#group .status")).to_contain_text(
                f"Enrolled 3 faces as {name} in phones"
            )
        persons = httpx.get(f"{server}/v1/collections/phones/persons").json()
        assert persons == [{"person": "Adam", "faces": 3}, {"person": "Alan Greenspan", "faces": 3}]

        tab(page, "people")
        page.select_option("#people-collection", "phones")
        cards = page.locator("#people-list > li")
        expect(cards).to_have_count(2)
        alan = page.locator('#people-list > li[data-person="Alan Greenspan"]')
        thumbs = alan.locator("img.thumb")
        expect(thumbs).to_have_count(3)
        assert thumbs.evaluate_all("is => is.map(i => i.naturalWidth)") == [80, 80, 80]

        adam = page.locator('#people-list > li[data-person="Adam"]')
        adam.locator(".person-name").fill("Adam Sandler")
        adam.locator(".person-name").press("Enter")  # as the Rename button
        expect(page.locator('#people-list > li[data-person="Adam Sandler"]')).to_have_count(1)
        expect(page.locator("#people .status")).to_have_text("Renamed Adam to Adam Sandler.")

        alan.locator(".delete-face").first.click()
        expect(alan.locator("figure")).to_have_count(2)
        screenshot(page, "people")

        answers[0] = False  # declined: nothing is deleted
        page.locator('#people-list > li[data-person="Adam Sandler"] .delete-person').click()
        answers[0] = True
        page.locator('#people-list > li[data-person="Adam Sandler"] .delete-person').click()
        expect(cards).to_have_count(1)
        expect(page.locator("#people .status")).to_have_text("Deleted Adam Sandler (3 faces).")
        assert httpx.get(f"{server}/v1/collections/phones/persons").json() == [
            {"person": "Alan Greenspan", "faces": 2}
        ]
        stored = page.evaluate("Object.keys(storedThumbnails()).map(Number)")
        assert sorted(stored) == sorted(
            int(f) for f in alan.locator("figure").evaluate_all("fs => fs.map(f => f.dataset.face)")
        )  # of the faces left
        page.click("#people-forget")  # thumbnails kept by this browser: initials instead
        expect(alan.locator(".initials")).to_have_count(2)
        assert page.locator("#people-list img").count() == 0
        expect(alan.locator(".initials").first).to_have_text("AG")
        page.click("#people-delete-collection")
        expect(page.locator("#people .status")).to_have_text("Deleted the collection phones.")
        names = [c["collection"] for c in httpx.get(f"{server}/v1/collections").json()]
        assert "phones" not in names


def test_phone_sized_screen(browser: Any, server: str) -> None:
    long_name = "family and friends from the summer holidays"  # a wide option in the selectors
    assert httpx.post(f"{server}/v1/collections", json={"name": long_name}).status_code == 201
    with open_page(browser, server, 390, 844) as page:
        for name in ("analyze", "compare", "identify", "group", "people"):
            tab(page, name)
            assert page.evaluate("document.documentElement.scrollWidth") <= 390, name
        tab(page, "analyze")
        page.set_input_files("#analyze-file", shared_file(GROUP))
        assert shown_error(page, "analyze") is None
        expect(page.locator("#analyze-faces > li")).to_have_count(5)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        width = page.eval_on_selector("#analyze canvas", "c => c.getBoundingClientRect().width")
        assert 0 < width <= 390 - 2 * 16
        screenshot(page, "phone")
        tab(page, "group")  # the groups, and the collection to enrol one into
        page.set_input_files("#group-files", [lfw("Abdoulaye_Wade", n) for n in (1, 2)])
        expect(page.locator("#group-summary")).to_have_text("1 person among 2 faces in 2 photos")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
    httpx.delete(f"{server}/v1/collections/{long_name}")


def test_api_docs_work_offline(browser: Any, server: str) -> None:
    """/docs draws the API's operations from files the server itself serves (the browser can
    reach nothing else: open_page checks every request)."""
    with open_page(browser, server) as page:
        page.goto(server + "/docs")
        expect(page.locator(".swagger-ui .info .title")).to_contain_text("kao")
        expect(page.locator(".opblock-summary-path", has_text="/v1/detect")).to_have_count(1)


def test_api_key_from_the_page(browser: Any, tmp_path: Path) -> None:
    """A server that requires keys: the page asks for one, sends it as a Bearer token once
    pasted, and keeps it in localStorage."""
    store = KeyStore(tmp_path / "keys.db")
    _, key = store.create("browser")
    options = ("--require-keys", "--keys", str(store.path), "--no-analysis")
    with kao_serve(tmp_path, *options) as base, open_page(browser, base) as page:
        expect(page.locator("#key")).to_be_visible()
        expect(page.locator("#key-state")).to_contain_text("needs an API key")
        tab(page, "compare")
        page.set_input_files("#compare-a", lfw("Abdoulaye_Wade", 1))
        page.set_input_files("#compare-b", lfw("Abdoulaye_Wade", 2))
        expect(page.locator("#compare .error")).to_contain_text("An API key is required")
        page.fill("#key-input", key)
        page.click("#key-save")
        expect(page.locator("#compare-model")).to_be_visible()  # the models, once allowed
        with page.expect_request(lambda r: "/v1/verify" in r.url) as sent:
            page.set_input_files("#compare-b", lfw("Abdoulaye_Wade", 4))
        assert sent.value.headers["authorization"] == f"Bearer {key}"
        expect(page.locator("#compare-verdict")).to_contain_text("Same person")
        page.reload()
        expect(page.locator("#key-input")).to_have_value(key)
        page.click("#key-forget")
        assert page.evaluate("localStorage.getItem('kao.apiKey')") is None


PLAYBACK = """async (video) => {
  video.muted = true;
  const ended = new Promise((done) => video.addEventListener("ended", done, { once: true }));
  const late = new Promise((done) => setTimeout(done, 20000));  // a stalled video still returns
  await video.play();
  await Promise.race([ended, late]);
  return { readyState: video.readyState, width: video.videoWidth, height: video.videoHeight,
           time: video.currentTime, error: video.error && video.error.message };
}"""
"""Plays a <video> to its end (20 s at most) in the page; what the element then says."""


@pytest.mark.parametrize("name", ["annotated.mp4", "annotated.webm"])
def test_the_browser_plays_an_annotated_video(browser: Any, tmp_path: Path, name: str) -> None:
    """`kao video --out` on a clip of real faces: Chromium plays the H.264 MP4 (and the VP9
    WebM) in a <video> element to its end, at the clip's size."""
    from kao.cli import main
    from tests.videos import make_video

    clip = tmp_path / "clip.avi"
    make_video("crossing", clip)
    args = ["video", str(clip), "--no-attributes", "--max-frames", "20"]
    assert main([*args, "--out", str(tmp_path / name)]) == 0
    (tmp_path / "page.html").write_text(f'<video src="{name}" width="640"></video>')
    page = browser.new_page()
    try:
        page.goto((tmp_path / "page.html").as_uri())
        played = page.locator("video").evaluate(PLAYBACK)
        screenshot(page, f"video-{name.replace('.', '-')}")
    finally:
        page.close()
    assert played["error"] is None and played["readyState"] >= 2
    assert (played["width"], played["height"]) == (640, 480)
    assert played["time"] == pytest.approx(20 / 30, abs=0.05)  # 20 frames at 30 fps
