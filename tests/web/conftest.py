"""Fixtures of the web demo's tests: the demo model, the page served on 127.0.0.1 and headless Chromium.

The browser tests need Gradio (the `web` extra), Playwright (the `test` extra) and Debian's Chromium
(`apt-get install chromium`); without them they are skipped with the reason, or fail where
`GROUNDINGGPT_WEB_TESTS=required` (as in CI). Set `GROUNDINGGPT_WEB_SCREENSHOTS=DIR` to keep screenshots of the page.
"""

import importlib.util
import os
import shutil
import socket
from pathlib import Path

import pytest

import modeling_groundinggpt
from modeling_groundinggpt.demo import load_manifest
from modeling_groundinggpt.inference import GroundingGPT


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
# Every wait on the page is bounded; a CPU answer of the demo model takes about a second.
TIMEOUT_MS = 60_000
EXAMPLES = {example.name: example for example in load_manifest()}


def require(*modules: str, browser: bool = False) -> None:
    """Skip (or fail, where GROUNDINGGPT_WEB_TESTS=required) when a module or the browser is missing."""
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if browser and not os.path.isfile(CHROMIUM):
        missing.append(f"Chromium ({CHROMIUM}; apt-get install chromium)")
    if missing:
        reason = f"web demo test needs {', '.join(missing)} (pip install -e \".[test,web]\")"
        if os.environ.get("GROUNDINGGPT_WEB_TESTS") == "required":
            pytest.fail(reason)
        pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def demo_grounder() -> GroundingGPT:
    return GroundingGPT.from_pretrained(modeling_groundinggpt.DEMO_MODEL, device="cpu", dtype="float32")


@pytest.fixture(scope="session")
def server(demo_grounder):
    """The page of `groundinggpt web`, served in this process on 127.0.0.1; yields its URL."""
    require("gradio", "playwright", browser=True)
    from modeling_groundinggpt.web.app import build_demo, launch

    port = free_port()
    demo = launch(build_demo(demo_grounder), host="127.0.0.1", port=port, block=False)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        demo.close()


@pytest.fixture(scope="session")
def browser(server, tmp_path_factory):
    """Headless Debian Chromium with a new empty profile, driven by Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            tmp_path_factory.mktemp("chromium-profile"), executable_path=CHROMIUM, args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 1400},
        )
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def open_page(browser, server):
    """Opens the page in a new tab (a new Gradio session); requests leaving 127.0.0.1 are blocked and must not
    happen."""
    pages, external = [], []

    def route(request_route):
        if request_route.request.url.startswith(server):
            request_route.continue_()
        else:
            external.append(request_route.request.url)
            request_route.abort()

    def open_new():
        page = browser.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.route("**/*", route)
        page.goto(server)
        page.wait_for_selector("#question textarea")
        pages.append(page)
        return page

    yield open_new
    for page in pages:
        page.close()
    assert external == [], f"the page fetched from outside this machine: {external}"


@pytest.fixture
def screenshot():
    """Saves a full-page screenshot as DIR/NAME.png where GROUNDINGGPT_WEB_SCREENSHOTS=DIR is set."""
    folder = os.environ.get("GROUNDINGGPT_WEB_SCREENSHOTS")

    def take(page, name: str) -> None:
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)

    return take
