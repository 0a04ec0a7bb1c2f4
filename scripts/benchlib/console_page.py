"""The web console in headless Chromium, run as its own process, logging when the bell rings.

`python -m benchlib.console_page --url URL --token TOKEN --out FILE` signs in to the console at
URL (pusher-js served from npm's copy in place of Pusher's CDN, nothing else leaves the
machine), prints READY once the page is connected, then records for every lead named in a new
bell notification the CLOCK_MONOTONIC ns at which the page's DOM showed it. Commands on stdin:
`expect N` (finish once N leads rang), `stop`. It writes {"received": [[name, "", ns], ...],
"clock_error_ms": ...} to FILE and prints DONE.
"""

from __future__ import annotations

import argparse
import json
import select
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from benchlib.procs import REPO_ROOT

PUSHER_JS = (
    REPO_ROOT / "tests" / "js" / "node_modules" / "pusher-js" / "dist" / "web" / "pusher.min.js"
)
CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# first time (performance.timeOrigin + now(), ms since the epoch) each note's text was in the DOM
OBSERVER = """() => {
  window.__rang = new Map();
  const bell = document.getElementById("bell");
  new MutationObserver(() => {
    const at = performance.timeOrigin + performance.now();
    for (const node of bell.querySelectorAll(".note-text")) {
      if (!window.__rang.has(node.textContent)) window.__rang.set(node.textContent, at);
    }
  }).observe(bell, { childList: true, subtree: true, characterData: true });
}"""


def clock_offset(page: Any) -> tuple[float, float]:
    """(page epoch ms − CLOCK_MONOTONIC ms, error bound ms), from the tightest of a few probes."""
    best: tuple[float, float] | None = None
    for _ in range(7):
        before = time.monotonic_ns()
        page_ms = page.evaluate("performance.timeOrigin + performance.now()")
        after = time.monotonic_ns()
        half = (after - before) / 2e6
        mono_ms = (before + after) / 2e6
        offset = page_ms - mono_ms
        if best is None or half < best[1]:
            best = (offset, half)
    assert best is not None
    return best


def lead_name(note: str) -> str | None:
    if not note.startswith("New lead ") or " → " not in note:
        return None
    return note.removeprefix("New lead ").rsplit(" → ", 1)[0]


def wait_command(timeout: float) -> str | None:
    ready, _, _ = select.select([sys.stdin], [], [], timeout)
    if not ready:
        return None
    return sys.stdin.readline().strip() or "stop"


def run(args: argparse.Namespace) -> None:
    from playwright.sync_api import sync_playwright

    origin = urlsplit(args.url).hostname
    cdn = args.cdn

    def route(request_route: Any) -> None:
        url = request_route.request.url
        if url == cdn:
            request_route.fulfill(
                path=str(PUSHER_JS),
                content_type="text/javascript",
                headers={"Access-Control-Allow-Origin": "*"},
            )
        elif urlsplit(url).hostname == origin:
            request_route.continue_()
        else:
            request_route.abort()

    with tempfile.TemporaryDirectory(prefix="bench-chromium-") as profile, sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=FLAGS, timeout=30_000
        )
        context.route("**/*", route)
        page = context.new_page()
        page.goto(args.url)
        page.fill("#token", args.token)
        page.press("#token", "Enter")
        page.wait_for_selector("#connection[data-connection=connected]", timeout=20_000)
        page.evaluate(OBSERVER)
        offset, error = clock_offset(page)
        print("READY", flush=True)
        expect: int | None = None
        deadline = time.monotonic() + args.max_seconds
        while time.monotonic() < deadline:
            command = wait_command(0.25)
            if command == "stop":
                break
            if command and command.startswith("expect "):
                expect = int(command.split()[1])
            if expect is not None and page.evaluate("window.__rang.size") >= expect:
                break
        rang = page.evaluate("[...window.__rang.entries()]")
        context.close()
    received = []
    for note, at_ms in rang:
        name = lead_name(note)
        if name is not None:
            received.append([name, "", int((at_ms - offset) * 1e6)])
    Path(args.out).write_text(
        json.dumps({"received": received, "other_frames": 0, "clock_error_ms": error})
    )
    print("DONE", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--cdn", required=True, help="the pusher-js URL the page loads")
    parser.add_argument("--out", required=True)
    parser.add_argument("--max-seconds", type=float, default=300)
    run(parser.parse_args())


if __name__ == "__main__":
    main()
