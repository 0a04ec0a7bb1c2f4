"""`db copy` carries every column of every table it copies, the late ones too (the
external_id duplicates of migration 4, crm_changed_at, erased_at, a status webhook's
outcome, presence, an app's Pusher API events with their channels) and events in every
delivery state with their attempts, errors and times: each row on PostgreSQL equals its
SQLite row, column by column.  Every table of the source is either copied or one the target
rebuilds itself, so that a table added later cannot be left behind unnoticed."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import psycopg
import pytest

from leadrelay import erasure, leads
from leadrelay.pusher import api_store
from leadrelay.pusher.api_events import PusherApiEvent
from leadrelay.store import open_store
from leadrelay.store.base import Tx
from leadrelay.store.copy import COPIED_ROWS, SKIPPED, TABLES
from support.serve import cli

pytestmark = pytest.mark.postgres

ORDER = {"settings": "key", "idempotency_keys": "key"}  # the others by id
# what `db copy` leaves behind: runtime state, and what the target's migrations, triggers
# and search indexer make again (store/copy.py's docstring)
REBUILT = {
    "migrations",
    "leases",
    "outbox_counts",
    "event_ids",
    "search_keys",
    "lead_counts",
    "lead_hours",
    "contact_times",
}


async def _fill(db: Path) -> None:
    store = await open_store(db)
    try:
        provider = await store.write(lambda tx: tx.insert_provider("Acme", None, "2026-12-02"))

        async def lead(name: str, **more: Any) -> int:
            fields = leads.parse_new_lead({"name": name, "email": f"{name}@example.com", **more})
            created = await leads.create_lead(store, fields, status="new")
            return int(created.lead["id"])

        crm = await lead("crm", external_id="crm-1", provider_id=provider)
        gone = await lead("erased", phone="+15550100", notes="call after six")
        pending, retrying, delivered, dead = [await lead(f"state-{n}") for n in range(4)]

        def settle(tx: Tx) -> None:
            tx.update_lead(crm, {"crm_changed_at": 1_796_170_000_123_456, "status": "won"})
            tx.claim_idempotency_key("status:crm-1:7", crm, {"applied": True, "reason": None})
            tx.claim_idempotency_key("key:abc:lead", pending)
            tx.set_presence(provider, True, 1_796_170_000_123, "2026-12-02T02:00:00.123Z")
            tx.mark_retry([retrying], tx.now + 60, "HTTP 503 from Pusher")
            tx.mark_delivered([delivered, crm])
            tx.mark_retry([dead], tx.now, "HTTP 413")
            tx.mark_dead([dead], "413: the event is too large")
            tx.insert_token("a" * 64, "lr_adm1", "admin", None, "2026-12-01")
            tx.insert_token("b" * 64, "lr_prv1", "provider", provider, "2026-12-01")
            tx.revoke_token("lr_adm1", "2026-12-02")
            tx.put_setting("pusher", {"app_id": "1", "key": "k", "enabled": False}, "v3")

        await store.write(settle)
        await erasure.erase_lead(store, gone)
        # an app's triggers through the Pusher API: one on two channels with a socket to
        # leave out, then one more on the first channel (its last_seq 2); the first relayed
        app = [
            PusherApiEvent(("orders", "private-shop.1"), "order.paid", '{"n":1}', "123.456"),
            PusherApiEvent(("orders",), "order.sent", '{"n":2}'),
        ]
        await api_store.store_events(store, app)
        first = await store.fetch_one("SELECT min(id) AS id FROM events WHERE lead_id IS NULL")
        assert first is not None
        await store.write(lambda tx: tx.mark_delivered([first["id"]]))
    finally:
        await store.close()
    # a duplicate external_id from before it was unique, as migration 4 leaves one
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO leads (id, name, status, external_id, external_id_dup, created_at, "
            "updated_at, last_seq) "
            "VALUES (100, 'older twin', 'new', 'crm-1', 100, '2026-01-01', '2026-01-01', 0)"
        )
    conn.close()


def _rows(read: Any, table: str, columns: list[str]) -> list[tuple[Any, ...]]:
    """The rows `db copy` copies (each database keeps its own wake id)."""
    order, where = ORDER.get(table, "id"), COPIED_ROWS.get(table, "TRUE")
    sql = f"SELECT {', '.join(columns)} FROM {table} WHERE {where} ORDER BY {order}"
    return [tuple(row) for row in read(sql)]


def test_db_copy_carries_every_column(tmp_path: Path, pg_url: str) -> None:
    db = tmp_path / "source.db"
    asyncio.run(_fill(db))
    cli(db, "db", "copy", "--to", pg_url)

    source = sqlite3.connect(db)
    try:
        tables = {
            name
            for (name,) in source.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        }
        assert tables - REBUILT == set(TABLES)  # a new table: copy it, or say why not
        with psycopg.connect(pg_url) as target:
            for table in TABLES:
                columns = [
                    row[1]
                    for row in source.execute(f"PRAGMA table_info({table})")
                    if row[1] not in SKIPPED.get(table, ())  # filled by PostgreSQL itself
                ]
                ours = _rows(lambda sql: source.execute(sql).fetchall(), table, columns)
                theirs = _rows(lambda sql: target.execute(sql).fetchall(), table, columns)
                assert ours, table
                assert theirs == ours, table
            # what the late columns hold, so that the comparison above compared something
            leads_row = dict(zip(
                ("external_id_dup", "crm_changed_at", "erased_at"),
                target.execute(
                    "SELECT max(external_id_dup), max(crm_changed_at), max(erased_at) FROM leads"
                ).fetchone() or (),
                strict=True,
            ))  # fmt: skip
            assert leads_row["external_id_dup"] and leads_row["crm_changed_at"]
            assert leads_row["erased_at"]
            channels = target.execute(
                "SELECT name, last_seq FROM pusher_channels ORDER BY name"
            ).fetchall()
            assert channels == [("orders", 2), ("private-shop.1", 1)]
            app_events = target.execute(
                "SELECT c.name, e.seq, e.type, e.socket_id, e.state FROM events e "
                "JOIN pusher_channels c ON c.id = e.channel_id WHERE e.lead_id IS NULL "
                "ORDER BY e.id"
            ).fetchall()
            assert app_events == [
                ("orders", 1, "order.paid", "123.456", "delivered"),
                ("private-shop.1", 1, "order.paid", "123.456", "pending"),
                ("orders", 2, "order.sent", None, "pending"),
            ]
            outcome = target.execute(
                "SELECT outcome FROM idempotency_keys WHERE key = 'status:crm-1:7'"
            ).fetchone()
            assert outcome is not None and '"applied": true' in outcome[0]
            states = target.execute(
                "SELECT state, attempts > 0, last_error IS NOT NULL, delivered_at IS NOT NULL "
                "FROM events ORDER BY id"
            ).fetchall()
            assert set(states) == {
                ("pending", False, False, False),
                ("pending", True, True, False),  # retrying
                ("delivered", True, False, True),
                ("dead", True, True, False),
            }
    finally:
        source.close()

    async def on_postgres() -> None:
        store = await open_store(pg_url)
        try:
            owner = await store.lead_by_external_id("crm-1")
            assert owner is not None and owner["name"] == "crm"  # the twin is not the CRM's
            assert [d["leads"] for d in await store.external_id_duplicates(10)] == [2]
            key = await store.key_outcome("status:crm-1:7")
            assert key is not None and key[1] == {"applied": True, "reason": None}
            counted, kept = await store.counted_outbox(), await store.outbox_counts()
            names = ("pending", "delivered", "dead", "retrying", "total")
            assert [kept[n] for n in names] == [counted[n] for n in names] == [5, 3, 1, 1, 9]
        finally:
            await store.close()

    asyncio.run(on_postgres())
