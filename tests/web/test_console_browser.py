"""The web console in real Chromium with the real pusher-js, on a real `leadrelay serve` and soketi.

pusher-js is npm's copy of the pinned version, served in place of Pusher's CDN by Playwright's
request routing; any other request that would leave the machine is aborted and fails the test.
A failing test keeps a screenshot of every page and the pages' console under
<pytest's base temp>/browser-artifacts/.
"""

from __future__ import annotations

import base64
import os
import secrets
import sqlite3
import time
from pathlib import Path

import pytest

from support.browser import Browser, browser_missing, sign_in, wait_for
from support.console import (
    HOSTILE,
    Daemon,
    bell_count,
    confirm,
    notes,
    row,
    signed_in,
    start_daemon,
)
from support.serve import cli, cli_json
from support.soketi import Soketi

pytestmark = [pytest.mark.soketi, pytest.mark.timeout(90)]

if browser_missing() and not os.environ.get("CI"):
    pytestmark.append(pytest.mark.skip(reason=browser_missing() or ""))


def test_console_admin_sees_a_new_lead_and_the_bell_within_a_second(
    daemon: Daemon, browser: Browser
) -> None:
    page = signed_in(browser, daemon, daemon.serve.admin_token or "")
    assert "Pusher connected" in browser.console
    before = bell_count(page)
    posted = time.monotonic()
    lead = daemon.post_lead("Jane Doe", daemon.acme)
    row(page, lead["id"]).wait_for(timeout=1000)
    wait_for(lambda: bell_count(page) == before + 1, 1.0 - (time.monotonic() - posted), "bell")
    assert time.monotonic() - posted < 1.0
    assert row(page, lead["id"]).locator("[data-field=name]").inner_text() == "Jane Doe"
    assert "fresh" in (row(page, lead["id"]).get_attribute("class") or "")
    page.click(".bell-button")
    assert notes(page)[0] == "New lead Jane Doe → Acme Plumbing"
    page.click("text=Mark all read")
    assert bell_count(page) == 0
    # a change from the row goes through PATCH and comes back as an event, in words
    row(page, lead["id"]).locator("select[data-field=status]").select_option("contacted")
    confirm(page, f"Change Lead {lead['id']} (Jane Doe) from new to contacted?")
    wait_for(lambda: bell_count(page) == 1, 2, "the status change in the bell")
    assert notes(page)[0] == f"Lead {lead['id']} (Jane Doe): new → contacted, by an admin"
    stored = daemon.admin.get(f"/api/admin/leads/{lead['id']}").json()
    assert stored["status"] == "contacted"


def test_console_provider_sees_only_its_own_leads_and_its_changes_reach_the_admin(
    daemon: Daemon, browser: Browser
) -> None:
    admin = signed_in(browser, daemon, daemon.serve.admin_token or "")
    provider = signed_in(browser, daemon, daemon.acme["token"])
    assert provider.locator("#who").inner_text().startswith("Acme Plumbing")
    assert provider.locator("#outbox").is_hidden()
    theirs = daemon.post_lead("Bolt's lead", daemon.bolt)
    mine = daemon.post_lead("Acme's lead", daemon.acme)
    row(provider, mine["id"]).wait_for(timeout=2000)
    row(admin, theirs["id"]).wait_for(timeout=2000)
    wait_for(lambda: bell_count(provider) == 1, 2, "the provider's bell")
    assert row(provider, theirs["id"]).count() == 0
    provider.click(".bell-button")
    assert notes(provider) == ["New lead Acme's lead → Acme Plumbing"]
    assert "Bolt" not in provider.locator("body").inner_text()
    # the provider changes its lead's status from the row; the admin view follows
    row(provider, mine["id"]).locator("select[data-field=status]").select_option("qualified")
    confirm(provider)
    admin_status = row(admin, mine["id"]).locator("select[data-field=status]")
    wait_for(lambda: admin_status.input_value() == "qualified", 2, "the admin's row")
    admin.click(".bell-button")
    wait_for(
        lambda: (
            f"Lead {mine['id']} (Acme's lead): new → qualified, by Acme Plumbing" in notes(admin)
        ),
        2,
        "the admin's bell",
    )
    time.sleep(0.3)  # anything of Bolt's that was going to reach the provider has by now
    assert row(provider, theirs["id"]).count() == 0 and bell_count(provider) <= 2


