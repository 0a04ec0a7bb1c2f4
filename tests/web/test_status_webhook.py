"""`POST /api/leads/status` in-process: what it accepts, what it refuses, and its rules.

The rules a CRM relies on: the lead is found by the CRM's own id; a change older than the
last one applied from the CRM is not applied (`stale`); a repeated key answers the first
answer again and fires nothing; keys belong to their caller; every refusal is the
contract's error body.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from leadrelay import accounts, crm_status
from leadrelay.config import Settings
from leadrelay.errors import ValidationFailed
from leadrelay.web import webhook_secrets
from leadrelay.web.webhooks import sign_headers
from support.app import InProcess, running_app

pytestmark = [pytest.mark.anyio, pytest.mark.both_backends]

PATH = "/api/leads/status"


@pytest.fixture
async def lr(settings: Settings) -> AsyncIterator[InProcess]:
    async with running_app(settings) as app:
        yield app


async def create(lr: InProcess, external_id: str = "crm-1", **fields: Any) -> dict[str, Any]:
    response = await lr.create_lead(external_id=external_id, **fields)
    assert response.status_code == 201, response.text
    lead: dict[str, Any] = response.json()
    return lead


async def change(lr: InProcess, body: Any, **headers: str) -> Any:
    return await lr.client.post(PATH, json=body, headers={**lr.auth(), **headers})


async def event_types(lr: InProcess, lead_id: int) -> list[tuple[str, Any]]:
    """(event, changed_by role or None) for each stored event of the lead, oldest first."""
    page = await lr.client.get("/api/admin/events", params={"lead_id": lead_id}, headers=lr.auth())
    return [
        (e["event"], e["data"].get("changed_by", {}).get("role")) for e in page.json()["events"]
    ]


def assert_error(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json() == {
        "error": {"code": code, "message": response.json()["error"]["message"]}
    }
    assert response.json()["error"]["message"]


# --- what it does --------------------------------------------------------------------------


async def test_status_webhook_by_id_or_external_id(lr: InProcess) -> None:
    lead = await create(lr)
    by_external = await change(lr, {"external_id": "crm-1", "status": "contacted"})
    by_id = await change(lr, {"id": lead["id"], "status": "qualified"})
    assert [r.json()["lead"]["status"] for r in (by_external, by_id)] == ["contacted", "qualified"]
    assert [r.json()["applied"] for r in (by_external, by_id)] == [True, True]
    assert await event_types(lr, lead["id"]) == [
        ("lead.assigned", None),
        ("lead.status.updated", "crm"),
        ("lead.status.updated", "crm"),
    ]


async def test_status_webhook_same_status_fires_nothing(lr: InProcess) -> None:
    lead = await create(lr)
    same = await change(lr, {"external_id": "crm-1", "status": "new"})
    assert same.status_code == 200
    assert (same.json()["applied"], same.json()["reason"]) == (False, "unchanged")
    assert await event_types(lr, lead["id"]) == [("lead.assigned", None)]


async def test_status_webhook_reassigns_then_changes_status(lr: InProcess) -> None:
    provider = await lr.add_provider("Acme")
    lead = await create(lr)
    body = {"external_id": "crm-1", "status": "contacted", "provider_id": provider["id"]}
    answer = (await change(lr, body)).json()
    assert answer["lead"]["provider_id"] == provider["id"] and answer["applied"] is True
    page = await lr.client.get(
        "/api/admin/events", params={"lead_id": lead["id"]}, headers=lr.auth()
    )
    events = page.json()["events"]
    # the new provider hears of the lead before it hears of its status
    assert [(e["event"], e["data"]["seq"]) for e in events] == [
        ("lead.assigned", 1),
        ("lead.assigned", 2),
        ("lead.status.updated", 3),
    ]
    assert events[2]["channels"] == ["admin", f"private-provider.{provider['id']}"]
    assert events[2]["data"]["changed_by"] == {"role": "crm", "provider_id": None}


async def test_status_webhook_stale_change_leaves_the_lead(lr: InProcess) -> None:
    lead = await create(lr)
    newer = {"external_id": "crm-1", "status": "qualified", "changed_at": "2026-12-01T10:00:00Z"}
    older = {**newer, "status": "contacted", "changed_at": "2026-12-01T09:59:59.999Z"}
    assert (await change(lr, newer)).json()["applied"] is True
    stale = (await change(lr, older)).json()
    assert (stale["applied"], stale["reason"], stale["lead"]["status"]) == (
        False,
        "stale",
        "qualified",
    )
    # an admin's change is not the CRM's: it moves nothing the stale rule compares
    await lr.client.patch(
        f"/api/admin/leads/{lead['id']}", json={"status": "lost"}, headers=lr.auth()
    )
    same_time = await change(lr, {**newer, "status": "converted"})
    assert same_time.json()["applied"] is True  # not older than the mark: applied
    assert [t for t, _ in await event_types(lr, lead["id"])].count("lead.status.updated") == 3


async def test_status_webhook_unchanged_still_moves_the_mark(lr: InProcess) -> None:
    await create(lr)
    at = "2026-12-01T10:00:00Z"
    unchanged = await change(lr, {"external_id": "crm-1", "status": "new", "changed_at": at})
    assert unchanged.json()["reason"] == "unchanged"
    late = await change(
        lr, {"external_id": "crm-1", "status": "contacted", "changed_at": "2026-12-01T09:00:00Z"}
    )
    assert late.json()["reason"] == "stale"


async def test_status_webhook_without_changed_at_is_always_applied(lr: InProcess) -> None:
    await create(lr)
    dated = {"external_id": "crm-1", "status": "qualified", "changed_at": "2026-12-01T10:00:00Z"}
    assert (await change(lr, dated)).json()["applied"] is True
    undated = await change(lr, {"external_id": "crm-1", "status": "contacted"})
    assert undated.json()["applied"] is True
    # and it moved no mark: an older dated change is still stale
    older = {**dated, "status": "lost", "changed_at": "2026-12-01T09:00:00Z"}
    assert (await change(lr, older)).json()["reason"] == "stale"


async def test_status_webhook_repeated_key_answers_the_first_answer(lr: InProcess) -> None:
    lead = await create(lr)
    body = {"external_id": "crm-1", "status": "contacted"}
    first = await change(lr, body, **{"Idempotency-Key": "s-1"})
    again = await change(lr, {**body, "status": "lost"}, **{"Idempotency-Key": "s-1"})
    assert again.json() == first.json()
    assert again.json()["lead"]["status"] == "contacted"
    assert len(await event_types(lr, lead["id"])) == 2


async def test_status_webhook_keys_belong_to_their_caller(lr: InProcess) -> None:
    lead = await create(lr)
    other = await accounts.create_admin_token(lr.store)
    assert other is not None
    key = {"Idempotency-Key": "row-9"}
    first = await change(lr, {"external_id": "crm-1", "status": "contacted"}, **key)
    second = await lr.client.post(
        PATH, json={"id": lead["id"], "status": "qualified"}, headers={**lr.auth(other), **key}
    )
    assert [r.json()["applied"] for r in (first, second)] == [True, True]
    assert second.json()["lead"]["status"] == "qualified"
    # and a lead's key is not a status change's: the same key creates a lead
    created = await lr.client.post("/api/leads", json={"name": "Bo"}, headers={**lr.auth(), **key})
    assert created.status_code == 201


async def test_status_webhook_signed_and_replayed(lr: InProcess) -> None:
    lead = await create(lr)
    secret = await webhook_secrets.current_secret(lr.store)
    raw = json.dumps({"external_id": "crm-1", "status": "contacted"}).encode()
    headers = {"Content-Type": "application/json", **sign_headers(secret, raw, msg_id="m-1")}
    first = await lr.client.post(PATH, content=raw, headers=headers)
    again = await lr.client.post(PATH, content=raw, headers=headers)
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json() == first.json() and first.json()["applied"] is True
    assert len(await event_types(lr, lead["id"])) == 2
    # the same webhook-id on the lead intake is the same delivery, refused there
    lead_raw = json.dumps({"name": "Cy"}).encode()
    signed = {"Content-Type": "application/json", **sign_headers(secret, lead_raw, msg_id="m-1")}
    reused = await lr.client.post("/api/leads", content=lead_raw, headers=signed)
    assert_error(reused, 409, "webhook_id_reused")


async def test_create_with_a_known_external_id_returns_that_lead(lr: InProcess) -> None:
    first = await create(lr, "crm-7", email="a@example.com")
    again = await lr.client.post(
        "/api/leads",
        json={"name": "Other", "external_id": "crm-7"},
        headers={**lr.auth(), "Idempotency-Key": "k-7"},
    )
    assert (again.status_code, again.json()) == (200, first)
    # the key now names that lead too
    replay = await lr.client.post(
        "/api/leads", json={"name": "Third"}, headers={**lr.auth(), "Idempotency-Key": "k-7"}
    )
    assert (replay.status_code, replay.json()["id"]) == (200, first["id"])
    rows = await lr.store.fetch_all("SELECT id FROM leads")
    assert rows == [{"id": first["id"]}]
    found = await lr.client.get(
        "/api/admin/leads", params={"external_id": "crm-7"}, headers=lr.auth()
    )
    assert [lead["id"] for lead in found.json()["leads"]] == [first["id"]]
    none = await lr.client.get("/api/admin/leads", params={"external_id": "x"}, headers=lr.auth())
    assert none.json()["leads"] == []


async def test_empty_external_id_is_none(lr: InProcess) -> None:
    one = await lr.create_lead(name="One", external_id="")
    two = await lr.create_lead(name="Two", external_id="")
    assert (one.status_code, two.status_code) == (201, 201)
    assert one.json()["id"] != two.json()["id"]


# --- what it refuses --------------------------------------------------------------------------


REFUSED: list[tuple[str, Any, str]] = [
    ("unknown status", {"external_id": "crm-1", "status": "won"}, "unknown_status"),
    ("no status", {"external_id": "crm-1"}, "missing_field"),
    ("status not a string", {"external_id": "crm-1", "status": 3}, "unknown_status"),
    ("neither id nor external_id", {"status": "contacted"}, "missing_field"),
    ("both id and external_id", {"id": 1, "external_id": "crm-1", "status": "lost"},
     "invalid_field"),
    ("id not a number", {"id": "1", "status": "lost"}, "invalid_field"),
    ("id zero", {"id": 0, "status": "lost"}, "invalid_field"),
    ("id past 64 bits", {"id": 2**63, "status": "lost"}, "invalid_field"),
    ("external_id empty", {"external_id": "", "status": "lost"}, "invalid_field"),
    ("external_id a number", {"external_id": 7, "status": "lost"}, "invalid_field"),
    ("external_id too long", {"external_id": "x" * 201, "status": "lost"}, "invalid_field"),
    # found by the fuzz test under load: PostgreSQL's text refuses NUL, which was a 503
    ("external_id with NUL", {"external_id": "crm-\x00", "status": "lost"}, "invalid_field"),
    ("unknown provider", {"external_id": "crm-1", "status": "lost", "provider_id": 99},
     "unknown_provider"),
    ("provider not a number", {"external_id": "crm-1", "status": "lost", "provider_id": "a"},
     "invalid_field"),
    ("changed_at no offset", {"external_id": "crm-1", "status": "lost",
                              "changed_at": "2026-12-01T10:00:00"}, "invalid_field"),
    ("changed_at a date", {"external_id": "crm-1", "status": "lost",
                           "changed_at": "2026-12-01"}, "invalid_field"),
    ("changed_at month 13", {"external_id": "crm-1", "status": "lost",
                             "changed_at": "2026-13-01T10:00:00Z"}, "invalid_field"),
    ("changed_at a number", {"external_id": "crm-1", "status": "lost",
                             "changed_at": 1764583200}, "invalid_field"),
    ("body a list", [{"external_id": "crm-1", "status": "lost"}], "invalid_body"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "body", "code"), REFUSED, ids=[r[0] for r in REFUSED])
async def test_status_webhook_refuses_bad_bodies(
    lr: InProcess, name: str, body: Any, code: str
) -> None:
    lead = await create(lr)
    assert_error(await change(lr, body), 422, code)
    assert await event_types(lr, lead["id"]) == [("lead.assigned", None)]


async def test_status_webhook_unknown_lead_is_404(lr: InProcess) -> None:
    assert_error(await change(lr, {"external_id": "nope", "status": "lost"}), 404, "lead_not_found")
    assert_error(await change(lr, {"id": 12345, "status": "lost"}), 404, "lead_not_found")


async def test_status_webhook_needs_an_admin_or_a_signature(lr: InProcess) -> None:
    await create(lr)
    provider = await lr.add_provider("Acme")
    body = {"external_id": "crm-1", "status": "lost"}
    assert_error(await lr.client.post(PATH, json=body), 401, "missing_token")
    assert_error(
        await lr.client.post(PATH, json=body, headers=lr.auth("lr_not-a-token")),
        401,
        "invalid_token",
    )
    forbidden = await lr.client.post(PATH, json=body, headers=lr.auth(provider["token"]))
    assert_error(forbidden, 403, "admin_only")
    secret = await webhook_secrets.current_secret(lr.store)
    raw = json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **sign_headers(secret, raw)}
    tampered = raw.replace(b"lost", b"new")
    assert_error(
        await lr.client.post(PATH, content=tampered, headers=headers),
        401,
        "webhook_signature_invalid",
    )
    lead = (await lr.client.get("/api/admin/leads", headers=lr.auth())).json()["leads"][0]
    assert lead["status"] == "new"


async def test_status_webhook_body_limits_are_the_intakes(lr: InProcess) -> None:
    await create(lr)
    big = json.dumps({"external_id": "crm-1", "status": "lost", "pad": "x" * 70_000})
    response = await lr.client.post(
        PATH, content=big, headers={**lr.auth(), "Content-Type": "application/json"}
    )
    assert_error(response, 413, "payload_too_large")
    not_json = await lr.client.post(
        PATH, content=b"status=lost", headers={**lr.auth(), "Content-Type": "text/plain"}
    )
    assert not_json.status_code == 415
    broken = await lr.client.post(
        PATH, content=b"{", headers={**lr.auth(), "Content-Type": "application/json"}
    )
    assert broken.status_code == 400


async def test_status_webhook_other_methods_are_405(lr: InProcess) -> None:
    response = await lr.client.get(PATH, headers=lr.auth())
    assert response.status_code == 405 and response.headers["allow"] == "POST"


# --- changed_at --------------------------------------------------------------------------------


def micros(text: str) -> int:
    """Microseconds since the epoch of a UTC time written without an offset."""
    moment = datetime.fromisoformat(text).replace(tzinfo=UTC)
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


@pytest.mark.parametrize(
    ("given", "utc"),
    [
        ("2026-12-01T10:00:00Z", "2026-12-01T10:00:00"),
        ("2026-12-01t10:00:00z", "2026-12-01T10:00:00"),
        ("2026-12-01 11:30:00+01:30", "2026-12-01T10:00:00"),
        ("2026-12-01T10:00:00.123456789-00:00", "2026-12-01T10:00:00.123456"),
        ("2026-12-01T00:00:00.5+02:00", "2026-11-30T22:00:00.500000"),
        ("2016-12-31T23:59:60Z", "2016-12-31T23:59:59.999999"),  # a leap second
        ("0001-01-01T00:30:00+01:00", "0001-01-01T00:00:00"),  # before year 1 in UTC
        ("9999-12-31T23:59:59-01:00", "9999-12-31T23:59:59"),  # after year 9999 in UTC
    ],
)
def test_changed_at_counts_from_the_epoch_in_utc(given: str, utc: str) -> None:
    if given.startswith("0001"):
        assert crm_status.parse_changed_at(given) == micros("0001-01-01T00:00:00") - 1800 * 10**6
    elif given.startswith("9999"):
        assert crm_status.parse_changed_at(given) == micros(utc) + 3600 * 10**6
    else:
        assert crm_status.parse_changed_at(given) == micros(utc)


def test_changed_at_orders_across_offsets() -> None:
    earlier = crm_status.parse_changed_at("2026-12-01T10:59:59.999+01:00")
    later = crm_status.parse_changed_at("2026-12-01T10:00:00Z")
    assert earlier < later


@pytest.mark.parametrize(
    "given", ["yesterday", "2026-12-01T10:00Z", "0000-01-01T00:00:00Z", "2026-12-01T25:00:00Z",
              "2026-12-01T10:00:00+24:00", "2026-02-30T10:00:00Z", "２０２６-12-01T10:00:00Z",
              "2026-12-01T10:00:00Z\n", "2026-12-01T10:00:61Z"],
)  # fmt: skip
def test_changed_at_refuses_what_is_not_rfc3339(given: str) -> None:
    with pytest.raises(ValidationFailed):
        crm_status.parse_changed_at(given)
