"""Retention: pruning old delivered events and expired keys, the 410 it leaves, cheap counts.

On both backends, but for the SQLite migration that first counted the stored events.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from leadrelay import leads
from leadrelay.cli.tail.history import ApiHistory, DaemonError, StoreHistory, TailError
from leadrelay.config import Settings
from leadrelay.store import open_store, retention
from leadrelay.store.base import Store
from leadrelay.store.sqlite import Store as SqliteStore
from leadrelay.store.sqlite.connection import connect, migrate
from leadrelay.store.sqlite.schema import MIGRATIONS
from support.app import running_app
from support.database import execute
from support.serve import Serve, cli_json

pytestmark = [pytest.mark.anyio, pytest.mark.both_backends]

DAY = 86400.0


async def _leads(store: Store, count: int, key_prefix: str | None = None) -> list[int]:
    ids = []
    for n in range(count):
        key = f"{key_prefix}{n}" if key_prefix else None
        fields = leads.parse_new_lead({"name": f"Lead {n}"})
        result = await leads.create_lead(store, fields, status="new", idempotency_key=key)
        ids.append(result.lead["id"])
    return ids


def _age(db: Path | str, sql: str, *params: object) -> None:
    """Make rows old, as time would (tests cannot wait thirty days)."""
    execute(db, sql, *params)


async def test_outbox_counters_follow_every_change(settings: Settings) -> None:
    store = await open_store(settings.db)
    try:
        await _leads(store, 6)
        await store.write(lambda tx: tx.mark_delivered([1, 2]))
        await store.write(lambda tx: tx.mark_retry([3], time.time(), "HTTP 500"))
        await store.write(lambda tx: tx.mark_dead([4], "HTTP 413"))
        await store.write(lambda tx: tx.mark_retry([5], time.time(), "timeout"))
        await store.write(lambda tx: tx.mark_dead([5], "gave up"))
        await store.write(lambda tx: tx.retry_dead(4))
        counted = await store.counted_outbox()
        kept = await store.outbox_counts()
        assert {k: kept[k] for k in counted} == counted
        assert (kept["pending"], kept["delivered"], kept["dead"], kept["retrying"]) == (3, 2, 1, 2)
        _age(settings.db, "DELETE FROM events WHERE id IN (1, 3)")  # delivered, retrying
        counted, kept = await store.counted_outbox(), await store.outbox_counts()
        names = ("pending", "delivered", "dead", "retrying", "total")
        assert [kept[n] for n in names] == [counted[n] for n in names] == [2, 1, 1, 1, 4]
    finally:
        await store.close()


async def test_migration_counts_the_events_already_stored(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    conn = connect(db, durable=True)
    conn.execute(
        "CREATE TABLE IF NOT EXISTS migrations (version INTEGER PRIMARY KEY, applied_at REAL)"
    )
    for statement in MIGRATIONS[0][1].split(";\n"):
        if statement.strip():
            conn.execute(statement)
    conn.execute("INSERT INTO migrations VALUES (1, 0)")
    conn.execute(
        "INSERT INTO leads (name, status, created_at, updated_at) VALUES ('A', 'new', '', '')"
    )
    for seq, state in enumerate(["pending", "delivered", "delivered", "dead"], start=1):
        conn.execute(
            "INSERT INTO events (event_id, lead_id, seq, type, channels, payload, state, "
            "next_attempt_at, created_at) VALUES (?, 1, ?, 'lead.assigned', '[]', '{}', ?, 0, 0)",
            (f"e{seq}", seq, state),
        )
    migrate(conn)
    conn.close()
    store = await SqliteStore.open(db)
    try:
        counts = await store.outbox_counts()
        assert (counts["pending"], counts["delivered"], counts["dead"]) == (1, 2, 1)
    finally:
        await store.close()


async def test_prune_deletes_only_old_delivered_events_and_expired_keys(
    settings: Settings,
) -> None:
    store = await open_store(settings.db)
    try:
        await _leads(store, 8, key_prefix="k")  # events 1..8, keys k0..k7
        await store.write(lambda tx: tx.mark_delivered([1, 2, 3, 5, 7]))
        await store.write(lambda tx: tx.mark_dead([4], "HTTP 413"))  # old but dead: kept
        # events 1-6 are 40 days old, 7-8 (7 delivered) are new; keys k0-k2 are past the TTL
        _age(settings.db, "UPDATE events SET created_at = created_at - ? WHERE id <= 6", 40 * DAY)
        _age(
            settings.db,
            "UPDATE idempotency_keys SET created_at = created_at - ? WHERE key IN (?, ?, ?)",
            *(100 * 3600, "k0", "k1", "k2"),
        )
        policy = retention.Policy.of(settings)
        dry = retention.prune(settings.db, policy, dry_run=True)
        assert (dry.events, dry.idempotency_keys) == (4, 3)
        assert (await store.outbox_counts())["total"] == 8  # a dry run removes nothing

        done = retention.prune(settings.db, policy, batch=2)  # several batches
        assert (done.events, done.idempotency_keys) == (4, 3)
        rows = await store.fetch_all("SELECT id, state FROM events ORDER BY id")
        assert [(r["id"], r["state"]) for r in rows] == [
            (4, "dead"),
            (6, "pending"),
            (7, "delivered"),
            (8, "pending"),
        ]
        keys = await store.fetch_all("SELECT key FROM idempotency_keys")
        assert sorted(row["key"] for row in keys) == [f"k{n}" for n in range(3, 8)]
        counts = await store.outbox_counts()
        assert (counts["delivered"], counts["total"]) == (1, 4)
        assert await retention.pruned_through(store) == 5
        again = retention.prune(settings.db, policy)
        assert (again.events, again.idempotency_keys) == (0, 0)
    finally:
        await store.close()


async def test_an_event_id_is_never_handed_out_again_after_a_prune(settings: Settings) -> None:
    """The newest events pruned, a new lead's event still gets a new id: a client whose
    cursor is past the pruned ids would never see an event under one of them."""
    store = await open_store(settings.db)
    try:
        await _leads(store, 5)
        await store.write(lambda tx: tx.mark_delivered([1, 2, 3, 4, 5]))
        _age(settings.db, "UPDATE events SET created_at = created_at - ?", 40 * DAY)
        done = retention.prune(settings.db, retention.Policy.of(settings))
        assert done.events == 5
        assert await store.fetch_all("SELECT id FROM events") == []
        await _leads(store, 1)
        rows = await store.fetch_all("SELECT id FROM events")
        assert [row["id"] for row in rows] == [6]
    finally:
        await store.close()


async def test_retention_zero_keeps_every_event(settings: Settings) -> None:
    keep_all = settings.replace(events_retention_days=0)
    store = await open_store(settings.db)
    try:
        await _leads(store, 3)
        await store.write(lambda tx: tx.mark_delivered([1, 2, 3]))
        _age(settings.db, "UPDATE events SET created_at = created_at - ?", 3650 * DAY)
        assert retention.prune(settings.db, retention.Policy.of(keep_all)).events == 0
        half_day = retention.Policy.of(settings.replace(events_retention_days=0.5))
        assert half_day.events_max_age == 12 * 3600
        assert retention.prune(settings.db, half_day).events == 3
    finally:
        await store.close()


async def test_events_api_answers_an_expired_cursor_with_410(settings: Settings) -> None:
    async with running_app(settings) as app:
        ids = await _leads(app.store, 5)
        event_ids = [
            row["event_id"]
            for row in await app.store.fetch_all("SELECT event_id FROM events ORDER BY id")
        ]
        await app.store.write(lambda tx: tx.mark_delivered([1, 2, 3]))
        _age(settings.db, "UPDATE events SET created_at = created_at - ? WHERE id <= 3", 40 * DAY)
        assert retention.prune(settings.db, retention.Policy.of(settings)).events == 3

        expired = await app.client.get("/api/admin/events?after=1", headers=app.auth())
        assert expired.status_code == 410
        error = expired.json()["error"]
        assert error["code"] == "cursor_expired" and "after=3" in error["message"]
        by_event_id = await app.client.get(
            f"/api/admin/events?after={event_ids[0]}", headers=app.auth()
        )
        assert by_event_id.status_code == 410
        assert by_event_id.json()["error"]["code"] == "cursor_expired"

        for after in ("0", "3", event_ids[3]):
            page = await app.client.get(f"/api/admin/events?after={after}", headers=app.auth())
            assert page.status_code == 200
        everything = (await app.client.get("/api/admin/events", headers=app.auth())).json()
        assert [e["lead_id"] for e in everything["events"]] == ids[3:]

        provider = await app.add_provider("Acme")
        mine = await app.client.get(
            "/api/provider/events?after=2", headers=app.auth(provider["token"])
        )
        assert mine.status_code == 410

        transport = httpx.ASGITransport(app=app.app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://leadrelay.test", headers=app.auth()
        ) as client:
            daemon = ApiHistory(client, "/api/admin/events")
            with pytest.raises(DaemonError, match="no longer kept.*--since") as expired_tail:
                await daemon.page(1, lead_id=None, limit=10)
            assert expired_tail.value.status == 410
            assert "\n" not in str(expired_tail.value)  # one line

        history = StoreHistory(app.store, None)
        with pytest.raises(TailError, match="no longer kept.*--since"):
            await history.page(1, lead_id=None, limit=10)
        assert [e["lead_id"] for e in (await history.page(3, lead_id=None, limit=10))[0]] == ids[3:]


def test_the_daemon_prunes_and_db_prune_says_what_it_removed(db: Path | str) -> None:
    env = {"LEADRELAY_PRUNE_INTERVAL_SECONDS": "0.2"}
    with (
        Serve(db, relay="off", env=env) as server,
        httpx.Client(base_url=server.url, headers=server.auth()) as client,
    ):
        for n in range(30):
            assert client.post("/api/leads", json={"name": f"Lead {n}"}).status_code == 201
        _age(
            db,
            "UPDATE events SET state = 'delivered', delivered_at = created_at, "
            "created_at = created_at - ? WHERE id <= 20",
            31 * DAY,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if client.get("/api/admin/events?after=1").status_code == 410:
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"the daemon did not prune:\n{server.logs()}")
        status = cli_json(db, "outbox", "status")
        assert (status["delivered"], status["pending"], status["total"]) == (0, 10, 10)
        assert "pruned 20 delivered events" in server.logs()

    _age(db, "UPDATE events SET state = 'delivered', created_at = created_at - ?", 31 * DAY)
    dry = cli_json(db, "db", "prune", "--dry-run")
    assert dry == {"events": 10, "idempotency_keys": 0, "dry_run": True}
    assert cli_json(db, "db", "prune")["events"] == 10
    assert cli_json(db, "outbox", "status")["total"] == 0
