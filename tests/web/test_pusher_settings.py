"""PUT /api/admin/settings/pusher: what a settings form sends back keeps the stored secret (on
both backends)."""

from __future__ import annotations

import secrets

import pytest

from leadrelay.config import Settings
from leadrelay.pusher import config as pusher_config
from support.app import running_app

pytestmark = pytest.mark.both_backends

SECRET = "pshsec-" + secrets.token_hex(16)
PATH = "/api/admin/settings/pusher"


@pytest.mark.anyio
@pytest.mark.parametrize("secret_sent", ["masked", "omitted", "null"])
async def test_pusher_settings_put_keeps_secret_when_form_sends_it_back(
    settings: Settings, secret_sent: str
) -> None:
    async with running_app(settings) as lr:
        first = {"app_id": "1", "key": "app-key", "secret": SECRET, "host": "127.0.0.1"}
        assert (await lr.client.put(PATH, json=first, headers=lr.auth())).status_code == 200
        form = (await lr.client.get(PATH, headers=lr.auth())).json()
        assert form["secret"] == "••••" + SECRET[-2:]
        form["cluster"] = "eu"
        if secret_sent == "omitted":
            del form["secret"]
        elif secret_sent == "null":
            form["secret"] = None
        response = await lr.client.put(PATH, json=form, headers=lr.auth())
        assert response.status_code == 200, response.text
        stored = await pusher_config.load(lr.store)
        assert stored.secret == SECRET
        assert stored.cluster == "eu"


@pytest.mark.anyio
async def test_pusher_settings_put_keeps_short_secret_sent_back_masked(settings: Settings) -> None:
    async with running_app(settings) as lr:
        body = {"app_id": "1", "key": "app-key", "secret": "short"}
        await lr.client.put(PATH, json=body, headers=lr.auth())
        form = (await lr.client.get(PATH, headers=lr.auth())).json()
        assert form["secret"] == "••••"
        assert (await lr.client.put(PATH, json=form, headers=lr.auth())).status_code == 200
        assert (await pusher_config.load(lr.store)).secret == "short"


@pytest.mark.anyio
async def test_pusher_settings_put_refuses_a_mask_of_another_secret(settings: Settings) -> None:
    async with running_app(settings) as lr:
        body = {"app_id": "1", "key": "app-key", "secret": SECRET}
        await lr.client.put(PATH, json=body, headers=lr.auth())
        response = await lr.client.put(PATH, json={"secret": "••••zz"}, headers=lr.auth())
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "invalid_secret"
        assert (await pusher_config.load(lr.store)).secret == SECRET