def test_console_shows_what_was_posted_while_soketi_was_down_exactly_once(
    tmp_path: Path, browser: Browser
) -> None:
    with Soketi() as own:
        with start_daemon(tmp_path, own) as daemon:
            page = signed_in(browser, daemon, daemon.serve.admin_token or "")
            own.stop()
            page.wait_for_selector("#connection[data-connection=reconnecting]", timeout=5000)
            leads = [daemon.post_lead(f"Offline {n}", daemon.acme) for n in range(3)]
            own.start()
            started = time.monotonic()
            for lead in leads:
                row(page, lead["id"]).wait_for(timeout=15000)
            back = time.monotonic() - started
            page.wait_for_selector("#connection[data-connection=connected]")
            wait_for(lambda: bell_count(page) == 3, 3, "three notifications")
            time.sleep(1.0)  # the relay delivers the three once soketi is back: none may repeat
            assert bell_count(page) == 3
            page.click(".bell-button")
            assert sorted(notes(page)) == sorted(
                f"New lead Offline {n} → Acme Plumbing" for n in range(3)
            )
            for lead in leads:
                assert row(page, lead["id"]).count() == 1
            assert browser.console.count("Pusher connected") >= 2
            assert back < 10, f"the console took {back:.1f} s to come back"


def test_console_renders_a_hostile_name_as_text(daemon: Daemon, browser: Browser) -> None:
    page = signed_in(browser, daemon, daemon.serve.admin_token or "")
    lead = daemon.post_lead(HOSTILE, daemon.acme)
    name = row(page, lead["id"]).locator("[data-field=name]")
    name.wait_for(timeout=2000)
    assert name.inner_text() == HOSTILE
    page.click(".bell-button")
    wait_for(lambda: f"New lead {HOSTILE} → Acme Plumbing" in notes(page), 2, "the note")
    assert page.locator("img").count() == 0
    page.reload()  # the list API's copy too
    row(page, lead["id"]).wait_for()
    assert row(page, lead["id"]).locator("[data-field=name]").inner_text() == HOSTILE
    time.sleep(0.3)
    assert browser.dialogs == [] and page.locator("img").count() == 0


def test_console_wrong_token_is_refused_and_sign_out_forgets(
    daemon: Daemon, browser: Browser
) -> None:
    page = browser.new_page()
    sign_in(page, daemon.serve.url, "lr_not-a-real-token")
    message = page.locator("#signin-message")
    wait_for(lambda: "wrong or has been revoked" in message.inner_text(), 5, "the message")
    assert page.evaluate("sessionStorage.length") == 0
    assert "lr_not-a-real-token" not in page.url
    page.fill("#token", daemon.serve.admin_token or "")
    page.press("#token", "Enter")
    page.wait_for_selector("#connection[data-connection=connected]")
    assert page.evaluate("document.cookie") == ""
    page.reload()  # the token lives in this tab's sessionStorage: still signed in
    page.wait_for_selector("#connection[data-connection=connected]")
    page.click("#sign-out")
    assert page.locator("#signin").is_visible()
    assert page.evaluate("sessionStorage.length") == 0
    page.reload()
    assert page.locator("#signin").is_visible()


def test_console_admin_view_fits_375_px(daemon: Daemon, browser: Browser) -> None:
    page = signed_in(browser, daemon, daemon.serve.admin_token or "", width=375)
    page.locator("[data-testid=outbox-pending]").wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    page.click(".bell-button")
    box = page.locator("#bell-panel").bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375


def test_console_works_at_375_px_and_by_keyboard(daemon: Daemon, browser: Browser) -> None:
    page = browser.new_page(width=375, height=740)
    page.goto(daemon.serve.url)
    # the token field has the focus: sign in with the keyboard alone
    wait_for(lambda: page.evaluate("document.activeElement.id") == "token", 5, "focus")
    page.keyboard.type(daemon.acme["token"])
    page.keyboard.press("Enter")
    page.wait_for_selector("#connection[data-connection=connected]")
    # signed in, the search box has the focus: type to find a lead
    wait_for(lambda: page.evaluate("document.activeElement.id") == "search", 5, "search focus")
    lead = daemon.post_lead("Narrow Screen", daemon.acme)
    row(page, lead["id"]).wait_for(timeout=2000)
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    for _ in range(30):  # Shift+Tab reaches the bell, up in the header
        page.keyboard.press("Shift+Tab")
        if page.evaluate("document.activeElement.className") == "bell-button":
            break
    assert page.evaluate("document.activeElement.className") == "bell-button"
    page.keyboard.press("Enter")
    assert page.locator("#bell-panel").is_visible()
    page.keyboard.press("Escape")
    assert page.locator("#bell-panel").is_hidden()
    assert page.evaluate("document.activeElement.className") == "bell-button"


