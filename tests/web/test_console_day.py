"""The console an admin runs the day on, in real Chromium with the real pusher-js, on a real
`leadrelay serve` and soketi: search while leads arrive, the day at a glance moving, a lead's
panel with its timeline and delivery (a real dead letter retried from it), confirm then
undo, the bell after a reload, a phone's cards, the provider's view, and the banner when
pusher-js cannot load. Hostile names stay text everywhere."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from leadrelay.web.console import PUSHER_JS_CDN
from support.browser import Browser, browser_missing, wait_for
from support.console import (
    HOSTILE,
    MARKUP,
    Daemon,
    bell_count,
    confirm,
    notes,
    row,
    settle,
    signed_in,
    start_daemon,
)
from support.soketi import Soketi

pytestmark = [pytest.mark.soketi, pytest.mark.timeout(120)]
if browser_missing() and not os.environ.get("CI"):
    pytestmark.append(pytest.mark.skip(reason=browser_missing() or ""))

# soketi refuses an event's data over half a kilobyte (HTTP 413): the relay dead-letters it
SMALL_PAYLOAD = {"SOKETI_EVENT_MAX_SIZE_IN_KB": "0.5"}


def shown(page: Any) -> list[str]:
    return page.locator("[data-testid=leads-table] [data-field=name]").all_inner_texts()


def provider_row(page: Any, name: str) -> dict[str, str]:
    cells = page.locator(f"[data-testid=glance-providers] tr:has-text('{name}') td")
    values = cells.all_inner_texts()
    keys = ["provider", "open", "waiting", "assigned_today", "speed"]
    return dict(zip(keys, values, strict=False))


def legend(page: Any, status: str) -> int:
    return int(
        page.locator(
            f"[data-testid=glance-statuses] li[data-status='{status}'] strong"
        ).inner_text()
    )


def stored(daemon: Daemon, lead: dict[str, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = daemon.admin.get(f"/api/admin/leads/{lead['id']}").json()
    return answer


def test_console_search_finds_leads_while_they_arrive(daemon: Daemon, browser: Browser) -> None:
    page = signed_in(browser, daemon, daemon.serve.admin_token or "")
    first = daemon.post_lead("Quentin Searchable", daemon.acme)
    other = daemon.post_lead("Somebody Else")
    row(page, other["id"]).wait_for()
    # the watching dot beside a provider has its legend
    assert page.locator("#legend").inner_text() == (
        "● watching now · ○ not watching (hover: last seen)"
    )
    page.fill("#search", "searchab")
    note = page.locator("#list-note")
    wait_for(lambda: "1 found for “searchab”" in note.inner_text(), 5, "the search's answer")
    assert shown(page) == ["Quentin Searchable"] and row(page, first["id"]).count() == 1
    # while the search is on, a new lead it finds comes in; one it does not find stays out
    late = daemon.post_lead("Rosa Searchable", daemon.bolt)
    daemon.post_lead("Not Matching")
    wait_for(lambda: shown(page) == ["Rosa Searchable", "Quentin Searchable"], 5, "the new match")
    settle(page, 0.8)
    assert shown(page) == ["Rosa Searchable", "Quentin Searchable"]
    page.fill("#search", "+1")  # digits find nothing here: none of these has a phone
    wait_for(lambda: shown(page) == [], 5, "no match")
    assert page.locator("#table .empty").inner_text() == "No lead matches “+1”."
    page.fill("#search", "")
    wait_for(lambda: "Not Matching" in shown(page), 5, "the whole list again")
    assert row(page, late["id"]).count() == 1


def test_console_stats_move_when_a_lead_is_assigned_and_contacted(
    tmp_path: Path, soketi: Soketi, browser: Browser
) -> None:
    with start_daemon(tmp_path, soketi) as daemon:
        page = signed_in(browser, daemon, daemon.serve.admin_token or "")
        page.locator("[data-testid=glance-providers]").wait_for()
        assert provider_row(page, "Acme Plumbing")["assigned_today"] == "0"
        assert page.locator("[data-testid=glance-unassigned] .big").inner_text() == "0"
        waiting = daemon.post_lead("Waits For Someone")
        wait_for(
            lambda: page.locator("[data-testid=glance-unassigned] .big").inner_text() == "1",
            5,
            "the unassigned count",
        )
        oldest = page.locator("[data-testid=glance-unassigned] .note").inner_text()
        assert re.fullmatch(r"oldest waits \d+ s", oldest), oldest  # and how long it waits
        # assigned: Acme has one more lead today, not yet contacted
        daemon.admin.patch(
            f"/api/admin/leads/{waiting['id']}", json={"provider_id": daemon.acme["id"]}
        )
        wait_for(
            lambda: provider_row(page, "Acme Plumbing")["assigned_today"] == "1",
            5,
            "assigned today",
        )
        acme = provider_row(page, "Acme Plumbing")
        assert (acme["open"], acme["waiting"], acme["speed"]) == ("1", "1", "—")
        assert page.locator("[data-testid=glance-unassigned] .big").inner_text() == "0"
        # contacted by Acme: its speed to contact appears, the lead no longer waits
        changed = httpx.patch(
            f"{daemon.serve.url}/api/provider/leads/{waiting['id']}",
            json={"status": "contacted"},
            headers={"Authorization": f"Bearer {daemon.acme['token']}"},
        )
        assert changed.status_code == 200
        wait_for(lambda: provider_row(page, "Acme Plumbing")["speed"].endswith(" s"), 8, "speed")
        assert provider_row(page, "Acme Plumbing")["waiting"] == "0"
        assert (legend(page, "new"), legend(page, "contacted")) == (0, 1)
        assert page.locator("[data-testid=glance-hours] .big").inner_text() == "1 today"
        assert (
            page.locator("[data-testid=glance-statuses] svg rect[data-status=contacted]").count()
            == 1
        )
        # the window of speed to contact is the admin's to pick: the figures are read for it
        with page.expect_response(lambda r: "window_days=30" in r.url) as answer:
            page.locator("[data-testid=glance-window]").select_option("30")
        assert answer.value.ok
        wait_for(lambda: provider_row(page, "Acme Plumbing")["speed"].endswith(" s"), 5, "30 days")
        assert page.locator("[data-testid=glance-window]").input_value() == "30"


def test_console_panel_shows_the_timeline_and_retries_a_dead_letter(
    tmp_path: Path, browser: Browser
) -> None:
    """soketi with a 0.5 KB limit refuses a large event (413): a real dead letter. With the
    limit raised, Retry in the lead's panel sends it."""
    with Soketi(extra_env=SMALL_PAYLOAD) as own, start_daemon(tmp_path, own) as daemon:
        page = signed_in(browser, daemon, daemon.serve.admin_token or "")
        big = {
            "name": "Big " + "B" * 190,
            "email": "big." + "b" * 180 + "@example.com",
            "source": "S" * 200,
            "phone": "+1 555 0100",
            "provider_id": daemon.acme["id"],
        }
        lead = daemon.admin.post("/api/leads", json=big).json()
        outbox = "/api/admin/outbox"
        wait_for(lambda: daemon.admin.get(outbox).json()["dead"] == 1, 15, "the dead letter")
        page.reload()  # its event never reached the page: soketi refused it
        row(page, lead["id"]).locator("[data-field=name]").click()
        panel = page.locator("#panel")
        panel.wait_for()
        assert panel.locator("h2").inner_text() == big["name"]
        dead = panel.locator(".events li").first.locator(".delivery")
        assert dead.get_attribute("data-state") == "dead"
        assert "413" in dead.inner_text() or "too large" in dead.inner_text().lower()
        # a change shows in the timeline with who made it
        httpx.patch(
            f"{daemon.serve.url}/api/provider/leads/{lead['id']}",
            json={"status": "contacted"},
            headers={"Authorization": f"Bearer {daemon.acme['token']}"},
        )
        wait_for(
            lambda: "new → contacted, by Acme Plumbing" in panel.locator(".events").inner_text(),
            5,
            "the provider's change in the timeline",
        )
        own.extra_env["SOKETI_EVENT_MAX_SIZE_IN_KB"] = "100"
        own.restart()
        event_id = panel.locator(".events li").first.get_attribute("data-event-id")
        panel.get_by_role("button", name=f"Retry event {event_id}").click()
        wait_for(lambda: dead.get_attribute("data-state") == "delivered", 20, "the retried event")
        assert dead.inner_text().startswith("delivered ")
        # erasure: asked, then shown in the timeline; the row says so too
        panel.get_by_role("button", name="Erase personal data…").click()
        confirm_button = page.locator("#confirm").get_by_role("button", name="Erase")
        confirm_button.click()
        wait_for(lambda: "Personal data erased" in panel.inner_text(), 5, "the erasure")
        assert panel.locator("h2").inner_text() == "(erased)"
        page.keyboard.press("Escape")
        assert panel.is_hidden()
        assert row(page, lead["id"]).locator("[data-field=name]").inner_text() == "(erased)"


