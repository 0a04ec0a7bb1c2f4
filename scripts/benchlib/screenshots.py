"""The console screenshots in docs/console.md, from a real run (see scripts/screenshots)."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx

from benchlib.console_page import CHROMIUM, FLAGS, PUSHER_JS
from benchlib.procs import REPO_ROOT
from benchlib.soketi import start_soketi
from benchlib.subject import Leadrelay, run_cli

OUT = REPO_ROOT / "docs" / "img"
# made-up people and firms, as a CRM would send them: (name, email, phone, source, provider)
LEADS = [
    ("Jane Doe", "jane.doe@example.com", "+1 555 0100", "website", 1),
    ("Omar Haddad", "omar@example.net", None, "google-ads", 2),
    ("Mei Lin", None, "+1 555 0142", "referral", 1),
    ("Carlos Ruiz", "carlos.ruiz@example.org", "+1 555 0178", "website", None),
    ("Ada Lovelace", "ada@example.com", None, "crm", 3),
    ("Priya Natarajan", "priya@example.in", "+91 98765 43210", "website", 2),
    ("Lars Jensen", "lars@example.dk", None, "referral", 1),
    ("Fatima Zahra", None, "+212 600 112233", "google-ads", None),
]
# while the pages watch
LIVE = [
    ("Kenji Watanabe", "kenji@example.jp", "+81 90 1234 5678", "website", 1),
    ("Sofia Rossi", "sofia.rossi@example.it", None, "referral", None),
]
PROVIDERS = ("Acme Plumbing", "Bolt Electric", "Cedar Roofing")


WAIT_MS = 20_000


def row(page: Any, lead_id: int) -> Any:
    return page.locator(f"[data-testid=lead-{lead_id}]")


def shows(page: Any, selector: str, text: str) -> None:
    """Wait until the element shows `text` (its text, or a form control's value)."""
    page.wait_for_function(
        """([selector, text]) => {
            const node = document.querySelector(selector);
            return node !== null && (node.value ?? node.textContent).trim() === text;
        }""",
        arg=[selector, text],
        timeout=WAIT_MS,
    )


def stats_read(url: str, role: str) -> Any:
    """A response of the figures of the day (read again after a provider's first contact)."""
    return lambda response: response.url.startswith(f"{url}/api/{role}/stats")


def page_for(context: Any, url: str, token: str, width: int, height: int) -> Any:
    page = context.new_page()
    page.set_viewport_size({"width": width, "height": height})
    page.goto(url)
    page.fill("#token", token)
    page.press("#token", "Enter")
    page.wait_for_selector("#connection[data-connection=connected]", timeout=WAIT_MS)
    page.locator("[data-testid=glance-statuses]").wait_for(timeout=WAIT_MS)
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
            json.loads(run_cli("providers", "add", name, "--json", db=lr.db)) for name in PROVIDERS
        ]
        api = httpx.Client(base_url=lr.url, headers={"Authorization": f"Bearer {lr.token}"})
        as_provider = [
            httpx.Client(base_url=lr.url, headers={"Authorization": f"Bearer {p['token']}"})
            for p in providers
        ]

        def post(leads: list[tuple[Any, ...]]) -> list[int]:
            ids = []
            for name, email, phone, source, provider in leads:
                body = {"name": name, "email": email, "phone": phone, "source": source}
                body["provider_id"] = providers[provider - 1]["id"] if provider else None
                ids.append(api.post("/api/leads", json=body).raise_for_status().json()["id"])
            return ids

        ids = post(LEADS)
        # a morning's work: providers call (lead, by provider n, new status), one lead moves
        # to another provider, one is lost
        for lead, provider, status in [
            (0, 0, "contacted"),
            (1, 1, "qualified"),
            (4, 2, "contacted"),
        ]:
            as_provider[provider].patch(f"/api/provider/leads/{ids[lead]}", json={"status": status})
        api.patch(f"/api/admin/leads/{ids[2]}", json={"provider_id": providers[1]["id"]})
        as_provider[1].patch(f"/api/provider/leads/{ids[2]}", json={"status": "contacted"})
        api.patch(f"/api/admin/leads/{ids[6]}", json={"status": "lost"})

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
            admin = page_for(context, lr.url, lr.token, 1280, 1000)
            admin_narrow = page_for(context, lr.url, lr.token, 375, 812)
            acme = page_for(context, lr.url, providers[0]["token"], 1280, 860)
            narrow = page_for(context, lr.url, providers[0]["token"], 375, 812)
            # live while the pages watch: two new leads, and a provider's call
            live = post(LIVE)
            with ExitStack() as reads:  # each page reads its figures again after the call
                for page, role in [(admin, "admin"), (admin_narrow, "admin"), (acme, "provider")]:
                    reads.enter_context(page.expect_response(stats_read(lr.url, role)))
                as_provider[0].patch(f"/api/provider/leads/{ids[0]}", json={"status": "qualified"})
            # what the pictures show has landed: the new rows, the day's figures, the bells
            everyone = len(LEADS) + len(LIVE)
            for page in (admin, admin_narrow):
                for lead_id in live:
                    row(page, lead_id).wait_for(timeout=WAIT_MS)
                shows(page, "[data-testid=glance-statuses] .big", str(everyone))
                shows(page, "[data-testid=bell-count]", "3")
            for page in (acme, narrow):
                row(page, live[0]).wait_for(timeout=WAIT_MS)
                shows(page, "[data-testid=bell-count]", "2")
                shows(page, f"[data-testid=lead-{ids[0]}] select[data-field=status]", "qualified")
            admin.screenshot(path=str(OUT / "console-admin.png"))
            admin_narrow.screenshot(path=str(OUT / "console-admin-375.png"), full_page=True)
            acme.screenshot(path=str(OUT / "console-provider.png"))
            narrow.screenshot(path=str(OUT / "console-provider-375.png"), full_page=True)
            # Mei Lin's panel: created for Acme, reassigned to Bolt, contacted by Bolt
            row(admin, ids[2]).locator("[data-field=name]").click()
            admin.wait_for_function(
                "() => document.querySelectorAll("
                "'#panel .events li .delivery[data-state=delivered]').length === 3",
                timeout=WAIT_MS,
            )
            admin.screenshot(path=str(OUT / "console-panel.png"))
            context.close()
        print(f"screenshots: wrote {', '.join(p.name for p in sorted(OUT.glob('console-*.png')))}")
        return 0
    finally:
        lr.stop()
        soketi.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
