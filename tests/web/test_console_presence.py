"""The console's "watching" dot beside a lead's provider, in real Chromium, fed by a real
soketi's channel webhooks (SOKETI_DEFAULT_APP_WEBHOOKS) through POST /pusher/webhooks."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from leadrelay.auth import channel_signature
from support.browser import browser_missing, chromium, fresh_context, sign_in, wait_for
from support.serve import Serve, cli_json, point_at_soketi
from support.soketi import Soketi, free_port
from support.subscriber import Subscriber

pytestmark = [pytest.mark.soketi, pytest.mark.timeout(90)]

if browser_missing() and not os.environ.get("CI"):
    pytestmark.append(pytest.mark.skip(reason=browser_missing() or ""))


def dot(page: Any, lead_id: int) -> Any:
    return page.locator(f"[data-testid=lead-{lead_id}] [data-field=watching]")


def test_console_presence_dot_follows_the_providers_channel(tmp_path: Path) -> None:
    db = tmp_path / "leadrelay.db"
    serve = Serve(db)
    serve.port = free_port()
    hooks = [
        {
            "url": f"{serve.url}/pusher/webhooks",
            "event_types": ["channel_occupied", "channel_vacated"],
        }
    ]
    with (
        Soketi(extra_env={"SOKETI_DEFAULT_APP_WEBHOOKS": json.dumps(hooks)}) as soketi,
        serve,
    ):
        point_at_soketi(db, soketi)
        acme = cli_json(db, "providers", "add", "Acme Plumbing")
        response = httpx.post(
            f"{serve.url}/api/leads",
            json={"name": "Jane Doe", "provider_id": acme["id"]},
            headers=serve.auth(),
        )
        lead = response.json()
        with chromium() as process, fresh_context(process) as browser:
            page = browser.new_page(width=1280)
            sign_in(page, serve.url, serve.admin_token or "")
            dot(page, lead["id"]).wait_for(timeout=5000)
            assert dot(page, lead["id"]).get_attribute("title") == "not seen watching"

            def sign(socket_id: str, channel: str) -> str:
                return channel_signature(soketi.key, soketi.secret, socket_id, channel)

            with Subscriber(soketi, [f"private-provider.{acme['id']}"], authorizer=sign):
                # the console reads who is watching with the outbox, every 5 s
                wait_for(
                    lambda: "on" in (dot(page, lead["id"]).get_attribute("class") or ""),
                    8,
                    "the dot",
                )
                assert dot(page, lead["id"]).get_attribute("title") == "watching now"
            wait_for(
                lambda: (dot(page, lead["id"]).get_attribute("title") or "").startswith(
                    "last seen"
                ),
                8,
                "last seen",
            )
            assert "on" not in (dot(page, lead["id"]).get_attribute("class") or "")
            assert browser.outside == []
