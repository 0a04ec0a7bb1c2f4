"""Idempotent intake under races, and the Standard Webhooks signature at the door.

A repeated `webhook-id` or `Idempotency-Key` returns the first lead and writes nothing,
however many copies race in at once: in-process, and through a real `leadrelay serve`
over sockets. A repeated key with a different body also returns the first lead: the key
names the delivery, not its content (Stripe's rule), so a retry that was re-serialised
differently still cannot make a second lead.  A key belongs to its caller: the same key
from another token (or a webhook-id from another sender's secret) is another delivery.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from leadrelay import accounts
from leadrelay.config import Settings
from leadrelay.store.sqlite.transaction import Tx
from leadrelay.web import webhook_secrets
from leadrelay.web.webhooks import generate_secret, sign_headers
from support.app import InProcess, running_app
from support.serve import Serve, cli_json

pytestmark = [pytest.mark.anyio, pytest.mark.both_backends]

COPIES = 50
BODY = json.dumps({"name": "Ada Lovelace", "email": "ada@example.com", "source": "crm"}).encode()


async def counts(lr: InProcess) -> tuple[int, int]:
    leads = await lr.store.fetch_one("SELECT count(*) AS n FROM leads")
    events = await lr.store.fetch_one("SELECT count(*) AS n FROM events")
    assert leads is not None and events is not None
    return int(leads["n"]), int(events["n"])


def signed(secret: str, body: bytes = BODY, **kwargs: Any) -> dict[str, str]:
    return {"Content-Type": "application/json", **sign_headers(secret, body, **kwargs)}


def assert_one_winner(responses: list[httpx.Response]) -> int:
    """All answered 2xx with the same lead; the first 201, every repeat 200."""
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 1, 200: len(responses) - 1}, [r.text for r in responses[:3]]
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == 1
    return ids.pop()


@pytest.fixture
async def lr(settings: Settings) -> AsyncIterator[InProcess]:
    async with running_app(settings) as app:
        yield app


@pytest.fixture
async def secret(lr: InProcess) -> str:
    return await webhook_secrets.current_secret(lr.store)


# --- races, in-process -------------------------------------------------------------------


async def test_concurrent_identical_webhooks_make_one_lead_and_one_event(
    lr: InProcess, secret: str
) -> None:
    headers = signed(secret, msg_id="msg_race")
    responses = await asyncio.gather(
        *(lr.client.post("/api/leads", content=BODY, headers=headers) for _ in range(COPIES))
    )
    lead_id = assert_one_winner(list(responses))
    assert await counts(lr) == (1, 1)
    assert (await lr.store.fetch_one("SELECT lead_id FROM events")) == {"lead_id": lead_id}


async def test_concurrent_identical_idempotency_keys_make_one_lead_and_one_event(
    lr: InProcess,
) -> None:
    headers = {**lr.auth(), "Content-Type": "application/json", "Idempotency-Key": "k-race"}
    responses = await asyncio.gather(
        *(lr.client.post("/api/leads", content=BODY, headers=headers) for _ in range(COPIES))
    )
    assert_one_winner(list(responses))
    assert await counts(lr) == (1, 1)


async def test_concurrent_same_key_different_bodies_make_one_lead(lr: InProcess) -> None:
    headers = {**lr.auth(), "Content-Type": "application/json", "Idempotency-Key": "k-mixed"}
    bodies = [json.dumps({"name": f"Copy {n}"}).encode() for n in range(COPIES)]
    responses = await asyncio.gather(
        *(lr.client.post("/api/leads", content=body, headers=headers) for body in bodies)
    )
    assert_one_winner(list(responses))
    assert await counts(lr) == (1, 1)
    names = {r.json()["name"] for r in responses}
    assert len(names) == 1 and names <= {f"Copy {n}" for n in range(COPIES)}


async def test_repeated_key_with_a_different_body_returns_the_first_lead(lr: InProcess) -> None:
    headers = {**lr.auth(), "Idempotency-Key": "k-1"}
    first = await lr.client.post("/api/leads", json={"name": "First"}, headers=headers)
    second = await lr.client.post(
        "/api/leads", json={"name": "Second", "email": "s@example.com"}, headers=headers
    )
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json() == first.json()
    assert await counts(lr) == (1, 1)


async def test_repeated_key_with_an_invalid_body_is_still_validated(lr: InProcess) -> None:
    headers = {**lr.auth(), "Idempotency-Key": "k-2"}
    assert (await lr.client.post("/api/leads", json={"name": "A"}, headers=headers)).is_success
    response = await lr.client.post("/api/leads", json={"name": ""}, headers=headers)
    assert response.status_code == 422
    assert await counts(lr) == (1, 1)


async def test_webhook_id_and_idempotency_key_do_not_collide(lr: InProcess, secret: str) -> None:
    by_webhook = await lr.client.post(
        "/api/leads", content=BODY, headers=signed(secret, msg_id="x")
    )
    headers = {**lr.auth(), "Content-Type": "application/json", "Idempotency-Key": "x"}
    by_key = await lr.client.post("/api/leads", content=BODY, headers=headers)
    assert (by_webhook.status_code, by_key.status_code) == (201, 201)
    assert by_webhook.json()["id"] != by_key.json()["id"]


async def test_replayed_webhook_within_tolerance_returns_the_first_lead(
    lr: InProcess, secret: str
) -> None:
    headers = signed(secret, msg_id="msg_replay", timestamp=int(time.time()) - 200)
    first = await lr.client.post("/api/leads", content=BODY, headers=headers)
    again = await lr.client.post("/api/leads", content=BODY, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert await counts(lr) == (1, 1)


async def test_same_key_from_two_tokens_makes_two_leads(lr: InProcess) -> None:
    other = await accounts.create_admin_token(lr.store)
    assert other is not None
    key = {"Idempotency-Key": "row-17"}  # two CRMs that both send their own row ids
    first = await lr.client.post(
        "/api/leads", json={"name": "CRM one's lead"}, headers={**lr.auth(), **key}
    )
    second = await lr.client.post(
        "/api/leads", json={"name": "CRM two's lead"}, headers={**lr.auth(other), **key}
    )
    assert (first.status_code, second.status_code) == (201, 201), second.text
    assert second.json()["name"] == "CRM two's lead"
    assert await counts(lr) == (2, 2)
    # and each caller's retry finds its own lead, not the other's
    for token, original in ((None, first), (other, second)):
        again = await lr.client.post(
            "/api/leads", json={"name": "retry"}, headers={**lr.auth(token), **key}
        )
        assert (again.status_code, again.json()) == (200, original.json())
    assert await counts(lr) == (2, 2)


async def test_same_webhook_id_from_two_senders_makes_two_leads(lr: InProcess, secret: str) -> None:
    # a second sender: its own secret, stored beside the first (not a rotation of it)
    other = generate_secret()

    def add_sender(tx: Tx) -> None:
        entries = tx.get_setting(webhook_secrets.SETTING_KEY)
        entries.append({"secret": other, "expires_at": None, "created_at": time.time()})
        tx.put_setting(webhook_secrets.SETTING_KEY, entries, "")

    await lr.store.write(add_sender)
    one = json.dumps({"name": "Sender one's lead"}).encode()
    two = json.dumps({"name": "Sender two's lead"}).encode()
    first = await lr.client.post(
        "/api/leads", content=one, headers=signed(secret, one, msg_id="msg_1")
    )
    second = await lr.client.post(
        "/api/leads", content=two, headers=signed(other, two, msg_id="msg_1")
    )
    assert (first.status_code, second.status_code) == (201, 201), second.text
    assert second.json()["name"] == "Sender two's lead"
    again = await lr.client.post(
        "/api/leads", content=two, headers=signed(other, two, msg_id="msg_1")
    )
    assert (again.status_code, again.json()) == (200, second.json())
    assert await counts(lr) == (2, 2)


# --- the signature ---------------------------------------------------------------------------


def _tampered(secret: str) -> list[tuple[str, dict[str, str], bytes, str]]:
    now = int(time.time())
    good = signed(secret, msg_id="msg_t")
    sig = good["webhook-signature"]
    flipped = sig[:-3] + ("A" if sig[-3] != "A" else "B") + sig[-2:]
    without = {name: {k: v for k, v in good.items() if k != name} for name in good}
    return [
        ("signature of another body", good, BODY.replace(b"Ada", b"Eve"),
         "webhook_signature_invalid"),
        ("body re-serialised", good, json.dumps(json.loads(BODY), indent=1).encode(),
         "webhook_signature_invalid"),
        ("flipped signature", {**good, "webhook-signature": flipped}, BODY,
         "webhook_signature_invalid"),
        ("another secret", signed(generate_secret(), msg_id="msg_t"), BODY,
         "webhook_signature_invalid"),
        ("another id", {**good, "webhook-id": "msg_other"}, BODY, "webhook_signature_invalid"),
        ("no v1 signature", {**good, "webhook-signature": "v1a," + sig[3:]}, BODY,
         "webhook_signature_invalid"),
        ("signature not base64", {**good, "webhook-signature": "v1,***"}, BODY,
         "webhook_signature_invalid"),
        ("empty signature", {**good, "webhook-signature": ""}, BODY, "webhook_headers_missing"),
        # The exact edge (300 s in, 301 s out) is tested against a fixed clock in
        # test_webhooks.py; here the daemon's clock may tick between signing and checking,
        # which turned "301 s ahead" into 300 s (accepted) now and then.
        ("timestamp 310 s old", signed(secret, msg_id="msg_t", timestamp=now - 310), BODY,
         "webhook_timestamp_out_of_tolerance"),
        ("timestamp a day old", signed(secret, msg_id="msg_t", timestamp=now - 86400), BODY,
         "webhook_timestamp_out_of_tolerance"),
        ("timestamp 310 s ahead", signed(secret, msg_id="msg_t", timestamp=now + 310), BODY,
         "webhook_timestamp_out_of_tolerance"),
        ("timestamp in ms", {**good, "webhook-timestamp": str(now * 1000)}, BODY,
         "webhook_timestamp_out_of_tolerance"),
        ("timestamp not a number", {**good, "webhook-timestamp": "yesterday"}, BODY,
         "webhook_timestamp_invalid"),
        ("timestamp negative", {**good, "webhook-timestamp": "-5"}, BODY,
         "webhook_timestamp_invalid"),
        ("no webhook-id", without["webhook-id"], BODY, "webhook_headers_missing"),
        ("no webhook-timestamp", without["webhook-timestamp"], BODY, "webhook_headers_missing"),
        ("webhook-id 256 chars", signed(secret, msg_id="m" * 256), BODY, "webhook_id_invalid"),
    ]  # fmt: skip


TAMPERED_IDS = [case[0] for case in _tampered(generate_secret())]


@pytest.mark.parametrize("case", range(len(TAMPERED_IDS)), ids=TAMPERED_IDS)
async def test_bad_webhook_signature_is_401_and_writes_nothing(
    lr: InProcess, secret: str, case: int
) -> None:
    _, headers, body, code = _tampered(secret)[case]
    response = await lr.client.post("/api/leads", content=body, headers=headers)
    assert response.status_code == 401, response.text
    assert response.json() == {
        "error": {"code": code, "message": response.json()["error"]["message"]}
    }
    assert response.json()["error"]["message"]
    assert await counts(lr) == (0, 0)


async def test_no_signature_header_falls_back_to_needing_a_token(
    lr: InProcess, secret: str
) -> None:
    headers = {k: v for k, v in signed(secret).items() if k != "webhook-signature"}
    response = await lr.client.post("/api/leads", content=BODY, headers=headers)
    assert response.status_code == 401 and response.json()["error"]["code"] == "missing_token"
    assert await counts(lr) == (0, 0)


async def test_rotated_secret_keeps_working_through_its_grace(lr: InProcess, secret: str) -> None:
    new = await webhook_secrets.current_secret(lr.store, rotate=True, grace_hours=1)
    assert new != secret
    assert await webhook_secrets.current_secret(lr.store) == new
    old_signed = await lr.client.post("/api/leads", content=BODY, headers=signed(secret))
    new_signed = await lr.client.post("/api/leads", content=BODY, headers=signed(new))
    assert (old_signed.status_code, new_signed.status_code) == (201, 201)


async def test_rotated_secret_stops_working_after_its_grace(lr: InProcess, secret: str) -> None:
    await webhook_secrets.current_secret(lr.store, rotate=True, grace_hours=0)
    response = await lr.client.post("/api/leads", content=BODY, headers=signed(secret))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "webhook_signature_invalid"
    assert await counts(lr) == (0, 0)


async def test_redelivery_signed_with_the_rotated_secret_returns_the_first_lead(
    lr: InProcess, secret: str
) -> None:
    first = await lr.client.post("/api/leads", content=BODY, headers=signed(secret, msg_id="m1"))
    new = await webhook_secrets.current_secret(lr.store, rotate=True)
    again = await lr.client.post("/api/leads", content=BODY, headers=signed(new, msg_id="m1"))
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert await counts(lr) == (1, 1)


async def test_two_rotations_keep_every_secret_in_its_grace(lr: InProcess, secret: str) -> None:
    second = await webhook_secrets.current_secret(lr.store, rotate=True)
    third = await webhook_secrets.current_secret(lr.store, rotate=True)
    for key in (secret, second, third):
        response = await lr.client.post("/api/leads", content=BODY, headers=signed(key))
        assert response.status_code == 201


# --- the same through a real `leadrelay serve` -------------------------------------------------


@pytest.fixture(scope="module")
def daemon(module_db: Path | str) -> Iterator[Serve]:
    with Serve(module_db, relay="off") as server:
        yield server


def _served_counts(server: Serve) -> tuple[int, int]:
    with httpx.Client(base_url=server.url, headers=server.auth(), timeout=10) as client:
        leads = client.get("/api/admin/leads", params={"limit": 500}).json()["leads"]
        events = client.get("/api/admin/events", params={"limit": 1000}).json()["events"]
    return len(leads), len(events)


async def _race(server: Serve, headers: dict[str, str], body: bytes) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=COPIES, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=server.url, limits=limits, timeout=30) as client:
        # every request on its own connection, all sent before any answer is read
        return list(
            await asyncio.gather(
                *(client.post("/api/leads", content=body, headers=headers) for _ in range(COPIES))
            )
        )


def _secret_of(db: Path | str) -> str:
    secret: str = cli_json(db, "webhooks", "secret")["secret"]
    return secret


async def test_serve_concurrent_identical_webhooks_make_one_lead(daemon: Serve) -> None:
    before = _served_counts(daemon)
    body = json.dumps({"name": "Serve webhook race"}).encode()
    responses = await _race(daemon, signed(_secret_of(daemon.db), body, msg_id="msg_serve"), body)
    lead_id = assert_one_winner(responses)
    assert _served_counts(daemon) == (before[0] + 1, before[1] + 1)
    events = httpx.get(
        f"{daemon.url}/api/admin/events", params={"lead_id": lead_id}, headers=daemon.auth()
    ).json()["events"]
    assert [e["event"] for e in events] == ["lead.assigned"]


async def test_serve_concurrent_identical_idempotency_keys_make_one_lead(daemon: Serve) -> None:
    before = _served_counts(daemon)
    headers = {**daemon.auth(), "Content-Type": "application/json", "Idempotency-Key": "serve-k"}
    responses = await _race(daemon, headers, json.dumps({"name": "Serve key race"}).encode())
    assert_one_winner(responses)
    assert _served_counts(daemon) == (before[0] + 1, before[1] + 1)


async def test_serve_bad_signatures_are_401(daemon: Serve) -> None:
    before = _served_counts(daemon)
    secret = _secret_of(daemon.db)
    async with httpx.AsyncClient(base_url=daemon.url, timeout=10) as client:
        for name, headers, body, code in _tampered(secret):
            response = await client.post("/api/leads", content=body, headers=headers)
            assert (response.status_code, response.json()["error"]["code"]) == (401, code), name
    assert _served_counts(daemon) == before


async def test_serve_same_key_from_two_tokens_makes_two_leads(daemon: Serve) -> None:
    other = cli_json(daemon.db, "tokens", "create", "--admin")["token"]
    key = {"Idempotency-Key": "serve-row-1"}
    async with httpx.AsyncClient(base_url=daemon.url, timeout=10) as client:
        answers = [
            await client.post(
                "/api/leads", json={"name": f"Caller {n}"}, headers={**daemon.auth(token), **key}
            )
            for n, token in enumerate((None, other, None, other))
        ]
    assert [a.status_code for a in answers] == [201, 201, 200, 200]
    assert [a.json()["name"] for a in answers] == ["Caller 0", "Caller 1", "Caller 0", "Caller 1"]


# --- a webhook-id is one delivery, whichever signed endpoint it went to ------------------------


async def _replay_across(client: httpx.AsyncClient, secret: str, admin: dict[str, str]) -> None:
    """The review's replay: a signed create whose body also carries `status` was answered
    `applied: true` on the status webhook, and the lead went back to `new`.  Now each
    endpoint answers the other's webhook-id 409 `webhook_id_reused`, and writes nothing."""
    create = json.dumps({"name": "Replayed", "external_id": "crm-replay", "status": "new"}).encode()
    headers = signed(secret, create, msg_id="msg_across")
    made = await client.post("/api/leads", content=create, headers=headers)
    assert made.status_code == 201, made.text
    lead = made.json()
    moved = await client.patch(
        f"/api/admin/leads/{lead['id']}", json={"status": "contacted"}, headers=admin
    )
    assert moved.status_code == 200

    replayed = await client.post("/api/leads/status", content=create, headers=headers)
    assert replayed.status_code == 409, replayed.text
    assert replayed.json()["error"]["code"] == "webhook_id_reused"
    after = await client.get(f"/api/admin/leads/{lead['id']}", headers=admin)
    assert after.json()["status"] == "contacted"

    # and the other way: a status webhook's id sent again as a create makes no lead
    change = json.dumps({"external_id": "crm-replay", "status": "qualified"}).encode()
    status_headers = signed(secret, change, msg_id="msg_status_first")
    first = await client.post("/api/leads/status", content=change, headers=status_headers)
    assert first.json()["applied"] is True
    body = json.dumps({"name": "Smuggled", "external_id": "crm-smuggled"}).encode()
    smuggled = await client.post(
        "/api/leads", content=body, headers=signed(secret, body, msg_id="msg_status_first")
    )
    assert smuggled.status_code == 409, smuggled.text
    assert smuggled.json()["error"]["code"] == "webhook_id_reused"
    found = await client.get(
        "/api/admin/leads", params={"external_id": "crm-smuggled"}, headers=admin
    )
    assert found.json()["leads"] == []
    # each endpoint still answers its own repeat as before
    again = await client.post("/api/leads", content=create, headers=headers)
    assert (again.status_code, again.json()["id"]) == (200, lead["id"])
    repeat = await client.post("/api/leads/status", content=change, headers=status_headers)
    assert (repeat.status_code, repeat.json()["applied"]) == (200, True)


async def test_webhook_id_is_refused_on_the_other_endpoint(lr: InProcess, secret: str) -> None:
    await _replay_across(lr.client, secret, lr.auth())


async def test_serve_webhook_id_is_refused_on_the_other_endpoint(daemon: Serve) -> None:
    async with httpx.AsyncClient(base_url=daemon.url, timeout=10) as client:
        await _replay_across(client, _secret_of(daemon.db), daemon.auth())
