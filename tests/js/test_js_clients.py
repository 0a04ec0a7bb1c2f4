"""Laravel Echo and pusher-js from npm (tests/js/package.json), driven by Node's own test
runner against a real `leadrelay serve` and soketi: what dashboards run, proven unchanged."""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.node import run_node
from support.serve import Serve, cli, cli_json, point_at_soketi
from support.soketi import Soketi, free_port
from support.subscriber import Subscriber
from support.wire import Wire

pytestmark = pytest.mark.soketi

# what must never cross the wire in clear in the private modes
PERSON = {"name": "Wire Ada Secret", "email": "wire.ada@example.com", "phone": "+44 7700 900123"}


def start_daemon(
    db: Path, soketi: Soketi, env: dict[str, str] | None = None, master_key: str | None = None
) -> Serve:
    serve = Serve(db, env=env).start()
    point_at_soketi(db, soketi, enable=False)
    if master_key is not None:
        cli(db, "pusher", "set", "--encryption-master-key", "-", input=master_key + "\n")
    cli(db, "pusher", "enable")
    return serve


def context_for(serve: Serve, **extra: Any) -> dict[str, Any]:
    providers = {
        str(provider_id): cli_json(
            serve.db, "providers", "add", f"P{provider_id}", "--id", str(provider_id)
        )["token"]
        for provider_id in (7, 8)
    }
    return {"url": serve.url, "admin": serve.admin_token, "providers": providers, **extra}


@pytest.fixture
def default_daemon(tmp_path: Path, soketi: Soketi) -> Iterator[Serve]:
    serve = start_daemon(tmp_path / "js.db", soketi)
    try:
        yield serve
    finally:
        serve.kill()


def test_js_clients_echo_and_pusher_js_on_the_default_channels(default_daemon: Serve) -> None:
    context = context_for(default_daemon, admin_channel="admin")
    run_node(["echo.test.mjs", "echo-bearer.test.mjs"], context)


def daemon_authorizer(serve: Serve, token: str) -> Any:
    """Channel auth the way pusher-js gets it: from the daemon's /broadcasting/auth."""

    def authorize(socket_id: str, channel: str) -> str:
        data = {"socket_id": socket_id, "channel_name": channel}
        response = httpx.post(
            f"{serve.url}/broadcasting/auth", data=data, headers=serve.auth(token)
        )
        assert response.status_code == 200, response.text
        return str(response.json()["auth"])

    return authorize


def application_frames(wire: Wire, channel: str) -> list[dict[str, Any]]:
    return [f for f in wire.events() if f.get("channel") == channel]


def test_js_clients_decrypt_what_leadrelay_sent_on_encrypted_channels(
    tmp_path: Path, soketi: Soketi
) -> None:
    master_key = base64.b64encode(secrets.token_bytes(32)).decode()
    env = {"LEADRELAY_ENCRYPTED_CHANNELS": "true"}
    serve = start_daemon(tmp_path / "enc.db", soketi, env, master_key)
    try:
        context = context_for(serve, person=PERSON)
        channels = ["private-encrypted-admin", "private-encrypted-provider.7"]
        # soketi's side of the wire: a subscriber with the app secret but not the master key
        with Wire(soketi, channels) as wire:
            run_node(["encrypted.test.mjs"], context)
        for channel in channels:
            frames = application_frames(wire, channel)
            assert frames, f"nothing arrived on {channel}"
            for frame in frames:
                assert set(json.loads(frame["data"])) == {"nonce", "ciphertext"}
        seen = "\n".join(wire.frames)
        for value in [*PERSON.values(), '\\"lead\\"', "lead.id", '\\"email\\"']:
            assert value not in seen
        assert master_key not in serve.logs()
    finally:
        serve.kill()


def test_js_clients_private_admin_feed_only_for_admin_tokens(
    tmp_path: Path, soketi: Soketi
) -> None:
    serve = start_daemon(tmp_path / "priv.db", soketi, {"LEADRELAY_ADMIN_CHANNEL": "private-admin"})
    try:
        with Wire(soketi, ["admin", "private-admin"]) as wire:
            run_node(["private-admin.test.mjs"], context_for(serve))
        assert application_frames(wire, "private-admin")
        assert application_frames(wire, "admin") == []
    finally:
        serve.kill()


def test_js_clients_no_personal_data_in_any_frame(tmp_path: Path, soketi: Soketi) -> None:
    env = {"LEADRELAY_BROADCAST_PERSONAL_DATA": "false"}
    serve = start_daemon(tmp_path / "nopd.db", soketi, env)
    try:
        channels = ["admin", "private-provider.7"]
        with Wire(soketi, channels) as wire:
            run_node(["no-personal-data.test.mjs"], context_for(serve, person=PERSON))
        for channel in channels:
            frames = application_frames(wire, channel)
            assert frames, f"nothing arrived on {channel}"
            for frame in frames:
                lead = json.loads(frame["data"])["lead"]
                assert not {"name", "email", "phone"} & set(lead), lead
        seen = "\n".join(wire.frames)
        for value in PERSON.values():
            assert value not in seen
    finally:
        serve.kill()


def test_js_clients_presence_from_real_soketi_webhooks(tmp_path: Path) -> None:
    db = tmp_path / "presence.db"
    serve = Serve(db)
    serve.port = free_port()
    hooks = [
        {
            "url": f"{serve.url}/pusher/webhooks",
            "event_types": ["channel_occupied", "channel_vacated"],
        }
    ]
    with Soketi(extra_env={"SOKETI_DEFAULT_APP_WEBHOOKS": json.dumps(hooks)}) as soketi:
        serve.start()
        try:
            point_at_soketi(db, soketi)
            context = context_for(serve)
            run_node(["presence.test.mjs"], context)

            # the CLI and the metric read the same record, with our own protocol client
            authorize = daemon_authorizer(serve, context["providers"]["8"])
            with Subscriber(soketi, ["private-provider.8"], authorizer=authorize):
                deadline = time.monotonic() + 2
                while time.monotonic() < deadline:
                    rows = {p["id"]: p for p in cli_json(db, "providers", "list")}
                    if rows[8]["watching"]:
                        break
                    time.sleep(0.05)
                assert rows[8]["watching"] is True
                assert "watching now" in cli(db, "providers", "list").stdout
                metrics = httpx.get(f"{serve.url}/metrics").text
                assert "leadrelay_providers_watching 1" in metrics

            # a webhook not signed with the app secret changes nothing
            body = json.dumps(
                {
                    "time_ms": int(time.time() * 1000) + 60_000,
                    "events": [{"name": "channel_occupied", "channel": "private-provider.7"}],
                }
            )
            forged = httpx.post(
                f"{serve.url}/pusher/webhooks",
                content=body,
                headers={"X-Pusher-Key": soketi.key, "X-Pusher-Signature": "0" * 64},
            )
            assert forged.status_code == 401
            rows = {p["id"]: p for p in cli_json(db, "providers", "list")}
            assert rows[7]["watching"] is False
        finally:
            serve.kill()