def test_console_confirm_then_undo_a_reassignment(daemon: Daemon, browser: Browser) -> None:
    page = signed_in(browser, daemon, daemon.serve.admin_token or "")
    lead = daemon.post_lead("Undo Me", daemon.acme)
    select = row(page, lead["id"]).locator("select[data-field=provider_id]")
    select.wait_for()
    # cancelled: nothing changes, the select shows the provider again
    select.select_option(str(daemon.bolt["id"]))
    page.locator("#confirm").get_by_role("button", name="Cancel").click()
    wait_for(lambda: select.input_value() == str(daemon.acme["id"]), 2, "the select put back")
    assert stored(daemon, lead)["provider_id"] == daemon.acme["id"]
    # confirmed: it says what will happen, then does it
    select.select_option(str(daemon.bolt["id"]))
    page.locator("#confirm").wait_for()
    assert page.locator("#confirm p").inner_text() == (
        "Bolt Electric will be notified, and Acme Plumbing will no longer see it."
    )
    confirm(page, f"Reassign Lead {lead['id']} (Undo Me) to Bolt Electric?")
    toast = page.locator(".toast").filter(has_text="reassigned to Bolt Electric")
    toast.wait_for()
    assert stored(daemon, lead)["provider_id"] == daemon.bolt["id"]
    # undo: a real change back, which survives a reload
    toast.get_by_role("button", name="Undo").click()
    wait_for(lambda: stored(daemon, lead)["provider_id"] == daemon.acme["id"], 5, "the undo")
    events = daemon.admin.get("/api/admin/events", params={"lead_id": lead["id"]}).json()
    assert [e["event"] for e in events["events"]] == ["lead.assigned"] * 3
    page.reload()
    restored = row(page, lead["id"]).locator("select[data-field=provider_id]")
    restored.wait_for()
    assert restored.input_value() == str(daemon.acme["id"])


