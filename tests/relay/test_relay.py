"""The relay against a real soketi and a real `leadrelay serve`: every row of CONTRACT §1."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.contract import LEAD_KEYS
from support.serve import Serve, cli, cli_json, point_at_soketi
from support.soketi import Soketi
from support.subscriber import Received, Subscriber

pytestmark = [pytest.mark.soketi, pytest.mark.both_backends]


@pytest.fixture
def daemon(db: Path | str, soketi: Soketi) -> Iterator[Serve]:
    with Serve(db) as serve:
        point_at_soketi(db, soketi)
        yield serve


def post_lead(serve: Serve, **fields: Any) -> dict[str, Any]:
    response = httpx.post(
        f"{serve.url}/api/leads", json={"name": "Ada", **fields}, headers=serve.auth()
    )
    assert response.status_code == 201, response.text
    lead: dict[str, Any] = response.json()
    return lead


def patch(
    serve: Serve, lead_id: int, body: dict[str, Any], token: str | None = None, role: str = "admin"
) -> dict[str, Any]:
    response = httpx.patch(
        f"{serve.url}/api/{role}/leads/{lead_id}", json=body, headers=serve.auth(token)
    )
    assert response.status_code == 200, response.text
    lead: dict[str, Any] = response.json()
    return lead


def daemon_authorizer(serve: Serve, token: str) -> Any:
    """Channel auth the way pusher-js gets it: from the daemon's /broadcasting/auth."""

    def authorize(socket_id: str, channel: str) -> str:
        response = httpx.post(
            f"{serve.url}/broadcasting/auth",
            data={"socket_id": socket_id, "channel_name": channel},
            headers=serve.auth(token),
        )
        assert response.status_code == 200, response.text
        auth: str = response.json()["auth"]
        return auth

    return authorize


def events_for(received: list[Received], lead_id: int) -> list[tuple[str, int]]:
    return [(r.event, r.data["seq"]) for r in received if r.data["lead"]["id"] == lead_id]


def test_relay_delivers_every_contract_row(daemon: Serve, soketi: Soketi) -> None:
    a = cli_json(daemon.db, "providers", "add", "Acme")
    b = cli_json(daemon.db, "providers", "add", "Bolt")
    chan_a, chan_b = f"private-provider.{a['id']}", f"private-provider.{b['id']}"
    with (
        Subscriber(soketi, ["admin"]) as admin,
        Subscriber(soketi, [chan_a], authorizer=daemon_authorizer(daemon, a["token"])) as sub_a,
        Subscriber(soketi, [chan_b], authorizer=daemon_authorizer(daemon, b["token"])) as sub_b,
    ):
        # creation: admin always, the assigned provider's private channel
        lead = post_lead(daemon, provider_id=a["id"], email="ada@example.com")
        unassigned = post_lead(daemon, name="Nobody's")
        # a status change by an admin, then by the provider, then one that changes nothing
        patch(daemon, lead["id"], {"status": "contacted"})
        patch(daemon, lead["id"], {"status": "qualified"}, a["token"], role="provider")
        patch(daemon, lead["id"], {"status": "qualified"}, a["token"], role="provider")
        # reassignment to another provider, then a status change there
        patch(daemon, lead["id"], {"provider_id": b["id"]})
        patch(daemon, lead["id"], {"status": "converted"}, b["token"], role="provider")

        admin.wait_for(6, "admin")
        sub_b.wait_for(2, chan_b)
        sub_a.wait_for(3, chan_a)
        time.sleep(0.5)  # anything wrongly sent would arrive by now

    assert events_for(admin.received, lead["id"]) == [
        ("lead.assigned", 1),
        ("lead.status.updated", 2),
        ("lead.status.updated", 3),
        ("lead.assigned", 4),
        ("lead.status.updated", 5),
    ]
    assert events_for(admin.received, unassigned["id"]) == [("lead.assigned", 1)]
    assert events_for(sub_a.received, lead["id"]) == [
        ("lead.assigned", 1),
        ("lead.status.updated", 2),
        ("lead.status.updated", 3),
    ]
    assert events_for(sub_b.received, lead["id"]) == [
        ("lead.assigned", 4),
        ("lead.status.updated", 5),
    ]
    assert events_for(sub_a.received, unassigned["id"]) == []
    assert len(admin.received) == 6

    created = admin.received[0]
    assert created.event == "lead.assigned" and created.channel == "admin"
    assert set(created.data) == {"event_id", "type", "seq", "occurred_at", "lead"}
    assert set(created.data["lead"]) == LEAD_KEYS
    assert created.data["lead"]["email"] == "ada@example.com"
    status_events = [r.data for r in admin.received if r.event == "lead.status.updated"]
    by_admin, by_provider = status_events[:2]
    assert by_admin["old_status"] == "new" and by_admin["new_status"] == "contacted"
    assert by_admin["changed_by"] == {"role": "admin", "provider_id": None}
    assert by_provider["changed_by"] == {"role": "provider", "provider_id": a["id"]}
    # the same event reaches both channels with the same event_id
    assert sub_a.received[0].data["event_id"] == created.data["event_id"]
    # and the events API has exactly what was broadcast
    stored = httpx.get(f"{daemon.url}/api/admin/events", headers=daemon.auth()).json()["events"]
    assert [e["data"] for e in stored] == [r.data for r in admin.received]


