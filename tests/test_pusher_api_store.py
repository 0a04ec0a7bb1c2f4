"""An app's Pusher API events in the outbox, on both backends: numbered per channel at the
commit, due one at a time per channel (the one ordering predicate, over leads and channels
alike), counted apart, left alone by erasure, pruned by retention, retried as dead letters;
and a SQLite database from before them migrated with its events intact."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from leadrelay import erasure, leads, outbox
from leadrelay.pusher import api_store
from leadrelay.pusher.api_events import PusherApiEvent
from leadrelay.store import open_store, retention
from leadrelay.store.base import OUTBOX_COUNTERS, Row, Store
from leadrelay.store.sqlite.connection import connect, statements
from leadrelay.store.sqlite.schema import MIGRATIONS

pytestmark = [pytest.mark.anyio, pytest.mark.both_backends]


def app_event(channels: tuple[str, ...], n: int) -> PusherApiEvent:
    return PusherApiEvent(channels, "app.event", f'{{"n":{n}}}', "1.2")


async def due(store: Store) -> list[dict[str, Any]]:
    return await store.claim_due("test", time.time() + 1, 100, [], 30)


async def new_lead(store: Store, name: str = "Ada") -> int:
    fields = leads.parse_new_lead({"name": name, "email": "ada@example.com"})
    result = await leads.create_lead(
        store, fields, status="new", idempotency_key=None, socket_id=None
    )
    return int(result.lead["id"])


async def test_channel_events_numbered_per_channel_and_due_one_at_a_time(db: Path | str) -> None:
    store = await open_store(db)
    try:
        lead = await new_lead(store)
        # one request of two channels, then a batch: all of a request in one transaction
        assert await api_store.store_events(store, [app_event(("a", "b"), 0)]) == 2
        assert await api_store.store_events(store, [app_event(("a",), 1), app_event(("b",), 2)])
        rows = await store.fetch_all(
            "SELECT e.id, e.seq, c.name, e.payload FROM events e "
            "JOIN pusher_channels c ON c.id = e.channel_id ORDER BY e.id"
        )
        assert [(r["name"], r["seq"]) for r in rows] == [("a", 1), ("b", 1), ("a", 2), ("b", 2)]
        # the heads: the lead's event and each channel's first; nothing behind them
        heads = await due(store)
        assert [(r["lead_id"], r["seq"]) for r in heads] == [(lead, 1), (None, 1), (None, 1)]
        await store.write(lambda tx: tx.mark_delivered([r["id"] for r in heads]))
        assert [(r["payload"], r["seq"]) for r in await due(store)] == [
            ('{"n":1}', 2),
            ('{"n":2}', 2),
        ]
        counts = await store.outbox_counts()
        assert (counts["api_pending"], counts["api_delivered"]) == (2, 2)
        assert (counts["pending"], counts["delivered"]) == (2, 3)
        counted = await store.counted_outbox()
        assert {name: counts[name] for name in OUTBOX_COUNTERS} == {
            name: counted[name] for name in OUTBOX_COUNTERS
        }
    finally:
        await store.close()


async def test_channel_seqs_follow_commits_across_many_transactions(db: Path | str) -> None:
    store = await open_store(db)
    try:
        # concurrent writers share group commits; each channel still counts 1, 2, 3 …
        import asyncio

        await asyncio.gather(
            *(api_store.store_events(store, [app_event((f"c{n % 3}",), n)]) for n in range(30))
        )
        rows = await store.fetch_all(
            "SELECT c.name, e.seq FROM events e JOIN pusher_channels c ON c.id = e.channel_id "
            "ORDER BY e.id"
        )
        for name in ("c0", "c1", "c2"):
            assert [r["seq"] for r in rows if r["name"] == name] == list(range(1, 11))
        last = await store.fetch_all("SELECT name, last_seq FROM pusher_channels ORDER BY name")
        assert [(r["name"], r["last_seq"]) for r in last] == [("c0", 10), ("c1", 10), ("c2", 10)]
    finally:
        await store.close()


async def test_dead_channel_events_retried_and_counted(db: Path | str) -> None:
    store = await open_store(db)
    try:
        await api_store.store_events(store, [app_event(("dead",), 0)])
        (head,) = await due(store)
        await store.write(lambda tx: tx.mark_dead([head["id"]], "HTTP 400: refused"))
        found = await outbox.failed(store)
        assert [(e["kind"], e["channels"], e["lead_id"]) for e in found["dead"]] == [
            ("pusher_api", ["dead"], None)
        ]
        status = await outbox.status(store)
        assert status["pusher_api"]["dead"] == status["dead"] == 1
        assert await outbox.retry(store, head["id"]) == 1
        assert (await store.outbox_counts())["api_pending"] == 1
    finally:
        await store.close()


async def test_counters_agree_with_a_count_through_every_change(db: Path | str) -> None:
    """The counters the triggers keep (every event's, and the api_* of an app's alone) equal
    a count of the table after each kind of change, for a lead's events and an app's at once:
    stored, failed (retrying), failed again, dead-lettered, retried, delivered, pruned."""
    store = await open_store(db)

    async def agree(step: str) -> Row:
        counts, counted = await store.outbox_counts(), await store.counted_outbox()
        kept = {name: counts[name] for name in OUTBOX_COUNTERS}
        assert kept == {name: counted[name] for name in OUTBOX_COUNTERS}, step
        return counts

    try:
        await new_lead(store)
        await api_store.store_events(store, [app_event(("a", "b"), 0)])
        counts = await agree("stored")
        assert (counts["pending"], counts["api_pending"]) == (3, 2)
        ids = [r["id"] for r in await due(store)]
        assert len(ids) == 3
        for attempt in (1, 2):
            await store.write(lambda tx: tx.mark_retry(ids, time.time() - 1, "HTTP 503"))
            counts = await agree(f"failed {attempt}")
            assert (counts["retrying"], counts["api_retrying"]) == (3, 2)
        await store.write(lambda tx: tx.mark_dead(ids, "HTTP 400: refused"))
        counts = await agree("dead")
        assert (counts["dead"], counts["api_dead"], counts["retrying"]) == (3, 2, 0)
        assert await outbox.retry(store, None) == 3
        await agree("retried")
        await store.write(lambda tx: tx.mark_delivered(ids))
        counts = await agree("delivered")
        assert (counts["delivered"], counts["api_delivered"], counts["pending"]) == (3, 2, 0)
    finally:
        await store.close()
    policy = retention.Policy(events_max_age=1, keys_max_age=3600)
    assert retention.prune(db, policy, now=time.time() + 10, pause=0).events == 3
    store = await open_store(db)
    try:
        counts = await agree("pruned")
        assert counts["total"] == 0
    finally:
        await store.close()


async def test_erasure_and_retention_with_channel_events(db: Path | str) -> None:
    store = await open_store(db)
    try:
        lead = await new_lead(store, "Grace")
        await api_store.store_events(store, [app_event(("keep",), 0)])
        await erasure.erase_lead(store, lead)
        (app,) = await store.fetch_all("SELECT payload FROM events WHERE lead_id IS NULL")
        assert app["payload"] == '{"n":0}'  # an app's event is not the lead's: untouched
        ids = [r["id"] for r in await due(store)]
        await store.write(lambda tx: tx.mark_delivered(ids))
    finally:
        await store.close()
    policy = retention.Policy(events_max_age=1, keys_max_age=3600)
    pruned = retention.prune(db, policy, now=time.time() + 10, pause=0)
    assert pruned.events == 2
    store = await open_store(db)
    try:
        counts = await store.outbox_counts()
        assert (counts["api_delivered"], counts["delivered"], counts["total"]) == (0, 0, 0)
        # the channel goes on from its last seq: no seq is handed out twice
        await api_store.store_events(store, [app_event(("keep",), 1)])
        (row,) = await store.fetch_all("SELECT seq FROM events WHERE lead_id IS NULL")
        assert row["seq"] == 2
    finally:
        await store.close()


async def test_sqlite_database_from_before_is_rebuilt_with_its_events(tmp_path: Path) -> None:
    """Migration 8 rebuilds `events` (lead_id becomes nullable): every row, state and
    counter comes through, and the rebuilt table takes both kinds of events."""
    path = tmp_path / "old.db"
    conn = connect(path, durable=True)
    conn.execute("CREATE TABLE migrations (version INTEGER PRIMARY KEY, applied_at REAL)")
    for version, sql in MIGRATIONS:
        if version >= 8:  # the database as it was before the Pusher API
            break
        for statement in statements(sql):
            conn.execute(statement)
        conn.execute("INSERT INTO migrations VALUES (?, 0)", (version,))
    conn.execute(
        "INSERT INTO leads (id, name, status, created_at, updated_at, last_seq) "
        "VALUES (1, 'Old', 'new', 'x', 'x', 3)"
    )
    for seq, state in ((1, "delivered"), (2, "dead"), (3, "pending")):
        conn.execute(
            "INSERT INTO events (id, event_id, lead_id, seq, type, channels, payload, state, "
            "attempts, next_attempt_at, last_error, created_at) "
            "VALUES (?, ?, 1, ?, 'lead.assigned', '[\"admin\"]', '{}', ?, 1, 0, 'e', 0)",
            (seq * 10, f"00000000-0000-7000-8000-00000000000{seq}", seq, state),
        )
    conn.execute("UPDATE event_ids SET n = 30")
    conn.close()
    store = await open_store(path)
    try:
        rows = await store.fetch_all("SELECT id, seq, state, channel_id FROM events ORDER BY id")
        assert [(r["id"], r["seq"], r["state"], r["channel_id"]) for r in rows] == [
            (10, 1, "delivered", None),
            (20, 2, "dead", None),
            (30, 3, "pending", None),
        ]
        counts = await store.outbox_counts()
        assert (counts["pending"], counts["dead"], counts["delivered"], counts["retrying"]) == (
            1,
            1,
            1,
            1,
        )
        await api_store.store_events(store, [app_event(("after",), 0)])
        (app,) = await store.fetch_all("SELECT id FROM events WHERE lead_id IS NULL")
        assert app["id"] == 31
        assert (await store.outbox_counts())["api_pending"] == 1
        assert await store.integrity_problem() is None
    finally:
        await store.close()
    with sqlite3.connect(path) as check:
        plan = " ".join(
            str(row[-1])
            for row in check.execute(
                "EXPLAIN QUERY PLAN SELECT 1 FROM events e WHERE state = 'pending' AND "
                "NOT EXISTS (SELECT 1 FROM events p WHERE coalesce(p.lead_id, -p.channel_id) "
                "= coalesce(e.lead_id, -e.channel_id) AND p.seq < e.seq AND p.state = 'pending')"
            )
        )
    assert "events_pending_by_order" in plan, plan


async def test_followers_of_channel_heads_in_seq_order(db: Path | str) -> None:
    store = await open_store(db)
    try:
        await api_store.store_events(store, [app_event(("run",), n) for n in range(5)])
        await api_store.store_events(store, [app_event(("solo",), 9)])
        heads = await due(store)
        assert [h["payload"] for h in heads] == ['{"n":0}', '{"n":9}']
        followers = await store.claim_followers("test", heads, 3, 30)
        assert [f["payload"] for f in followers] == ['{"n":1}', '{"n":2}', '{"n":3}']
        if store.claims_per_event:  # claimed by the relay that holds the head: fenced marks
            ids = [f["id"] for f in followers]
            marks = ", ".join("?" for _ in ids)
            owners = await store.fetch_all(
                f"SELECT lease_owner FROM events WHERE id IN ({marks})", ids
            )
            assert {row["lease_owner"] for row in owners} == {"test"}
    finally:
        await store.close()
