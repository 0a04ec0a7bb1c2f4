"""The console's server side in-process: GET /, its files and headers, /api/me, the outbox API,
on both backends."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import pytest

from leadrelay.config import Settings
from leadrelay.pusher import config as pusher_config
from leadrelay.web import console
from support.app import running_app
from support.browser import PUSHER_JS
from support.database import execute

pytestmark = [pytest.mark.anyio, pytest.mark.both_backends]

CONSOLE_FILES = tuple(
    path.name for path in sorted(console.ASSETS.glob("*.js"))
)  # every module the page loads


def assert_error(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["message"]


def csp_of(response: Any) -> dict[str, str]:
    policy = response.headers["content-security-policy"]
    return {
        part.strip().split(" ", 1)[0]: part.strip().partition(" ")[2] for part in policy.split(";")
    }


async def test_console_page_has_a_strict_policy_and_the_pinned_pusher_js(
    settings: Settings,
) -> None:
    async with running_app(settings) as lr:
        await pusher_config.update(
            lr.store,
            {"app_id": "1", "key": "k", "secret": "s", "host": "ws.example.org", "port": 6001},
        )
        page = await lr.client.get("/")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        policy = csp_of(page)
        raw = page.headers["content-security-policy"]
        assert "unsafe-inline" not in raw and "unsafe-eval" not in raw
        assert policy["frame-ancestors"] == "'none'"
        assert policy["connect-src"] == "'self' wss://ws.example.org:6001"
        assert policy["script-src"] == "'self' https://js.pusher.com"
        assert page.headers["x-content-type-options"] == "nosniff"
        assert console.PUSHER_JS_CDN in page.text
        assert f'integrity="{console.PUSHER_JS_SRI}"' in page.text
        assert "<script>" not in page.text  # no inline script for the policy to allow
        for name in CONSOLE_FILES:
            asset = await lr.client.get(f"/console/{name}")
            assert asset.status_code == 200, name
            assert asset.headers["content-type"].startswith("text/javascript")
        assert len(CONSOLE_FILES) >= 14
        css = await lr.client.get("/console/style.css")
        assert css.headers["content-type"].startswith("text/css")
        # the help page the banner links to, under the same strict policy; not index.html
        help_page = await lr.client.get("/console/help.html")
        assert help_page.headers["content-type"].startswith("text/html")
        assert 'id="live-updates"' in help_page.text and "<script" not in help_page.text
        assert csp_of(help_page)["script-src"] == "'self'"
        assert (await lr.client.get("/console/index.html")).status_code == 404


def test_console_sri_is_the_npm_builds_hash() -> None:
    """The hash in the page is of npm's pusher-js dist/web/pusher.min.js at the pinned version
    (the build Pusher's CDN serves; the CDN itself cannot be reached from here)."""
    if not PUSHER_JS.exists():
        pytest.fail(f"{PUSHER_JS} is missing: run scripts/install-js-clients")
    builds = {
        console.PUSHER_JS_SRI: PUSHER_JS,
        console.PUSHER_JS_ENCRYPTED_SRI: PUSHER_JS.parent / "pusher-with-encryption.min.js",
    }
    for sri, build in builds.items():
        digest = hashlib.sha384(build.read_bytes()).digest()
        assert sri == "sha384-" + base64.b64encode(digest).decode(), build.name
    package = PUSHER_JS.parents[2] / "package.json"
    assert f'"version": "{console.PUSHER_JS_VERSION}"' in package.read_text()


async def test_console_loads_the_encryption_build_for_encrypted_channels(
    settings: Settings,
) -> None:
    async with running_app(settings.replace(encrypted_channels=True)) as lr:
        page = await lr.client.get("/")
        assert console.PUSHER_JS_ENCRYPTED_CDN in page.text
        assert f'integrity="{console.PUSHER_JS_ENCRYPTED_SRI}"' in page.text
        mode = (await lr.client.get("/api/me", headers=lr.auth())).json()
        assert mode["channel"] == "private-encrypted-admin"


async def test_console_files_are_only_the_shipped_ones(settings: Settings) -> None:
    async with running_app(settings) as lr:
        for name in ("index.html", "..%2Fapp.py", "nope.js", "pusher.min.js"):
            assert (await lr.client.get(f"/console/{name}")).status_code == 404, name
        assert (await lr.client.get("/console/../web/app.py")).status_code == 404


async def test_console_serves_a_local_pusher_js_when_configured(
    settings: Settings, tmp_path: Path
) -> None:
    local = tmp_path / "pusher.min.js"
    local.write_text("/* a local pusher-js */")
    async with running_app(settings.replace(console_pusher_js=str(local))) as lr:
        page = await lr.client.get("/")
        assert '<script src="/console/pusher.min.js"></script>' in page.text
        assert "js.pusher.com" not in page.headers["content-security-policy"]
        served = await lr.client.get("/console/pusher.min.js")
        assert served.status_code == 200 and served.text == "/* a local pusher-js */"
    missing = settings.replace(console_pusher_js=str(tmp_path / "gone.js"))
    async with running_app(missing) as lr:
        answer = await lr.client.get("/console/pusher.min.js")
        assert_error(answer, 404, "pusher_js_missing")
        assert str(tmp_path) not in answer.text  # the path is for the log, not for anyone


async def test_me_names_the_token(settings: Settings) -> None:
    async with running_app(settings) as lr:
        provider = await lr.add_provider("Acme Plumbing")
        admin = (await lr.client.get("/api/me", headers=lr.auth())).json()
        assert admin["role"] == "admin" and admin["provider_id"] is None
        assert admin["name"] is None and admin["channel"] == "admin"
        assert admin["statuses"] == list(settings.statuses)
        mine = (await lr.client.get("/api/me", headers=lr.auth(provider["token"]))).json()
        assert {k: mine[k] for k in ("role", "provider_id", "name", "channel")} == {
            "role": "provider",
            "provider_id": provider["id"],
            "name": "Acme Plumbing",
            "channel": f"private-provider.{provider['id']}",
        }
        # the cursor of this moment: the events API after it holds only what comes next
        before = mine["events_after"]
        await lr.create_lead(provider_id=provider["id"])
        page = await lr.client.get(
            "/api/provider/events", params={"after": before}, headers=lr.auth(provider["token"])
        )
        assert [e["event"] for e in page.json()["events"]] == ["lead.assigned"]
        assert_error(await lr.client.get("/api/me"), 401, "missing_token")
        wrong = await lr.client.get("/api/me", headers=lr.auth("lr_wrong"))
        assert_error(wrong, 401, "invalid_token")


async def test_admin_providers_lists_names_and_counts(settings: Settings) -> None:
    async with running_app(settings) as lr:
        provider = await lr.add_provider("Acme Plumbing")
        await lr.create_lead(provider_id=provider["id"])
        listed = (await lr.client.get("/api/admin/providers", headers=lr.auth())).json()
        # watching / last_seen come from Pusher's channel webhooks (none here)
        expected = {"id": provider["id"], "name": "Acme Plumbing", "leads": 1}
        assert listed["providers"] == [{**expected, "watching": False, "last_seen": None}]
        other = await lr.client.get("/api/admin/providers", headers=lr.auth(provider["token"]))
        assert_error(other, 403, "admin_only")


def kill_events(db: Path | str, reason: str) -> None:
    execute(db, "UPDATE events SET state = 'dead', last_error = ?", reason)


async def test_outbox_api_shows_and_retries_dead_letters(settings: Settings) -> None:
    async with running_app(settings) as lr:
        provider = await lr.add_provider()
        for name in ("One", "Two"):
            assert (await lr.create_lead(name=name)).status_code == 201
        status = (await lr.client.get("/api/admin/outbox", headers=lr.auth())).json()
        assert status["pending"] == 2 and status["dead"] == 0
        assert status["oldest_pending_age_seconds"] >= 0
        assert status["pusher_enabled"] is False and status["relay_paused_reason"] is None
        kill_events(settings.db, "HTTP 413: too large")
        failed = (await lr.client.get("/api/admin/outbox/failed", headers=lr.auth())).json()
        assert [e["last_error"] for e in failed["dead"]] == ["HTTP 413: too large"] * 2
        assert "payload" not in failed["dead"][0]  # the lead's personal data stays out
        assert failed["retrying"] == []
        first, second = failed["dead"]

        async def retry(body: Any, token: str | None = None) -> Any:
            return await lr.client.post(
                "/api/admin/outbox/retry", json=body, headers=lr.auth(token)
            )

        assert (await retry({"event_id": first["id"]})).json() == {"retried": 1}
        assert_error(await retry({"event_id": first["id"]}), 404, "event_not_dead")
        assert_error(await retry({"event_id": 999999}), 404, "event_not_found")
        assert (await retry({"event_id": second["event_id"]})).json() == {"retried": 1}
        status = (await lr.client.get("/api/admin/outbox", headers=lr.auth())).json()
        assert status["pending"] == 2 and status["dead"] == 0
        kill_events(settings.db, "gone")
        assert (await retry({"all": True})).json() == {"retried": 2}
        assert (await retry({"all": True})).json() == {"retried": 0}
        for bad in ({}, {"all": True, "event_id": 1}, {"all": "yes"}, []):
            assert_error(await retry(bad), 422, "invalid_body")
        assert_error(await retry({"event_id": "x"}), 422, "invalid_field")
        assert_error(await retry({"all": True}, provider["token"]), 403, "admin_only")
        assert_error(
            await lr.client.get("/api/admin/outbox", headers=lr.auth(provider["token"])),
            403,
            "admin_only",
        )


async def test_outbox_api_and_cli_are_one_implementation(settings: Settings) -> None:
    from support.serve import cli_json

    async with running_app(settings) as lr:
        await lr.create_lead()
        kill_events(settings.db, "HTTP 400: bad")
        api = (await lr.client.get("/api/admin/outbox/failed", headers=lr.auth())).json()
    assert cli_json(settings.db, "outbox", "failed") == api