def test_relay_excludes_the_sending_socket(daemon: Serve, soketi: Soketi) -> None:
    with Subscriber(soketi, ["admin"]) as sender, Subscriber(soketi, ["admin"]) as other:
        response = httpx.post(
            f"{daemon.url}/api/leads",
            json={"name": "toOthers"},
            headers={**daemon.auth(), "X-Socket-ID": sender.socket_id},
        )
        assert response.status_code == 201
        other.wait_for(1, "admin")
        time.sleep(0.5)
    assert sender.received == []


def test_relay_picks_up_cli_writes_and_follows_enable_disable(
    daemon: Serve, soketi: Soketi
) -> None:
    with Subscriber(soketi, ["admin"]) as admin:
        cli(daemon.db, "leads", "create", "--name", "From the CLI")
        [first] = admin.wait_for(1, "admin")
        assert first.data["lead"]["name"] == "From the CLI"

        cli(daemon.db, "pusher", "disable")
        time.sleep(1.2)  # the daemon follows a settings change within a second
        cli(daemon.db, "leads", "create", "--name", "While disabled")
        time.sleep(1.0)
        assert len(admin.received) == 1
        status = cli_json(daemon.db, "outbox", "status")
        assert status["pending"] == 1 and status["pusher_enabled"] is False

        cli(daemon.db, "pusher", "enable")
        second = admin.wait_for(2, "admin")[1]
        assert second.data["lead"]["name"] == "While disabled"
    assert cli_json(daemon.db, "outbox", "status")["pending"] == 0


def test_relay_metrics_count_relayed_events(daemon: Serve, soketi: Soketi) -> None:
    with Subscriber(soketi, ["admin"]) as admin:
        for i in range(3):
            post_lead(daemon, name=f"m{i}")
        admin.wait_for(3, "admin")
    deadline = time.monotonic() + 5
    text = ""
    while time.monotonic() < deadline:
        text = httpx.get(f"{daemon.url}/metrics").text
        if "leadrelay_events_relayed_total 3.0" in text:
            break
        time.sleep(0.1)
    assert "leadrelay_events_relayed_total 3.0" in text
    assert "leadrelay_leads_received_total 3.0" in text
    assert "leadrelay_relay_latency_seconds_count 3.0" in text
    assert "leadrelay_outbox_pending 0" in text
    assert "leadrelay_relay_paused 0" in text.splitlines()
    # SQLite: one daemon holds the relay lease; PostgreSQL has none to hold (no gauge)
    held = "leadrelay_relay_lease_held 1" in text.splitlines()
    assert held == (not str(daemon.db).startswith("postgresql://")), text


def test_test_connection_success_and_each_failure(tmp_path: Path, soketi: Soketi) -> None:
    db = tmp_path / "tc.db"
    missing = cli(db.parent / "missing.db", "test-connection", check=False)
    assert missing.returncode == 2 and "no database" in missing.stderr
    with Serve(db):
        pass
    point_at_soketi(db, soketi, enable=False)
    ok = cli(db, "test-connection", "--roundtrip")
    assert ok.returncode == 0
    assert f"127.0.0.1:{soketi.port}" in ok.stdout and "ms" in ok.stdout
    assert soketi.secret not in ok.stdout + ok.stderr

    cli(db, "pusher", "set", "--secret", "wrong-secret-value")
    wrong = cli(db, "test-connection", check=False)
    assert wrong.returncode == 14 and "secret" in wrong.stderr
    assert "wrong-secret-value" not in wrong.stdout + wrong.stderr
    assert "Traceback" not in wrong.stderr

    cli(db, "pusher", "set", "--secret", soketi.secret, "--app-id", "999")
    unknown = cli(db, "test-connection", check=False)
    assert unknown.returncode == 15 and "app id" in unknown.stderr

    from support.soketi import free_port

    cli(db, "pusher", "set", "--app-id", soketi.app_id, "--port", str(free_port()))
    closed = cli(db, "test-connection", check=False)
    assert closed.returncode == 11 and "refused" in closed.stderr
    assert len(closed.stderr.strip().splitlines()) == 1
