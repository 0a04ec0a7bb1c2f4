"""A CRM's status webhook through a real `leadrelay serve` and a real soketi, on both backends.

The CRM sends its own id for the lead (`external_id`), signs with the webhook secret,
retries until it sees a 2xx and delivers out of order: what it relies on is that the event
reaches the dashboards as the CRM's change, that a retry fires nothing, and that a late
retry never rolls the lead back.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from leadrelay.web.webhooks import sign_headers
from support.contract import LEAD_KEYS
from support.serve import Serve, cli_json, point_at_soketi
from support.soketi import Soketi
from support.subscriber import Received, Subscriber

pytestmark = [pytest.mark.soketi, pytest.mark.both_backends]

CRM = {"role": "crm", "provider_id": None}


@pytest.fixture(scope="module")
def daemon(module_db: Path | str, soketi: Soketi) -> Iterator[Serve]:
    with Serve(module_db) as serve:
        point_at_soketi(module_db, soketi)
        yield serve


@pytest.fixture(scope="module")
def secret(daemon: Serve) -> str:
    value: str = cli_json(daemon.db, "webhooks", "secret")["secret"]
    return value


def create(serve: Serve, external_id: str, **fields: Any) -> httpx.Response:
    body = {"name": "Ada", "external_id": external_id, **fields}
    return httpx.post(f"{serve.url}/api/leads", json=body, headers=serve.auth(), timeout=10)


def send_status(
    serve: Serve, secret: str, body: dict[str, Any], msg_id: str | None = None
) -> httpx.Response:
    """A status webhook as a CRM sends it: signed, each attempt with a fresh timestamp."""
    raw = json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **sign_headers(secret, raw, msg_id=msg_id)}
    return httpx.post(f"{serve.url}/api/leads/status", content=raw, headers=headers, timeout=10)


def status_events(received: list[Received], lead_id: int) -> list[Received]:
    return [
        r for r in received if r.event == "lead.status.updated" and r.data["lead"]["id"] == lead_id
    ]


def stored_event_types(serve: Serve, lead_id: int) -> list[str]:
    page = httpx.get(
        f"{serve.url}/api/admin/events", params={"lead_id": lead_id}, headers=serve.auth()
    ).json()
    return [e["event"] for e in page["events"]]


def test_status_webhook_reaches_admin_and_provider_as_the_crm(
    daemon: Serve, soketi: Soketi, secret: str
) -> None:
    provider = cli_json(daemon.db, "providers", "add", "Acme")
    channel = f"private-provider.{provider['id']}"
    lead = create(daemon, "crm-100", provider_id=provider["id"]).json()
    with Subscriber(soketi, ["admin", channel]) as sub:
        answer = send_status(daemon, secret, {"external_id": "crm-100", "status": "contacted"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["applied"] is True and answer.json()["reason"] is None
        assert answer.json()["lead"]["status"] == "contacted"
        assert set(answer.json()["lead"]) == LEAD_KEYS
        sub.wait_for(1, "admin")
        sub.wait_for(1, channel)
    for on in ("admin", channel):
        (event,) = status_events(sub.on(on), lead["id"])
        assert event.data["changed_by"] == CRM
        assert (event.data["old_status"], event.data["new_status"]) == ("new", "contacted")
        assert event.data["seq"] == 2


def test_status_webhook_again_with_the_same_id_fires_nothing(
    daemon: Serve, soketi: Soketi, secret: str
) -> None:
    lead = create(daemon, "crm-200").json()
    body = {"external_id": "crm-200", "status": "qualified"}
    with Subscriber(soketi, ["admin"]) as sub:
        first = send_status(daemon, secret, body, msg_id="msg_status_200")
        sub.wait_for(1, "admin")
        # the CRM saw no 2xx (say), so it sends the same delivery again, signed afresh
        again = send_status(daemon, secret, body, msg_id="msg_status_200")
        time.sleep(0.5)  # an event wrongly fired would arrive by now
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json() == first.json()
    assert len(status_events(sub.received, lead["id"])) == 1
    assert stored_event_types(daemon, lead["id"]) == ["lead.assigned", "lead.status.updated"]


def test_status_webhook_stale_change_is_not_applied(daemon: Serve, secret: str) -> None:
    lead = create(daemon, "crm-300").json()
    newer = {"external_id": "crm-300", "status": "qualified", "changed_at": "2026-12-01T10:05:00Z"}
    # the retry of an earlier "contacted" arrives after "qualified"
    older = {
        "external_id": "crm-300",
        "status": "contacted",
        "changed_at": "2026-12-01T11:04:00+01:00",  # 10:04 UTC
    }
    assert send_status(daemon, secret, newer).json()["applied"] is True
    stale = send_status(daemon, secret, older)
    assert stale.status_code == 200
    assert (stale.json()["applied"], stale.json()["reason"]) == (False, "stale")
    assert stale.json()["lead"]["status"] == "qualified"
    assert stored_event_types(daemon, lead["id"]) == ["lead.assigned", "lead.status.updated"]


def test_status_webhook_out_of_order_ends_in_the_newest(
    daemon: Serve, soketi: Soketi, secret: str
) -> None:
    lead = create(daemon, "crm-400").json()
    changes = {
        "contacted": "2026-12-01T09:00:00Z",
        "qualified": "2026-12-01T09:10:00Z",
        "converted": "2026-12-01T09:20:00Z",
    }

    def change(status: str) -> dict[str, Any]:
        return {"external_id": "crm-400", "status": status, "changed_at": changes[status]}

    with Subscriber(soketi, ["admin"]) as sub:
        answers = [
            send_status(daemon, secret, change(status)).json()
            for status in ("qualified", "contacted", "converted")
        ]
        sub.wait_for(2, "admin")  # the two changes applied
        time.sleep(0.5)
    assert [(a["applied"], a["reason"]) for a in answers] == [
        (True, None),
        (False, "stale"),
        (True, None),
    ]
    events = status_events(sub.received, lead["id"])
    assert [(e.data["old_status"], e.data["new_status"]) for e in events] == [
        ("new", "qualified"),
        ("qualified", "converted"),
    ]
    assert [e.data["seq"] for e in events] == [2, 3]
    shown = httpx.get(f"{daemon.url}/api/admin/leads/{lead['id']}", headers=daemon.auth())
    assert shown.json()["status"] == "converted"


def test_status_webhook_before_the_create_is_404_then_lands(daemon: Serve, secret: str) -> None:
    body = {"external_id": "crm-500", "status": "contacted"}
    early = send_status(daemon, secret, body, msg_id="msg_status_500")
    assert early.status_code == 404
    assert early.json()["error"]["code"] == "lead_not_found"
    lead = create(daemon, "crm-500").json()
    # the sender retries the same delivery: the 404 stored nothing, so now it applies
    retried = send_status(daemon, secret, body, msg_id="msg_status_500")
    assert retried.status_code == 200 and retried.json()["applied"] is True
    assert stored_event_types(daemon, lead["id"]) == ["lead.assigned", "lead.status.updated"]


def test_create_with_a_known_external_id_returns_the_first_lead(daemon: Serve) -> None:
    first = create(daemon, "crm-600", email="ada@example.com")
    again = create(daemon, "crm-600", name="Another name")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    found = httpx.get(
        f"{daemon.url}/api/admin/leads", params={"external_id": "crm-600"}, headers=daemon.auth()
    ).json()["leads"]
    assert [lead["id"] for lead in found] == [first.json()["id"]]
    assert stored_event_types(daemon, first.json()["id"]) == ["lead.assigned"]


async def _race(serve: Serve, raw: bytes, headers: dict[str, str], copies: int) -> list[Any]:
    limits = httpx.Limits(max_connections=copies, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=serve.url, limits=limits, timeout=30) as client:
        return list(
            await asyncio.gather(
                *(
                    client.post("/api/leads/status", content=raw, headers=headers)
                    for _ in range(copies)
                )
            )
        )


@pytest.mark.anyio
async def test_status_webhook_copies_racing_in_fire_one_event(daemon: Serve, secret: str) -> None:
    lead = create(daemon, "crm-700").json()
    raw = json.dumps({"external_id": "crm-700", "status": "lost"}).encode()
    headers = {"Content-Type": "application/json", **sign_headers(secret, raw, msg_id="m-700")}
    answers = await _race(daemon, raw, headers, 30)
    assert {a.status_code for a in answers} == {200}
    assert len({a.text for a in answers}) == 1  # every copy, the first answer
    assert answers[0].json()["applied"] is True
    assert stored_event_types(daemon, lead["id"]) == ["lead.assigned", "lead.status.updated"]
