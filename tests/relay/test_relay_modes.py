"""The relay in the private modes, against a real soketi and `leadrelay serve`: on encrypted
channels every event still arrives, once per channel, in each lead's order, and opens with
the channel's shared secret; what soketi carries is ciphertext.  On both backends."""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections import defaultdict
from pathlib import Path

import httpx
import pytest

from leadrelay.auth import shared_secret
from leadrelay.pusher.protocol import decrypt_data
from support.serve import WALK, Serve, cli, cli_json, make_leads, point_at_soketi
from support.soketi import Soketi
from support.wire import Wire

pytestmark = [pytest.mark.soketi, pytest.mark.both_backends, pytest.mark.timeout(90)]
LEADS = 30


def test_relay_modes_encrypted_keeps_every_event_in_order(db: Path | str, soketi: Soketi) -> None:
    key = secrets.token_bytes(32)
    env = {"LEADRELAY_ENCRYPTED_CHANNELS": "true", "LEADRELAY_RELAY_BATCH_SIZE": "10"}
    with Serve(db, env=env) as serve:
        point_at_soketi(db, soketi, enable=False)
        master_key = base64.b64encode(key).decode() + "\n"
        cli(db, "pusher", "set", "--encryption-master-key", "-", input=master_key)
        cli_json(db, "providers", "add", "Seven", "--id", "7")
        admin, seven = "private-encrypted-admin", "private-encrypted-provider.7"
        with (
            Wire(soketi, [admin, seven]) as wire,
            httpx.Client(base_url=serve.url, headers=serve.auth(), timeout=10) as client,
        ):
            # written while relaying is off, so the relay sends them in full batches
            ids = make_leads(client, "Enc", LEADS)
            for lead_id in ids[:5]:
                client.patch(f"/api/admin/leads/{lead_id}", json={"provider_id": 7})
            cli(db, "pusher", "enable")
            expected = LEADS * (1 + len(WALK)) + 5
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and len(wire.events()) < expected + 5:
                time.sleep(0.1)
            frames = wire.events()
        seqs: dict[tuple[str, int], list[int]] = defaultdict(list)
        for frame in frames:
            sealed = json.loads(str(frame["data"]))
            assert set(sealed) == {"nonce", "ciphertext"}
            channel = str(frame["channel"])
            data = decrypt_data(sealed, shared_secret(channel, key))
            seqs[(channel, data["lead"]["id"])].append(data["seq"])
        walked = 1 + len(WALK)  # each lead's events before the first five are reassigned
        for lead_id in ids:
            moved = lead_id in ids[:5]
            assert seqs[(admin, lead_id)] == list(range(1, walked + 1 + moved))
            assert seqs[(seven, lead_id)] == ([walked + 1] if moved else [])
        assert len(frames) == expected + 5


def test_relay_modes_encrypted_without_a_key_pauses_and_sends_nothing(
    db: Path | str, soketi: Soketi
) -> None:
    with Serve(db, env={"LEADRELAY_ENCRYPTED_CHANNELS": "true"}) as serve:
        point_at_soketi(db, soketi)
        with (
            Wire(soketi, ["admin", "private-encrypted-admin"]) as wire,
            httpx.Client(base_url=serve.url, headers=serve.auth(), timeout=10) as client,
        ):
            lead = client.post("/api/leads", json={"name": "Held Back"}).json()
            deadline = time.monotonic() + 10
            ready: dict[str, object] = {}
            while time.monotonic() < deadline:
                ready = client.get("/readyz").json()
                if "master key" in str(ready.get("details")):
                    break
                time.sleep(0.1)
            assert "--encryption-master-key" in str(ready["details"]), ready
            assert wire.events() == []  # nothing in clear, nothing at all

            key = secrets.token_bytes(32)
            master_key = base64.b64encode(key).decode() + "\n"
            cli(db, "pusher", "set", "--encryption-master-key", "-", input=master_key)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not wire.events():
                time.sleep(0.1)
            [frame] = wire.events()
            assert frame["channel"] == "private-encrypted-admin"
            channel = "private-encrypted-admin"
            data = decrypt_data(json.loads(str(frame["data"])), shared_secret(channel, key))
            assert data["lead"]["id"] == lead["id"]
