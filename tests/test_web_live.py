"""The Live tab of the web page in a real browser: Chromium, headless, with a fake camera that
plays a video the test builds from real LFW photos (two people, `tests.test_live.PAIR`), on
a real `kao serve` whose collection holds other photos of those two people. Checks the
tracked faces and their names, each overlay drawn and removed (screenshots, as in
tests/test_web.py: ``KAO_SCREENSHOTS=docs/screenshots`` refreshes the ones in the docs), the
message when the camera is refused and a video file played instead, the page reconnecting
after the server restarts, and a server that needs an API key."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from kao.evaluation.loadtest import Server
from kao.evaluation.synthetic_video import FPS, HEIGHT, WIDTH
from kao.video import AnnotatedVideo
from tests.test_live import enrol, scene_frames
from tests.test_web import WAIT_MS, launch, playwright, screenshot  # noqa: F401 (fixture)

OVERLAYS = ("mesh", "points", "axes", "gaze", "iris", "texture")
DRAWN = "document.querySelector('#live-canvas').dataset.drawn"
"""What the Live tab's canvas drew on its last frame: "boxes" and the overlays, sorted."""


def write_y4m(frames: list[np.ndarray], path: Path, fps: int = 30) -> Path:
    """`frames` (H x W x 3 uint8 RGB, all one size) as a YUV4MPEG2 4:2:0 file, what Chromium's
    fake camera plays (in a loop)."""
    height, width = frames[0].shape[:2]
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for rgb in frames:
            out.write(b"FRAME\n")
            out.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420).tobytes())
    return path


@pytest.fixture(scope="module")
def camera(tmp_path_factory: pytest.TempPathFactory) -> Path:
    frames = scene_frames()
    return write_y4m(frames + frames[::-1], tmp_path_factory.mktemp("camera") / "pair.y4m")


@contextmanager
def chromium(playwright: Any, *args: str) -> Iterator[Any]:  # noqa: F811
    """Chromium, offline but for 127.0.0.1, with a fake camera and the extra `args`."""
    with launch(playwright, "--use-fake-device-for-media-stream", *args) as browser:
        yield browser


@pytest.fixture(scope="module")
def browser(playwright: Any, camera: Path) -> Iterator[Any]:  # noqa: F811
    """Chromium whose camera plays `camera`, allowed without asking."""
    allowed = "--use-fake-ui-for-media-stream"
    with chromium(playwright, allowed, f"--use-file-for-fake-video-capture={camera}") as chosen:
        yield chosen


