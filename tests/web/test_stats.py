"""The day at a glance (GET /api/admin/stats, /api/provider/stats) and a lead's timeline with
its delivery (GET /api/admin/leads/{id}/events), on both backends."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from leadrelay import speed
from leadrelay.config import Settings
from leadrelay.store.sqlite.schema import MIGRATIONS
from support.app import InProcess, running_app
from support.database import execute, rows

pytestmark = [pytest.mark.anyio, pytest.mark.both_backends]


async def get(lr: InProcess, path: str, token: str | None = None, **params: Any) -> Any:
    answer = await lr.client.get(path, params=params, headers=lr.auth(token))
    assert answer.status_code == 200, answer.text
    return answer.json()


async def patch(
    lr: InProcess, lead: dict[str, Any], change: dict[str, Any], token: str | None = None
) -> None:
    role = "provider" if token else "admin"
    answer = await lr.client.patch(
        f"/api/{role}/leads/{lead['id']}", json=change, headers=lr.auth(token)
    )
    assert answer.status_code == 200, answer.text


def recount(db: Path | str) -> dict[tuple[int, str], int]:
    counted = rows(
        db,
        "SELECT coalesce(provider_id, 0) AS p, status, count(*) AS n FROM leads GROUP BY 1, 2",
    )
    return {(int(r["p"]), r["status"]): int(r["n"]) for r in counted}


def counters(db: Path | str) -> dict[tuple[int, str], int]:
    summed = rows(db, "SELECT provider_id, status, sum(n) AS n FROM lead_counts GROUP BY 1, 2")
    return {(int(r["provider_id"]), r["status"]): int(r["n"]) for r in summed if int(r["n"])}


async def test_stats_count_who_waits_and_each_providers_speed_to_contact(
    settings: Settings,
) -> None:
    async with running_app(settings) as lr:
        acme, bolt = await lr.add_provider("Acme"), await lr.add_provider("Bolt")
        first = (await lr.create_lead(name="Waits Longest")).json()
        await lr.create_lead(name="Waits Too")
        mine = (await lr.create_lead(name="Acme's", provider_id=acme["id"])).json()
        moved = (await lr.create_lead(name="Moved", provider_id=acme["id"])).json()
        done = (await lr.create_lead(name="Done", provider_id=bolt["id"])).json()

        await patch(lr, mine, {"status": "contacted"}, acme["token"])  # Acme's first contact
        await patch(lr, mine, {"status": "qualified"}, acme["token"])  # not a first one
        await patch(lr, moved, {"status": "contacted"})  # an admin's change: no contact
        await patch(lr, moved, {"provider_id": bolt["id"]})  # assigned to Bolt today
        await patch(lr, moved, {"status": "qualified"}, bolt["token"])  # Bolt's first contact
        await patch(lr, done, {"status": "lost"})

        stats = await get(lr, "/api/admin/stats")
        assert stats["statuses"] == {
            "new": 2,
            "contacted": 0,
            "qualified": 2,
            "converted": 0,
            "lost": 1,
        }
        assert (stats["total"], stats["open"]) == (5, 4)
        waiting = stats["unassigned"]
        assert waiting["waiting"] == 2 and waiting["oldest_created_at"] == first["created_at"]
        assert 0 <= waiting["oldest_age_seconds"] < 60
        by_name = {p["name"]: p for p in stats["providers"]}
        assert {k: by_name["Acme"][k] for k in ("open", "waiting", "assigned_today")} == {
            "open": 1,
            "waiting": 0,
            "assigned_today": 2,
        }
        assert {k: by_name["Bolt"][k] for k in ("open", "waiting", "assigned_today")} == {
            "open": 1,
            "waiting": 0,
            "assigned_today": 2,
        }
        for name in ("Acme", "Bolt"):
            assert by_name[name]["contacted"] == 1
            assert 0 <= by_name[name]["median_contact_seconds"] < 5
        assert stats["contact"]["contacted"] == 2
        assert stats["hours"][-1]["created"] == 5
        assert stats["hours"][-1]["hour"] == datetime.now(UTC).strftime("%Y-%m-%dT%H:00:00Z")

        own = await get(lr, "/api/provider/stats", bolt["token"])
        assert (own["open"], own["waiting"], own["assigned_today"]) == (1, 0, 2)
        assert own["statuses"]["lost"] == 1 and own["contacted"] == 1
        refused = await lr.client.get("/api/admin/stats", headers=lr.auth(acme["token"]))
        assert refused.status_code == 403
        assert counters(settings.db) == recount(settings.db)


async def test_stats_counters_agree_with_a_count_of_the_leads_after_every_kind_of_change(
    settings: Settings,
) -> None:
    async with running_app(settings) as lr:
        acme = await lr.add_provider("Acme")
        leads = [(await lr.create_lead(name=f"L{n}")).json() for n in range(6)]
        await patch(lr, leads[0], {"provider_id": acme["id"], "status": "contacted"})
        await patch(lr, leads[1], {"status": "lost"})
        await patch(lr, leads[1], {"status": "lost"})  # no change, no count
        await patch(lr, leads[2], {"provider_id": acme["id"]})
        await patch(lr, leads[2], {"status": "converted"}, acme["token"])
        status = await lr.client.post(
            "/api/leads/status",
            json={"id": leads[3]["id"], "status": "qualified", "provider_id": acme["id"]},
            headers=lr.auth(),
        )
        assert status.status_code == 200, status.text
        assert (
            await lr.client.delete(f"/api/admin/leads/{leads[4]['id']}", headers=lr.auth())
        ).is_success
        assert counters(settings.db) == recount(settings.db)
        assert (await get(lr, "/api/admin/providers"))["providers"][0]["leads"] == 3


@pytest.mark.parametrize(
    ("since", "hours_back"),
    [
        (None, None),  # 00:00 UTC today
        ("offset", 5),  # the caller's midnight, five hours ago
        ("long ago", 48),  # moved to the last 48 hours
        ("past 9999", 0),  # UTC past year 9999: now
    ],
)
async def test_stats_since_starts_the_hours_of_today(
    settings: Settings, since: str | None, hours_back: int | None
) -> None:
    now = datetime.now(UTC)
    params = {}
    if since == "offset":
        minus_three = timezone(timedelta(hours=-3))
        params["since"] = (now - timedelta(hours=5)).astimezone(minus_three).isoformat()
    elif since == "long ago":
        params["since"] = "2020-01-01T00:00:00Z"
    elif since == "past 9999":
        params["since"] = "9999-12-31T23:59:59-23:59"
    async with running_app(settings) as lr:
        stats = await get(lr, "/api/admin/stats", **params)
    first = datetime.fromisoformat(stats["hours"][0]["hour"].replace("Z", "+00:00"))
    expected = (
        now.replace(hour=0, minute=0, second=0, microsecond=0)
        if hours_back is None
        else (now - timedelta(hours=hours_back)).replace(minute=0, second=0, microsecond=0)
    )
    assert abs((first - expected).total_seconds()) <= 3600  # the clock may pass an hour
    assert stats["hours"][-1]["hour"] >= now.strftime("%Y-%m-%dT%H")


async def test_stats_refuse_a_since_that_is_no_time(settings: Settings) -> None:
    async with running_app(settings) as lr:
        for bad in ("yesterday", "2026-12-06T00:00:00", "2026-02-30T00:00:00Z"):
            answer = await lr.client.get(
                "/api/admin/stats", params={"since": bad}, headers=lr.auth()
            )
            assert answer.status_code == 422, bad
            assert answer.json()["error"]["code"] == "invalid_query"


async def test_stats_speed_to_contact_counts_days_in_the_window(settings: Settings) -> None:
    async with running_app(settings) as lr:
        acme = await lr.add_provider("Acme")
        lead = (await lr.create_lead(name="Old", provider_id=acme["id"])).json()
        await patch(lr, lead, {"status": "contacted"}, acme["token"])
        long_ago = (datetime.now(UTC) - timedelta(days=10)).strftime("%Y-%m-%d")
        execute(settings.db, "UPDATE contact_times SET day = ?", long_ago)
        execute(
            settings.db,
            "INSERT INTO contact_times (day, provider_id, bucket, n"
            + (", slot" if not isinstance(settings.db, Path) else "")
            + ") VALUES (?, ?, ?, ?"
            + (", 0" if not isinstance(settings.db, Path) else "")
            + ")",
            datetime.now(UTC).strftime("%Y-%m-%d"),
            acme["id"],
            speed.bucket_of(600),
            3,
        )
        week = (await get(lr, "/api/admin/stats"))["providers"][0]
        month = (await get(lr, "/api/admin/stats", window_days=30))["providers"][0]
    assert week["contacted"] == 3 and 500 < week["median_contact_seconds"] < 720
    assert month["contacted"] == 4


async def test_lead_events_show_each_events_delivery(settings: Settings) -> None:
    async with running_app(settings) as lr:
        acme = await lr.add_provider("Acme")
        lead = (await lr.create_lead(name="Traced", provider_id=acme["id"])).json()
        await patch(lr, lead, {"status": "contacted"}, acme["token"])
        await patch(lr, lead, {"status": "qualified"})
        first, second, third = (
            e["id"] for e in (await get(lr, f"/api/admin/leads/{lead['id']}/events"))["events"]
        )
        execute(
            settings.db,
            "UPDATE events SET state = 'delivered', delivered_at = ?, attempts = 1 WHERE id = ?",
            time.time(),
            first,
        )
        execute(
            settings.db,
            "UPDATE events SET state = 'dead', attempts = 3, last_error = ? WHERE id = ?",
            "HTTP 401: the secret authentication failed",
            second,
        )
        execute(
            settings.db,
            "UPDATE events SET attempts = 1, last_error = ? WHERE id = ?",
            "timeout",
            third,
        )
        timeline = await get(lr, f"/api/admin/leads/{lead['id']}/events")
        assert timeline["lead"]["name"] == "Traced"
        events = timeline["events"]
        assert [e["event"] for e in events] == [
            "lead.assigned",
            "lead.status.updated",
            "lead.status.updated",
        ]
        assert events[1]["data"]["changed_by"] == {"role": "provider", "provider_id": acme["id"]}
        assert events[2]["data"]["changed_by"]["role"] == "admin"
        delivery = [e["delivery"] for e in events]
        assert delivery[0]["state"] == "delivered" and delivery[0]["delivered_at"]
        assert delivery[1] == {
            "state": "dead",
            "delivered_at": None,
            "attempts": 3,
            "last_error": "HTTP 401: the secret authentication failed",
            "next_attempt_at": None,
        }
        assert delivery[2]["state"] == "retrying" and delivery[2]["next_attempt_at"]
        missing = await lr.client.get("/api/admin/leads/999/events", headers=lr.auth())
        assert missing.status_code == 404
        refused = await lr.client.get(
            f"/api/admin/leads/{lead['id']}/events", headers=lr.auth(acme["token"])
        )
        assert refused.status_code == 403


def test_stats_migration_counts_what_was_stored_before_it(tmp_path: Path) -> None:
    """An older SQLite database: the counters start from its leads and stored assignments."""
    from leadrelay.store.sqlite.connection import connect, migrate, statements

    db = tmp_path / "old.db"
    conn = connect(db, durable=False)
    conn.execute("CREATE TABLE migrations (version INTEGER PRIMARY KEY, applied_at REAL)")
    for version, sql in MIGRATIONS[:5]:
        for statement in statements(sql):
            conn.execute(statement)
        conn.execute("INSERT INTO migrations VALUES (?, ?)", (version, 0))
    conn.execute("INSERT INTO providers (id, name, created_at) VALUES (7, 'Acme', 'x')")
    for n, (provider, status) in enumerate([(7, "new"), (None, "new"), (7, "lost")], start=1):
        conn.execute(
            "INSERT INTO leads (id, name, status, provider_id, created_at, updated_at) "
            "VALUES (?, 'x', ?, ?, '2026-12-06T09:30:00.000Z', '2026-12-06T09:30:00.000Z')",
            (n, status, provider),
        )
        conn.execute(
            "INSERT INTO events (event_id, lead_id, seq, type, channels, provider_id, payload, "
            "next_attempt_at, created_at) VALUES (?, ?, 1, 'lead.assigned', '[]', ?, '{}', 0, ?)",
            (f"e{n}", n, provider, datetime(2026, 12, 6, 9, 30, tzinfo=UTC).timestamp()),
        )
    migrate(conn)
    assert counters(db) == recount(db) == {(7, "new"): 1, (0, "new"): 1, (7, "lost"): 1}
    hours = conn.execute("SELECT * FROM lead_hours ORDER BY provider_id").fetchall()
    assert [tuple(row) for row in hours] == [("2026-12-06T09", 0, 1, 0), ("2026-12-06T09", 7, 2, 2)]
    pending = conn.execute("SELECT count(*) FROM leads WHERE search_pending = 1").fetchone()[0]
    assert pending == 3  # the indexer writes their keys once the daemon runs
    conn.close()
    assert sqlite3.connect(db).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