def test_console_follows_encrypted_channels_without_personal_data(
    tmp_path: Path, soketi: Soketi, browser: Browser
) -> None:
    """encrypted_channels and broadcast_personal_data = false: the page loads pusher-js's
    encryption build, listens on private-encrypted-*, and reads the names the events leave out
    from the API."""
    env = {"LEADRELAY_ENCRYPTED_CHANNELS": "true", "LEADRELAY_BROADCAST_PERSONAL_DATA": "false"}
    master_key = base64.b64encode(secrets.token_bytes(32)).decode()
    with start_daemon(tmp_path, soketi, env, master_key) as daemon:
        page = browser.new_page()
        sign_in(page, daemon.serve.url, daemon.serve.admin_token or "")
        page.wait_for_selector("#connection[data-connection=connected]")
        assert "pusher-with-encryption.min.js" in page.content()
        provider = signed_in(browser, daemon, daemon.acme["token"])
        lead = daemon.post_lead("Quiet Customer", daemon.acme)
        for view in (page, provider):
            name = row(view, lead["id"]).locator("[data-field=name]")
            name.wait_for(timeout=3000)
            assert name.inner_text() == "Quiet Customer"
        row(provider, lead["id"]).locator("select[data-field=status]").select_option("lost")
        confirm(provider)
        status = row(page, lead["id"]).locator("select[data-field=status]")
        wait_for(lambda: status.input_value() == "lost", 3, "the admin's row")
        assert row(page, lead["id"]).locator("[data-field=name]").inner_text() == "Quiet Customer"
        page.click(".bell-button")
        assert "New lead Quiet Customer → Acme Plumbing" in notes(page)


def test_console_outbox_panel_retries_a_dead_letter_and_an_erased_lead_reads_so(
    daemon: Daemon, browser: Browser
) -> None:
    lead = daemon.post_lead("Soon Erased", daemon.bolt)
    events = daemon.admin.get("/api/admin/events", params={"lead_id": lead["id"]}).json()
    (event,) = events["events"]
    wait_for(lambda: daemon.admin.get("/api/admin/outbox").json()["pending"] == 0, 5, "delivery")
    with sqlite3.connect(daemon.serve.db) as conn:
        conn.execute(
            "UPDATE events SET state = 'dead', last_error = 'HTTP 413: too large' WHERE id = ?",
            (event["id"],),
        )
    page = signed_in(browser, daemon, daemon.serve.admin_token or "")
    dead = page.locator(f"[data-testid=dead-{event['id']}]")
    dead.wait_for(timeout=3000)
    assert "HTTP 413: too large" in dead.inner_text()
    relay = page.locator("[data-testid=outbox-relay]").inner_text()
    assert relay.startswith("relaying, held by serve pid"), relay
    dead.get_by_role("button", name=f"Retry event {event['id']}").click()
    dead.wait_for(state="detached", timeout=5000)
    wait_for(lambda: daemon.admin.get("/api/admin/outbox").json()["dead"] == 0, 5, "the retry")
    # erasure blanks the name: the row says so instead of showing nothing
    assert daemon.admin.delete(f"/api/admin/leads/{lead['id']}").status_code == 200
    page.reload()
    name = row(page, lead["id"]).locator("[data-field=name]")
    name.wait_for()
    assert name.inner_text() == "(erased)"


def test_console_says_when_the_relay_is_paused_and_why(
    tmp_path: Path, soketi: Soketi, browser: Browser
) -> None:
    with start_daemon(tmp_path, soketi) as daemon:
        page = signed_in(browser, daemon, daemon.serve.admin_token or "")
        connection = page.locator("#connection")
        assert connection.get_attribute("data-state") == "ok"
        cli(daemon.serve.db, "pusher", "set", "--secret", "not-the-secret")
        # the relay follows the change within a second or so: a lead sent before that still
        # goes out, so keep sending until one meets the wrong secret
        deadline = time.monotonic() + 30
        while "relay paused:" not in connection.inner_text():
            assert time.monotonic() < deadline, "the console never said the relay paused"
            daemon.post_lead("Waits In The Outbox")
            time.sleep(1.5)
        assert connection.get_attribute("data-state") == "bad"
        assert connection.inner_text().startswith("Connected · relay paused: ")
        cli(daemon.serve.db, "pusher", "set", "--secret", soketi.secret)
        wait_for(lambda: "relay paused" not in connection.inner_text(), 40, "the resumed relay")


def test_console_signs_out_a_token_revoked_while_in_use(daemon: Daemon, browser: Browser) -> None:
    token = cli_json(daemon.serve.db, "tokens", "create", "--admin")["token"]
    page = signed_in(browser, daemon, token)
    cli(daemon.serve.db, "tokens", "revoke", token[:10])
    # a revoked token keeps working up to 5 s in the daemon's cache; the console's next call
    # after that (the outbox panel reads every 5 s) is refused: it says so, forgets the token
    page.wait_for_selector("#signin", state="visible", timeout=20_000)
    assert "no longer accepted" in page.locator("#signin-message").inner_text()
    assert page.evaluate("sessionStorage.length") == 0