@contextmanager
def live_page(browser: Any, base: str) -> Iterator[Any]:
    """The Live tab of `base` in a fresh context; afterwards, no script error was shown."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    try:
        page.goto(base + "/#live")
        page.wait_for_selector("#live[data-state=stopped]", state="attached")
        yield page
    finally:
        context.close()
    assert problems == []


def settle(page: Any, frames: int = 5) -> None:
    """Wait until the session has answered `frames` frames (after a reconnect, the models'
    first runs are slow) and the canvas shows two faces."""
    page.wait_for_function(
        "Number(document.querySelector('#live-stats').textContent.match(/frame (\\d+)/)?.[1])"
        f" >= {frames}"
    )
    page.wait_for_selector("#live-canvas[data-faces='2']", state="attached")


def names(page: Any) -> list[str]:
    return sorted(page.locator("#live-faces li .name").all_inner_texts())


def drawn(page: Any) -> set[str]:
    return set((page.get_attribute("#live-canvas", "data-drawn") or "").split())


def test_tracked_faces_names_and_overlays(
    browser: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from playwright.sync_api import expect

    folder = tmp_path_factory.mktemp("web-live")
    db = str(folder / "faces.db")
    enrol(db)
    with Server(db, folder / "serve.log") as server, live_page(browser, server.base) as page:
        page.select_option("#live-collection", "people")
        page.click("#live-start")
        expect(page.locator("#live")).to_have_attribute("data-state", "live")
        expect(page.locator("#live-canvas")).to_have_attribute("data-faces", "2")
        page.wait_for_function(
            "[...document.querySelectorAll('#live-faces li .name')]"
            ".map((n) => n.textContent.replace(/^#\\d+ /, '')).sort().join() === "
            "'Colin_Powell,Serena_Williams'"
        )
        assert "years" in page.inner_text("#live-faces")
        expect(page.locator("#live-stats")).to_contain_text(" fps · latency ")
        assert drawn(page) == {"boxes"}
        settle(page)
        screenshot(page, "live-names")
        for overlay in OVERLAYS:
            page.check(f"#live [data-overlay={overlay}]")
            page.wait_for_function(f"({DRAWN} || '').split(' ').includes('{overlay}')")
            if overlay == "iris":
                settle(page)
                screenshot(page, "live-overlays")
        assert drawn(page) == {"boxes", *OVERLAYS}
        for overlay in OVERLAYS[:-1]:
            page.uncheck(f"#live [data-overlay={overlay}]")
        page.wait_for_function(f"{DRAWN} === 'boxes texture'")
        settle(page)
        screenshot(page, "live-texture")
        page.uncheck("#live [data-overlay=texture]")
        page.wait_for_function(f"{DRAWN} === 'boxes'")
        assert names(page)  # still live


def test_a_refused_camera_is_explained_and_a_video_file_plays_instead(
    playwright: Any,  # noqa: F811
    camera: Path,
    tmp_path: Path,
) -> None:
    from playwright.sync_api import expect

    video = tmp_path / "pair.webm"
    with AnnotatedVideo(video, WIDTH, HEIGHT, FPS) as writer:
        for rgb in scene_frames():
            writer.write(rgb)
    with (
        chromium(playwright, f"--use-file-for-fake-video-capture={camera}") as browser,
        Server(str(tmp_path / "faces.db"), tmp_path / "serve.log", "--no-analysis") as server,
        live_page(browser, server.base) as page,
    ):
        page.click("#live-start")
        expect(page.locator("#live .error")).to_contain_text("The camera was refused")
        assert page.get_attribute("#live", "data-state") == "no-camera"
        screenshot(page, "live-refused")
        page.uncheck("#live-attributes")  # the server has no analysis models
        page.set_input_files("#live-file", str(video))
        expect(page.locator("#live .error")).to_be_hidden()
        expect(page.locator("#live")).to_have_attribute("data-state", "live")
        settle(page, 3)


def test_the_page_reconnects_after_the_server_restarts(browser: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    db = str(tmp_path / "faces.db")
    first = Server(db, tmp_path / "first.log", "--no-analysis")
    second = Server(db, tmp_path / "second.log", "--no-analysis")
    second.command[second.command.index(str(second.port))] = str(first.port)
    second.port, second.base = first.port, first.base  # the same address, a new process
    with first, live_page(browser, first.base) as page:
        page.uncheck("#live-attributes")  # the server has no analysis models
        page.click("#live-start")
        expect(page.locator("#live-canvas")).to_have_attribute("data-faces", "2")
        first.__exit__()
        expect(page.locator("#live")).to_have_attribute("data-state", "reconnecting")
        assert "reconnecting" in page.inner_text("#live .status")
        with second:
            expect(page.locator("#live")).to_have_attribute("data-state", "live")
            settle(page, 3)


def test_a_server_that_needs_a_key(browser: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    from kao.server.keys import KeyStore

    _, key = KeyStore(tmp_path / "keys.db").create("page")
    options = ("--no-analysis", "--require-keys", "--keys", str(tmp_path / "keys.db"))
    with (
        Server(str(tmp_path / "faces.db"), tmp_path / "serve.log", *options) as server,
        live_page(browser, server.base) as page,
    ):
        page.uncheck("#live-attributes")
        page.click("#live-start")
        expect(page.locator("#live")).to_have_attribute("data-state", "refused")
        expect(page.locator("#live .error")).to_contain_text("an API key is required")
        page.fill("#key-input", key)
        page.click("#key-save")
        page.click("#live-start")
        expect(page.locator("#live")).to_have_attribute("data-state", "live")
        settle(page, 2)
