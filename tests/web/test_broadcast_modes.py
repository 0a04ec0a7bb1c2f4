"""The broadcast modes of CONTRACT §4 at the API: who may authorise which channel, the
encrypted channels' shared secret, the master key's checks, and the one-line warnings."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest

from leadrelay import events
from leadrelay.config import Settings, load_settings
from leadrelay.errors import ConfigError
from leadrelay.pusher.http import AS_SENT
from leadrelay.relay.batches import batch_items
from support.app import InProcess, running_app
from support.serve import Serve, cli

MASTER_KEY = base64.b64encode(bytes(range(32))).decode()
PUSHER = {"app_id": "1", "key": "app-key", "secret": "the-app-secret-0123", "enabled": False}


async def auth(lr: InProcess, token: str, channel: str) -> tuple[int, dict[str, object]]:
    response = await lr.client.post(
        "/broadcasting/auth",
        data={"socket_id": "123.456", "channel_name": channel},
        headers={"Authorization": f"Bearer {token}"},
    )
    return response.status_code, response.json()


@pytest.mark.anyio
async def test_broadcast_modes_private_admin_refuses_provider_tokens(settings: Settings) -> None:
    async with running_app(settings.replace(admin_channel="private-admin")) as lr:
        await lr.client.put("/api/admin/settings/pusher", json=PUSHER, headers=lr.auth())
        provider = await lr.add_provider("Seven", 7)
        status, body = await auth(lr, provider["token"], "private-admin")
        assert status == 403 and body["error"]["code"] == "channel_forbidden"
        status, body = await auth(lr, lr.admin_token, "private-admin")
        assert status == 200 and "shared_secret" not in body
        config = (await lr.client.get("/broadcasting/config", headers=lr.auth())).json()
        assert config["channels"]["admin"] == "private-admin"


@pytest.mark.anyio
async def test_broadcast_modes_encrypted_auth_hands_out_the_shared_secret(
    settings: Settings,
) -> None:
    async with running_app(settings.replace(encrypted_channels=True)) as lr:
        provider = await lr.add_provider("Seven", 7)
        await lr.client.put("/api/admin/settings/pusher", json=PUSHER, headers=lr.auth())
        channel = "private-encrypted-provider.7"
        status, body = await auth(lr, provider["token"], channel)
        assert status == 400 and body["error"]["code"] == "encryption_not_configured"

        key = {"encryption_master_key": MASTER_KEY}
        response = await lr.client.put("/api/admin/settings/pusher", json=key, headers=lr.auth())
        assert response.status_code == 200
        assert response.json()["encryption_master_key"] != MASTER_KEY
        status, body = await auth(lr, provider["token"], channel)
        assert status == 200
        expected = hashlib.sha256(channel.encode() + bytes(range(32))).digest()
        assert base64.b64decode(str(body["shared_secret"])) == expected
        # another provider's encrypted channel, and the encrypted admin feed, are refused
        for other in ("private-encrypted-provider.8", "private-encrypted-admin"):
            status, body = await auth(lr, provider["token"], other)
            assert status == 403
        status, _ = await auth(lr, lr.admin_token, "private-encrypted-admin")
        assert status == 200

        # the events API says where each event went, in this mode
        await lr.create_lead(provider_id=7)
        page = (await lr.client.get("/api/admin/events", headers=lr.auth())).json()
        assert page["events"][0]["channels"] == ["private-encrypted-admin", channel]
        page = await lr.client.get("/api/provider/events", headers=lr.auth(provider["token"]))
        assert page.json()["events"][0]["channels"] == [channel]


@pytest.mark.anyio
@pytest.mark.parametrize("bad", ["short", base64.b64encode(b"x" * 31).decode(), "not base64!"])
async def test_broadcast_modes_master_key_must_be_32_bytes(settings: Settings, bad: str) -> None:
    async with running_app(settings) as lr:
        body = {**PUSHER, "encryption_master_key": bad}
        response = await lr.client.put("/api/admin/settings/pusher", json=body, headers=lr.auth())
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "invalid_encryption_master_key"
        assert bad not in response.text


def test_broadcast_modes_relay_items_per_mode() -> None:
    data = {"event_id": "e", "seq": 1, "lead": {"id": 1, "name": "Ada", "email": "a@b.co"}}
    # an events row as the relay claims it (store/base.py's EVENT_COLUMNS), a lead's
    row = {
        "lead_id": 1,
        "type": "lead.assigned",
        "channels": json.dumps(["admin", "private-provider.7"]),
        "payload": json.dumps(data),
        "socket_id": None,
    }
    default = batch_items([row])
    assert [i["channel"] for i in default] == ["admin", "private-provider.7"]
    assert default[0]["data"] == row["payload"]  # the stored string, untouched
    encrypted = batch_items([row], events.Broadcast(encrypted=True))
    assert [i["channel"] for i in encrypted] == [
        "private-encrypted-admin",
        "private-encrypted-provider.7",
    ]
    private = batch_items([row], events.Broadcast(admin_channel="private-admin"))
    assert [i["channel"] for i in private] == ["private-admin", "private-provider.7"]
    bare = batch_items([row], events.Broadcast(personal_data=False))
    assert json.loads(bare[0]["data"])["lead"] == {"id": 1}

    # an app's event through the Pusher API (no lead) goes as it came, whatever the mode
    app = {
        "lead_id": None,
        "type": "order.paid",
        "channels": json.dumps(["private-encrypted-orders"]),
        "payload": '{"nonce": "n", "ciphertext": "c"}',
        "socket_id": "123.456",
    }
    for mode in (
        events.Broadcast(),
        events.Broadcast(encrypted=True),
        events.Broadcast(admin_channel="private-admin", personal_data=False),
    ):
        (item,) = batch_items([app], mode)
        assert item == {
            "channel": "private-encrypted-orders",
            "name": "order.paid",
            "data": app["payload"],
            "socket_id": "123.456",
            AS_SENT: True,
        }


def test_broadcast_modes_encrypted_data_fits_pusher_limit_after_sealing() -> None:
    lead = {"id": 1, "name": "x" * 200, "source": "y" * 9_000}
    data, _ = events.fit_to_limit({"event_id": "e", "lead": lead})
    sent = events.Broadcast(encrypted=True).payload(json.dumps(data))
    sealed = len(sent.encode()) + 16  # the MAC
    assert 4 * ((sealed + 2) // 3) + 80 <= 10_240  # base64, and the nonce's JSON around it


def test_broadcast_modes_settings_are_checked() -> None:
    assert load_settings(env={"LEADRELAY_ADMIN_CHANNEL": "private-admin"}).admin_channel == (
        "private-admin"
    )
    with pytest.raises(ConfigError, match="admin_channel"):
        load_settings(env={"LEADRELAY_ADMIN_CHANNEL": "presence-admin"})


@pytest.mark.soketi
def test_broadcast_modes_doctor_and_serve_warn_of_personal_data_in_public(
    tmp_path: Path,
) -> None:
    db = tmp_path / "warn.db"
    with Serve(db) as serve:
        first = serve.logs().splitlines()[0]
    assert "public 'admin' channel" in first and "broadcast_personal_data = false" in first
    privacy = doctor_check(db, {})
    assert privacy["status"] == "warn" and "\n" not in privacy["detail"]

    env = {"LEADRELAY_ADMIN_CHANNEL": "private-admin"}
    with Serve(db, env=env) as serve:
        assert "public 'admin' channel" not in serve.logs()
    assert doctor_check(db, env)["status"] == "ok"
    assert doctor_check(db, {"LEADRELAY_BROADCAST_PERSONAL_DATA": "0"})["status"] == "ok"

    privacy = doctor_check(db, {"LEADRELAY_ENCRYPTED_CHANNELS": "true"})
    assert privacy["status"] == "fail" and "--encryption-master-key" in privacy["detail"]


def doctor_check(db: Path, env: dict[str, str]) -> dict[str, str]:
    doctor = cli(db, "doctor", "--json", env=env, check=False)
    checks = {c["name"]: c for c in json.loads(doctor.stdout)["checks"]}
    check: dict[str, str] = checks["lead privacy"]
    return check
