"""A dashboard on another origin, in real Chromium: Laravel Echo and pusher-js (npm's web
builds) on a page served from localhost call a daemon on 127.0.0.1 with a bearer token.
With the page's origin in `cors_origins` the browser lets it read /broadcasting/config and
authorise a private channel; without it, the browser itself refuses."""

from __future__ import annotations

import functools
import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.browser import browser_missing, chromium, fresh_context, wait_for
from support.serve import Serve, cli_json, point_at_soketi
from support.soketi import Soketi

pytestmark = [pytest.mark.soketi, pytest.mark.timeout(90)]

if browser_missing() and not os.environ.get("CI"):
    pytestmark.append(pytest.mark.skip(reason=browser_missing() or ""))

NODE_MODULES = Path(__file__).resolve().parents[1] / "js" / "node_modules"
PAGE = """<!doctype html>
<meta charset="utf-8">
<script src="pusher.min.js"></script>
<script src="echo.iife.js"></script>
<script>
window.heard = [];
window.failure = null;
async function start(api, token) {
  const headers = { Authorization: `Bearer ${token}` };
  try {
    const config = await (await fetch(`${api}/broadcasting/config`, { headers })).json();
    const echo = new Echo.default({
      broadcaster: 'pusher', Pusher,
      key: config.key, cluster: config.cluster,
      wsHost: config.ws_host, wsPort: config.ws_port, wssPort: config.ws_port,
      forceTLS: config.tls, enabledTransports: ['ws', 'wss'],
      authEndpoint: `${api}/broadcasting/auth`,
      auth: { headers },
    });
    await new Promise((resolve, reject) => {
      echo.private('provider.7')
        .listen('.lead.assigned', (e) => window.heard.push(e.lead.id))
        .subscribed(resolve)
        .error((error) => reject(new Error(`auth refused: ${JSON.stringify(error)}`)));
    });
    return 'subscribed';
  } catch (error) {
    window.failure = String(error);
    return window.failure;
  }
}
</script>
"""


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def dashboard(root: Path) -> Iterator[str]:
    """The page and npm's builds, served from http://localhost:PORT (another origin)."""
    root.mkdir()
    (root / "index.html").write_text(PAGE)
    shutil.copy(NODE_MODULES / "pusher-js" / "dist" / "web" / "pusher.min.js", root)
    shutil.copy(NODE_MODULES / "laravel-echo" / "dist" / "echo.iife.js", root)
    handler = functools.partial(Quiet, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("allowed", [True, False], ids=["allowed", "not-allowed"])
def test_cors_browser_dashboard_on_another_origin(
    tmp_path: Path, soketi: Soketi, allowed: bool
) -> None:
    db = tmp_path / "cors.db"
    with dashboard(tmp_path / "site") as origin:
        env = {"LEADRELAY_CORS_ORIGINS": origin if allowed else "https://someone.else.example"}
        with Serve(db, env=env) as serve:
            point_at_soketi(db, soketi)
            seven = cli_json(db, "providers", "add", "Seven", "--id", "7")
            with chromium() as process, fresh_context(process) as browser:
                page = browser.new_page()
                page.goto(f"{origin}/index.html")
                outcome = page.evaluate(
                    "([api, token]) => start(api, token)", [serve.url, seven["token"]]
                )
                if not allowed:
                    # the browser refused to hand the page the answer: no ACAO for this origin
                    assert outcome.startswith("TypeError"), outcome
                    assert any("CORS" in line for line in browser.console), browser.console
                    return
                assert outcome == "subscribed", (outcome, browser.console)
                response = httpx.post(
                    f"{serve.url}/api/leads",
                    json={"name": "Across origins", "provider_id": 7},
                    headers=serve.auth(),
                )
                lead_id = response.json()["id"]
                wait_for(lambda: lead_id in page.evaluate("window.heard"), 5, "the event")
                assert browser.outside == []
