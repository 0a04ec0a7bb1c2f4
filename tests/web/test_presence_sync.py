"""Who is watching, corrected from Pusher's own channel list when webhooks were lost: a real
soketi that sends no webhooks at all, and a real daemon asking it every half second."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from leadrelay.auth import channel_signature
from support.serve import Serve, cli_json, point_at_soketi
from support.soketi import Soketi
from support.subscriber import Subscriber

pytestmark = [pytest.mark.soketi, pytest.mark.timeout(60)]


def watching(db: Path) -> dict[int, bool]:
    return {p["id"]: p["watching"] for p in cli_json(db, "providers", "list")}


def wait_watching(db: Path, provider_id: int, expected: bool, timeout: float = 8.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if watching(db)[provider_id] is expected:
            return
        time.sleep(0.1)
    raise AssertionError(f"provider {provider_id} watching is not {expected}: {watching(db)}")


def test_presence_sync_corrects_who_is_watching_without_webhooks(
    tmp_path: Path, soketi: Soketi
) -> None:
    db = tmp_path / "sync.db"
    with Serve(db, env={"LEADRELAY_PRESENCE_SYNC_SECONDS": "0.5"}) as serve:
        point_at_soketi(db, soketi)
        cli_json(db, "providers", "add", "Seven", "--id", "7")
        cli_json(db, "providers", "add", "Eight", "--id", "8")

        def sign(socket_id: str, channel: str) -> str:
            return channel_signature(soketi.key, soketi.secret, socket_id, channel)

        with Subscriber(soketi, ["private-provider.7"], authorizer=sign):
            wait_watching(db, 7, True)
        wait_watching(db, 7, False)
        assert cli_json(db, "providers", "list")[0]["last_seen"] is not None

        # a webhook said provider 8 came, and its vacated webhook was lost: corrected. Its
        # time is 2 s ahead, so that no sync already under way can be newer than it
        body = json.dumps(
            {
                "time_ms": int(time.time() * 1000) + 2000,
                "events": [{"name": "channel_occupied", "channel": "private-provider.8"}],
            }
        ).encode()
        signature = hmac.new(soketi.secret.encode(), body, hashlib.sha256).hexdigest()
        headers: dict[str, Any] = {"X-Pusher-Key": soketi.key, "X-Pusher-Signature": signature}
        response = httpx.post(f"{serve.url}/pusher/webhooks", content=body, headers=headers)
        assert response.json()["applied"] == 1
        listed = httpx.get(f"{serve.url}/api/admin/providers", headers=serve.auth()).json()
        assert {p["id"]: p["watching"] for p in listed["providers"]}[8] is True
        wait_watching(db, 8, False)
