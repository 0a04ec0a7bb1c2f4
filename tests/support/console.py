"""The console's browser tests' shared parts: a real daemon on a real soketi with two
providers, one Chromium for a module, a fresh context a test (routed, checked for requests
that leave the machine and for anything the Content-Security-Policy refused), and what the
tests read off the page."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.browser import Browser, chromium, fresh_context, keep_artifacts, sign_in, wait_for
from support.serve import Serve, cli, cli_json, point_at_soketi
from support.soketi import Soketi

HOSTILE = "<img src=x onerror=alert(1)>"
MARKUP = "[bold]x[/bold]"


class Daemon:
    """A real daemon on a real soketi, with an admin client and two providers."""

    def __init__(self, serve: Serve, soketi: Soketi) -> None:
        self.serve = serve
        self.soketi = soketi
        self.admin = httpx.Client(base_url=serve.url, headers=serve.auth(), timeout=10)
        self.acme = cli_json(serve.db, "providers", "add", "Acme Plumbing")
        self.bolt = cli_json(serve.db, "providers", "add", "Bolt Electric")

    def post_lead(self, name: str, provider: dict[str, Any] | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"name": name}
        if provider is not None:
            body["provider_id"] = provider["id"]
        response = self.admin.post("/api/leads", json=body)
        assert response.status_code == 201, response.text
        lead: dict[str, Any] = response.json()
        return lead


@contextmanager
def start_daemon(
    tmp: Path, soketi: Soketi, env: dict[str, str] | None = None, master_key: str | None = None
) -> Iterator[Daemon]:
    db = tmp / "leadrelay.db"
    with Serve(db, env=env) as serve:
        point_at_soketi(db, soketi, enable=False)
        if master_key is not None:
            cli(db, "pusher", "set", "--encryption-master-key", "-", input=master_key + "\n")
        cli(db, "pusher", "enable")
        daemon = Daemon(serve, soketi)
        try:
            yield daemon
        finally:
            daemon.admin.close()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory, soketi: Soketi) -> Iterator[Daemon]:
    with start_daemon(tmp_path_factory.mktemp("console"), soketi) as started:
        yield started


@pytest.fixture(scope="module")
def chromium_process() -> Iterator[Any]:
    with chromium() as process:
        yield process


@pytest.fixture
def browser(
    request: pytest.FixtureRequest,
    chromium_process: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Browser]:
    failed_before = request.session.testsfailed
    with fresh_context(chromium_process) as opened:
        yield opened
        # the call's report is logged before teardown: a failed test has been counted by now
        if request.session.testsfailed > failed_before:
            artifacts = tmp_path_factory.getbasetemp() / "browser-artifacts"
            kept = keep_artifacts(opened, artifacts, request.node.name)
            print(f"kept for the failed test: {', '.join(map(str, kept))}")
    assert opened.outside == [], f"the page tried to leave the machine: {opened.outside}"
    # the Content-Security-Policy refused nothing the console needs (Chrome logs each refusal)
    refused = [line for line in opened.console if "Content Security Policy" in line]
    assert refused == [], refused


def signed_in(browser: Browser, daemon: Daemon, token: str, width: int = 1280) -> Any:
    page = browser.new_page(width=width)
    sign_in(page, daemon.serve.url, token)
    page.wait_for_selector("#connection[data-connection=connected]")
    return page


def bell_count(page: Any) -> int:
    count = page.locator("[data-testid=bell-count]")
    return 0 if count.is_hidden() else int(count.inner_text())


def notes(page: Any) -> list[str]:
    return page.locator(".bell-list li .note-text").all_inner_texts()


def row(page: Any, lead_id: int) -> Any:
    return page.locator(f"[data-testid=lead-{lead_id}]")


def confirm(page: Any, expect: str | None = None) -> str:
    """Say yes in the console's "are you sure" dialog; returns what it asked."""
    dialog = page.locator("#confirm")
    dialog.wait_for(state="visible")
    asked = str(dialog.locator("h2").inner_text())
    if expect is not None:
        assert asked == expect, asked
    dialog.get_by_role("button", name="Yes, do it").click()
    dialog.wait_for(state="hidden")
    return asked


def settle(page: Any, seconds: float = 0.3) -> None:
    """Let what is in flight land (only where a test checks that nothing more happens)."""
    time.sleep(seconds)
    page.evaluate("1")


__all__ = ["HOSTILE", "MARKUP", "Browser", "wait_for", "sign_in"]
