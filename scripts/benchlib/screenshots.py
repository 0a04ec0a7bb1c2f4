"""The console screenshots in docs/console.md, from a real run (see scripts/screenshots)."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from benchlib.console_page import CHROMIUM, FLAGS, PUSHER_JS
from benchlib.procs import REPO_ROOT
from benchlib.soketi import start_soketi
from benchlib.subject import Leadrelay, run_cli

OUT = REPO_ROOT / "docs" / "img"
# made-up people and firms, as a CRM would send them
LEADS = [
    ("Jane Doe", "jane.doe@example.com", "+1 555 0100", "website", 1),
    ("Omar Haddad", "omar@example.net", None, "google-ads", 2),
    ("Mei Lin", None, "+1 555 0142", "referral", 1),
    ("Carlos Ruiz", "carlos.ruiz@example.org", "+1 555 0178", "website", None),
    ("Ada Lovelace", "ada@example.com", None, "crm", 1),
]


def page_for(context: Any, url: str, token: str, width: int, height: int) -> Any:
    page = context.new_page()
    page.set_viewport_size({"width": width, "height": height})
    page.goto(url)
    page.fill("#token", token)
    page.press("#token", "Enter")
    page.wait_for_selector("#connection[data-connection=connected]", timeout=20_000)
    return page


def main() -> int:
    from playwright.sync_api import sync_playwright

    from leadrelay.web.console import PUSHER_JS_CDN

    work = Path(tempfile.mkdtemp(prefix="leadrelay-screens-"))
    soketi = start_soketi(work)
    lr = Leadrelay(work / "screens.db", soketi, work)
    try:
        lr.start("leadrelay-screens", relaying=True)
        providers = [
            json.loads(run_cli("providers", "add", name, "--json", db=lr.db))
            for name in ("Acme Plumbing", "Bolt Electric")
        ]
        api = httpx.Client(base_url=lr.url, headers={"Authorization": f"Bearer {lr.token}"})
        ids = []
        for name, email, phone, source, provider in LEADS[:3]:
            body = {"name": name, "email": email, "phone": phone, "source": source}
            body["provider_id"] = providers[provider - 1]["id"] if provider else None
            ids.append(api.post("/api/leads", json=body).raise_for_status().json()["id"])
        api.patch(f"/api/admin/leads/{ids[1]}", json={"status": "qualified"}).raise_for_status()

        def route(request_route: Any) -> None:
            if request_route.request.url == PUSHER_JS_CDN:
                request_route.fulfill(
                    path=str(PUSHER_JS),
                    content_type="text/javascript",
                    headers={"Access-Control-Allow-Origin": "*"},
                )
            elif request_route.request.url.startswith(lr.url):
                request_route.continue_()
            else:
                request_route.abort()

        OUT.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as profile, sync_playwright() as pw:
            context = pw.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, headless=True, args=FLAGS
            )
            context.route("**/*", route)
            admin = page_for(context, lr.url, lr.token, 1280, 820)
            acme = page_for(context, lr.url, providers[0]["token"], 1280, 640)
            narrow = page_for(context, lr.url, providers[0]["token"], 375, 760)
            # live while the pages watch: two new leads and a provider's status change
            for name, email, phone, source, provider in LEADS[3:]:
                body = {"name": name, "email": email, "phone": phone, "source": source}
                body["provider_id"] = providers[provider - 1]["id"] if provider else None
                api.post("/api/leads", json=body).raise_for_status()
            acme_api = httpx.Client(
                base_url=lr.url, headers={"Authorization": f"Bearer {providers[0]['token']}"}
            )
            acme_api.patch(f"/api/provider/leads/{ids[0]}", json={"status": "contacted"})
            time.sleep(1.0)
            admin.click(".bell-button")
            admin.screenshot(path=str(OUT / "console-admin.png"))
            acme.click(".bell-button")
            acme.screenshot(path=str(OUT / "console-provider.png"))
            narrow.screenshot(path=str(OUT / "console-provider-375.png"), full_page=True)
            context.close()
        print(f"screenshots: wrote {', '.join(p.name for p in sorted(OUT.glob('console-*.png')))}")
        return 0
    finally:
        lr.stop()
        soketi.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