def test_console_bell_history_and_what_was_read_survive_a_reload(
    tmp_path: Path, soketi: Soketi, browser: Browser
) -> None:
    with start_daemon(tmp_path, soketi) as daemon:
        page = signed_in(browser, daemon, daemon.serve.admin_token or "")
        jane = daemon.post_lead("Jane Remembered", daemon.acme)
        daemon.post_lead("John Remembered")
        daemon.admin.patch(f"/api/admin/leads/{jane['id']}", json={"status": "qualified"})
        wait_for(lambda: bell_count(page) == 3, 5, "three notifications")
        page.click(".bell-button")
        page.click("text=Mark all read")
        daemon.post_lead("Unread One")
        wait_for(lambda: bell_count(page) == 1, 5, "one unread")
        before = notes(page)
        assert before[1] == f"Lead {jane['id']} (Jane Remembered): new → qualified, by an admin"
        page.reload()
        page.wait_for_selector("#connection[data-connection=connected]")
        wait_for(lambda: bell_count(page) == 1, 5, "the unread count after the reload")
        page.click(".bell-button")
        assert notes(page) == before
        kept = page.evaluate("JSON.stringify(localStorage)")
        for name in ("Jane", "John", "Unread", "Remembered"):
            assert name not in kept  # ids only: no personal data in the browser's storage
        assert json.loads(json.loads(kept)["leadrelay.bell.admin.all"])["readUpTo"]


def test_console_lays_each_lead_out_as_a_card_at_375_px(daemon: Daemon, browser: Browser) -> None:
    lead = daemon.post_lead("Maximiliana Wolkenstein-Oberhausen", daemon.acme)
    for width in (375, 768, 1280):
        page = signed_in(browser, daemon, daemon.serve.admin_token or "", width=width)
        card = row(page, lead["id"])
        card.wait_for()
        assert page.evaluate("document.documentElement.scrollWidth") <= width, width
        layout = card.evaluate("tr => getComputedStyle(tr).display")
        header = page.locator("[data-testid=leads-table] thead").is_visible()
        email = card.locator("[data-field=email]").is_visible()
        if width == 375:
            assert (layout, header, email) == ("grid", False, False)
            for field in ("name", "status", "provider_id", "age"):
                box = card.locator(f"[data-field={field}]").bounding_box()
                assert box and box["x"] >= 0 and box["x"] + box["width"] <= width, field
            name = card.locator("[data-field=name]")
            # the name wraps between words only: no word is cut
            assert name.evaluate("n => getComputedStyle(n).overflowWrap") == "break-word"
            assert name.evaluate("n => getComputedStyle(n).wordBreak") == "normal"
            name.click()
            panel = page.locator("#panel").bounding_box()
            assert panel and panel["x"] == 0 and panel["width"] == width  # the whole screen
        else:
            assert (layout, header) == ("table-row", True)
            assert email == (width >= 768)
        page.close()


