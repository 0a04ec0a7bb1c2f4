"""Debian's Chromium driven by Playwright, with pusher-js served from npm in the CDN's place.

Nothing a page asks for leaves the machine: the CDN's pusher-js is answered from
tests/js/node_modules (the same version the console pins), and any other request to a host
that is not loopback is aborted and recorded, so a test can assert there was none.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from leadrelay.web.console import PUSHER_JS_CDN, PUSHER_JS_ENCRYPTED_CDN

REPO = Path(__file__).resolve().parents[2]
NPM_BUILDS = REPO / "tests" / "js" / "node_modules" / "pusher-js" / "dist" / "web"
PUSHER_JS = NPM_BUILDS / "pusher.min.js"
# the CDN's files, answered from npm's package of the same version
CDN_FILES = {
    PUSHER_JS_CDN: PUSHER_JS,
    PUSHER_JS_ENCRYPTED_CDN: NPM_BUILDS / "pusher-with-encryption.min.js",
}
CHROMIUM = Path("/usr/bin/chromium")
# what headless Chromium needs on these machines: without the background-networking flags it
# keeps dialling hosts it cannot reach
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None (scripts/test installs both)."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing: scripts/test installs Debian's chromium when run as root"
    if not PUSHER_JS.exists():
        return f"{PUSHER_JS} is missing: scripts/install-js-clients installs it"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "the playwright package is missing: pip install -e '.[test]'"
    return None


@dataclass
class Browser:
    context: Any
    outside: list[str] = field(default_factory=list)  # requests aborted: not loopback
    console: list[str] = field(default_factory=list)  # every page's console lines
    dialogs: list[str] = field(default_factory=list)  # alert/confirm/prompt that opened
    pages: list[Any] = field(default_factory=list)

    def new_page(self, width: int = 1280, height: int = 800) -> Any:
        page = self.context.new_page()
        page.set_viewport_size({"width": width, "height": height})
        page.on("console", lambda message: self.console.append(message.text))
        page.on("dialog", self._dialog)
        self.pages.append(page)
        return page

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def _route(self, route: Any) -> None:
        url = route.request.url
        if url in CDN_FILES:
            route.fulfill(
                path=str(CDN_FILES[url]),
                content_type="text/javascript",
                headers={"Access-Control-Allow-Origin": "*"},
            )
        elif urlsplit(url).hostname in LOOPBACK or url.startswith("data:"):
            route.continue_()
        else:
            self.outside.append(url)
            route.abort()


@contextmanager
def chromium() -> Iterator[Any]:
    """One Chromium process (Playwright gives it a fresh, temporary profile), closed afterwards."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        process = driver.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS, timeout=30_000
        )
        try:
            yield process
        finally:
            process.close()


@contextmanager
def fresh_context(process: Any) -> Iterator[Browser]:
    """A new browser context of its own (no storage shared with any other), routed."""
    context = process.new_context()
    context.set_default_timeout(10_000)
    browser = Browser(context)
    context.route("**/*", browser._route)
    try:
        yield browser
    finally:
        context.close()


def keep_artifacts(browser: Browser, artifacts: Path, test_name: str) -> list[Path]:
    """A screenshot of every open page and the pages' console lines, for a failed test."""
    artifacts.mkdir(parents=True, exist_ok=True)
    kept = []
    for n, page in enumerate(browser.pages):
        path = artifacts / f"{test_name}-{n}.png"
        try:
            page.screenshot(path=str(path), full_page=True, timeout=5000)
        except Exception as exc:  # a crashed page: say so, the test's own error stays
            path = path.with_suffix(".txt")
            path.write_text(f"no screenshot: {exc}\n")
        kept.append(path)
    console = artifacts / f"{test_name}-console.txt"
    console.write_text("\n".join(browser.console) + "\n")
    return [*kept, console]


def sign_in(page: Any, url: str, token: str) -> None:
    page.goto(url)
    page.fill("#token", token)
    page.press("#token", "Enter")


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"{what}: not within {timeout:g} s")


def skip_without_browser() -> pytest.MarkDecorator:
    reason = browser_missing()
    return pytest.mark.skipif(reason is not None, reason=reason or "")
