"""POST /pusher/webhooks in-process: signatures checked, presence recorded, order kept."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import httpx
import pytest

from leadrelay.config import Settings
from support.app import InProcess, running_app

pytestmark = [pytest.mark.anyio, pytest.mark.both_backends]
PUSHER = {"app_id": "1", "key": "app-key", "secret": "the-app-secret-0123"}


def sign(body: bytes, secret: str = PUSHER["secret"]) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def webhook(
    lr: InProcess,
    events: list[dict[str, Any]],
    time_ms: int,
    *,
    key: str = PUSHER["key"],
    secret: str = PUSHER["secret"],
    signature: str | None = None,
) -> httpx.Response:
    body = json.dumps({"time_ms": time_ms, "events": events}).encode()
    headers = {
        "Content-Type": b"application/json",
        "X-Pusher-Key": key.encode(),  # bytes: a header may carry non-ASCII
        "X-Pusher-Signature": (sign(body, secret) if signature is None else signature).encode(),
    }
    return await lr.client.post("/pusher/webhooks", content=body, headers=headers)


async def providers(lr: InProcess) -> dict[int, dict[str, Any]]:
    response = await lr.client.get("/api/admin/providers", headers=lr.auth())
    return {p["id"]: p for p in response.json()["providers"]}


def occupied(channel: str) -> list[dict[str, Any]]:
    return [{"name": "channel_occupied", "channel": channel}]


def vacated(channel: str) -> list[dict[str, Any]]:
    return [{"name": "channel_vacated", "channel": channel}]


async def test_pusher_webhooks_refuse_anything_not_signed_by_the_app(settings: Settings) -> None:
    async with running_app(settings) as lr:
        await lr.add_provider("Seven", 7)
        events = occupied("private-provider.7")
        # no Pusher settings yet: nothing can be signed by the app
        assert (await webhook(lr, events, 1000)).status_code == 401
        await lr.client.put("/api/admin/settings/pusher", json=PUSHER, headers=lr.auth())
        forged = [
            await webhook(lr, events, 1000, signature=""),
            await webhook(lr, events, 1000, secret="someone-elses-secret"),
            await webhook(lr, events, 1000, key="another-key"),
            await lr.client.post("/pusher/webhooks", json={"time_ms": 1, "events": events}),
            # non-ASCII headers (the fuzzer found compare_digest refusing them with a 500)
            await webhook(lr, events, 1000, key="clé"),
            await webhook(lr, events, 1000, signature="é" * 64),
        ]
        for response in forged:
            assert response.status_code == 401
            assert response.json()["error"]["code"] == "invalid_webhook_signature"
        assert (await providers(lr))[7]["watching"] is False
        assert (await providers(lr))[7]["last_seen"] is None


async def test_pusher_webhooks_record_who_is_watching(settings: Settings) -> None:
    async with running_app(settings) as lr:
        await lr.client.put("/api/admin/settings/pusher", json=PUSHER, headers=lr.auth())
        await lr.add_provider("Seven", 7)
        await lr.add_provider("Eight", 8)
        t = 1_764_633_600_000  # 2025-12-02T00:00:00Z
        response = await webhook(lr, occupied("private-provider.7"), t)
        assert response.status_code == 200 and response.json()["applied"] == 1
        seven = (await providers(lr))[7]
        assert seven["watching"] is True and seven["last_seen"] == "2025-12-02T00:00:00.000Z"
        assert (await providers(lr))[8]["watching"] is False
        metrics = (await lr.client.get("/metrics")).text
        assert "leadrelay_providers_watching 1" in metrics

        # a vacated webhook that left before the occupied one but arrives after is ignored
        assert (await webhook(lr, vacated("private-provider.7"), t - 5)).json()["applied"] == 0
        assert (await providers(lr))[7]["watching"] is True
        await webhook(lr, vacated("private-provider.7"), t + 61_000)
        seven = (await providers(lr))[7]
        assert seven["watching"] is False and seven["last_seen"] == "2025-12-02T00:01:01.000Z"
        assert "leadrelay_providers_watching 0" in (await lr.client.get("/metrics")).text

        # the encrypted channel is the provider's feed too; other channels and events are not
        await webhook(lr, occupied("private-encrypted-provider.8"), t + 62_000)
        assert (await providers(lr))[8]["watching"] is True
        others = [
            {"name": "channel_occupied", "channel": "admin"},
            {"name": "channel_occupied", "channel": "private-provider.99"},
            {"name": "member_added", "channel": "private-provider.7", "user_id": "1"},
        ]
        response = await webhook(lr, others, t + 63_000)
        assert response.status_code == 200 and response.json()["applied"] == 0
        assert (await providers(lr))[7]["watching"] is False


async def test_pusher_webhooks_bad_bodies_are_4xx(settings: Settings) -> None:
    async with running_app(settings) as lr:
        await lr.client.put("/api/admin/settings/pusher", json=PUSHER, headers=lr.auth())
        for body in (b"not json", b"[]", b'{"events": []}', b'{"time_ms": "x", "events": []}'):
            headers = {"X-Pusher-Key": PUSHER["key"], "X-Pusher-Signature": sign(body)}
            response = await lr.client.post("/pusher/webhooks", content=body, headers=headers)
            assert 400 <= response.status_code < 500, (body, response.text)
            assert set(response.json()["error"]) == {"code", "message"}