def test_console_provider_view_searches_shows_its_speed_and_who_waits(
    tmp_path: Path, soketi: Soketi, browser: Browser
) -> None:
    with start_daemon(tmp_path, soketi) as daemon:
        first = daemon.post_lead("Waiting Wanda", daemon.acme)
        daemon.post_lead("Waiting Walter", daemon.acme)
        daemon.post_lead("Bolt's Own", daemon.bolt)
        page = signed_in(browser, daemon, daemon.acme["token"])
        waiting = page.locator("#waiting")
        wait_for(lambda: waiting.locator("li").count() == 2, 5, "two waiting")
        oldest = waiting.locator("li").first.inner_text()
        assert re.fullmatch(r"Waiting Wanda\s*waiting \d+ s", oldest), oldest  # with its age
        assert page.locator("[data-testid=glance-own] .big").inner_text() == "—"
        page.fill("#search", "wal")
        wait_for(lambda: shown(page) == ["Waiting Walter"], 5, "the provider's search")
        page.fill("#search", "bolt")
        wait_for(lambda: shown(page) == [], 5, "another provider's lead is never found")
        page.fill("#search", "")
        row(page, first["id"]).locator("select[data-field=status]").select_option("contacted")
        confirm(page, f"Change Lead {first['id']} (Waiting Wanda) from new to contacted?")
        wait_for(lambda: waiting.locator("li").count() == 1, 5, "Wanda no longer waits")
        speed = page.locator("[data-testid=glance-own] .big")
        wait_for(lambda: speed.inner_text().endswith(" s"), 8, "the provider's speed to contact")


def test_console_says_how_to_fix_live_updates_when_pusher_js_cannot_load(
    daemon: Daemon, browser: Browser
) -> None:
    page = browser.new_page()
    page.route(PUSHER_JS_CDN, lambda route: route.abort())  # the CDN unreachable
    page.goto(daemon.serve.url)
    page.fill("#token", daemon.serve.admin_token or "")
    page.press("#token", "Enter")
    banner = page.locator("#banner")
    banner.wait_for()
    text = banner.inner_text()
    assert text.count(".") == 1 and "console_pusher_js" in text  # one sentence, with the fix
    assert page.locator("#connection-text").inner_text() == "Live updates off"
    link = banner.locator("a")
    assert link.get_attribute("href") == "/console/help.html#live-updates"
    link.click()
    page.wait_for_url("**/console/help.html#live-updates")
    assert "console_pusher_js" in page.locator("#live-updates + p + p + ol").inner_text()


def test_console_shows_hostile_names_as_text_everywhere(daemon: Daemon, browser: Browser) -> None:
    admin = signed_in(browser, daemon, daemon.serve.admin_token or "")
    provider = signed_in(browser, daemon, daemon.acme["token"])
    for name in (HOSTILE, MARKUP):
        shown_as_text_everywhere(daemon, admin, provider, name)
    for page in (admin, provider):
        assert page.locator("img").count() == 0  # no markup was ever made of a name
    assert browser.dialogs == []


def shown_as_text_everywhere(daemon: Daemon, admin: Any, provider: Any, name: str) -> None:
    """The row, the provider's waiting list, both bells, the search, the panel, the question
    and the toast all show `name` as the characters it is."""
    lead = daemon.post_lead(name, daemon.acme)
    cell = row(admin, lead["id"]).locator("[data-field=name]")
    cell.wait_for()
    assert cell.inner_text() == name
    waiting = provider.locator("#waiting")
    wait_for(lambda: name in waiting.inner_text(), 5, "the provider's waiting list")
    wait_for(lambda: any(name in text for text in notes(admin)), 5, "the bell")
    admin.fill("#search", name[:6])
    wait_for(lambda: name in shown(admin), 5, "found by its name")
    admin.fill("#search", "")
    row(admin, lead["id"]).locator("[data-field=name]").click()
    panel = admin.locator("#panel")
    wait_for(lambda: panel.locator("h2").inner_text() == name, 5, "the panel")
    panel.locator("select").first.select_option("qualified")
    assert name in confirm(admin)
    admin.locator(".toast").filter(has_text=name).first.wait_for()
    admin.keyboard.press("Escape")
    assert row(provider, lead["id"]).locator("[data-field=name]").inner_text() == name
    provider.click(".bell-button")
    assert any(name in text for text in notes(provider))
    provider.click(".bell-button")
