"""PostgreSQL's outbox counters (postgres/schema.py's migration 2): what /metrics and `outbox
status` read equals a scan of the events after every kind of change, the migration counts
what was stored before it even while a daemon writes, and no writer waits for another on
a counter."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from leadrelay import accounts, erasure, leads
from leadrelay.auth import Principal
from leadrelay.store import open_store, retention
from leadrelay.store.base import Store, Tx
from leadrelay.store.postgres.schema import MIGRATION_LOCK, MIGRATIONS, OUTBOX_SLOTS

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

NAMES = ("pending", "delivered", "dead", "retrying", "total")
DAY = 86400.0


async def _leads(store: Store, count: int) -> list[int]:
    ids = []
    for n in range(count):
        fields = leads.parse_new_lead({"name": f"Lead {n}", "email": f"lead{n}@example.com"})
        ids.append((await leads.create_lead(store, fields, status="new")).lead["id"])
    return ids


async def _agree(store: Store) -> tuple[int, ...]:
    """The counters and the scan, which must agree; the counts."""
    counted, kept = await store.counted_outbox(), await store.outbox_counts()
    assert [kept[n] for n in NAMES] == [counted[n] for n in NAMES]
    assert await store.pending_count() == counted["pending"]
    return tuple(kept[n] for n in NAMES)


def _sql(url: str, sql: str, *params: Any) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql, params)


async def test_the_counters_follow_every_change(pg_url: str) -> None:
    store = await open_store(pg_url)
    try:
        assert await _agree(store) == (0, 0, 0, 0, 0)
        ids = await _leads(store, 8)  # events 1..8, one per lead
        assert await _agree(store) == (8, 0, 0, 0, 8)
        await store.write(lambda tx: tx.mark_delivered([1, 2]))
        await store.write(lambda tx: tx.mark_retry([3], time.time(), "HTTP 500"))
        await store.write(lambda tx: tx.mark_dead([4], "HTTP 413"))
        await store.write(lambda tx: tx.mark_retry([5], time.time(), "timeout"))
        await store.write(lambda tx: tx.mark_dead([5], "gave up"))
        assert await _agree(store) == (4, 2, 2, 1, 8)
        assert await store.write(lambda tx: tx.retry_dead(4)) == 1
        assert await _agree(store) == (5, 2, 1, 2, 8)
        oldest = await store.fetch_one("SELECT created_at FROM events WHERE id = 3")
        assert oldest is not None
        assert (await store.outbox_counts())["oldest_pending"] == oldest["created_at"]
        # a claim and its release change no count (the update trigger sees no change)
        claimed = await store.claim_due("relay-a", time.time(), 10, [], 30.0)
        assert claimed and await _agree(store) == (5, 2, 1, 2, 8)
        await store.release_claims("relay-a")

        # several jobs in one group commit, each with its own statements
        def mixed(tx: Tx) -> None:
            tx.mark_delivered([6])
            tx.mark_retry([7], tx.now, "HTTP 502")

        await store.write(mixed)
        assert await _agree(store) == (4, 3, 1, 3, 8)

        # erasure rewrites payloads: no count moves
        await erasure.erase_lead(store, ids[0])
        assert await _agree(store) == (4, 3, 1, 3, 8)

        # a status change writes an event of an existing lead
        admin = Principal(role="admin", provider_id=None)
        await leads.change_lead(store, ids[1], {"status": "contacted"}, actor=admin)
        assert await _agree(store) == (5, 3, 1, 3, 9)

        # prune deletes old delivered events, in batches of 2
        _sql(pg_url, "UPDATE events SET created_at = created_at - %s WHERE id <= 6", 40 * DAY)
        policy = retention.Policy(events_max_age=30 * DAY, keys_max_age=3600.0)
        assert retention.prune(pg_url, policy, batch=2, pause=0).events == 3
        assert await _agree(store) == (5, 0, 1, 3, 6)

        # a statement that deletes rows in several states
        _sql(pg_url, "DELETE FROM events WHERE id IN (3, 5, 8)")  # retrying, dead, pending
        assert await _agree(store) == (3, 0, 0, 2, 3)
    finally:
        await store.close()


async def test_a_batch_of_leads_is_one_statement_each_and_counted(pg_url: str) -> None:
    store = await open_store(pg_url)
    try:
        before = store.transactions
        results = await asyncio.gather(
            *(
                leads.create_lead(store, leads.parse_new_lead({"name": f"N{n}"}), status="new")
                for n in range(200)
            )
        )
        assert len({r.lead["id"] for r in results}) == 200
        assert store.transactions - before < 200  # group-committed
        assert await _agree(store) == (200, 0, 0, 0, 200)
        rows = await store.fetch_all(
            "SELECT l.id, l.name, e.seq, e.state FROM leads l JOIN events e ON e.lead_id = l.id"
        )
        assert sorted(r["name"] for r in rows) == sorted(f"N{n}" for n in range(200))
        assert {(r["seq"], r["state"]) for r in rows} == {(1, "pending")}
    finally:
        await store.close()


async def test_a_batch_of_leads_with_a_provider_is_one_insert_too(pg_url: str) -> None:
    """Checking that a lead's provider exists does not write the leads the batch holds
    back first: that made an INSERT a lead, and the statement-level triggers (the day's
    counters) fire for each (a third of a lead's CPU)."""
    store = await open_store(pg_url)
    try:
        acme = await accounts.add_provider(store, "Acme")
        # a statement-level trigger of the test's own counts the INSERTs into leads
        _sql(
            pg_url,
            "CREATE TABLE lead_inserts (n INTEGER NOT NULL); INSERT INTO lead_inserts VALUES (0);"
            "CREATE FUNCTION count_lead_insert() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "UPDATE lead_inserts SET n = n + 1; RETURN NULL; END $$;"
            "CREATE TRIGGER count_lead_inserts AFTER INSERT ON leads "
            "FOR EACH STATEMENT EXECUTE FUNCTION count_lead_insert()",
        )
        before = store.transactions
        fields = [
            leads.parse_new_lead({"name": f"N{n}", "provider_id": acme["id"]}) for n in range(200)
        ]
        await asyncio.gather(*(leads.create_lead(store, f, status="new") for f in fields))
        batches = store.transactions - before
        assert batches < 200  # group-committed
        inserts = await store.fetch_one("SELECT n FROM lead_inserts")
        assert inserts is not None and inserts["n"] == batches  # one INSERT a batch
        counted = await store.fetch_one(
            "SELECT sum(n) AS n FROM lead_counts WHERE provider_id = ? AND status = 'new'",
            (acme["id"],),
        )
        assert counted is not None and counted["n"] == 200
    finally:
        await store.close()


def _migration_one_only(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE migrations (version INTEGER PRIMARY KEY, applied_at DOUBLE PRECISION)"
        )
        conn.execute(MIGRATIONS[0][1])
        conn.execute("INSERT INTO migrations VALUES (1, 0)")
        conn.execute(
            "INSERT INTO leads (id, name, status, created_at, updated_at) "
            "VALUES (1, 'A', 'new', '', '')"
        )


def _insert_events(conn: psycopg.Connection[Any], first: int, states: list[tuple[str, int]]) -> int:
    for n, (state, attempts) in enumerate(states, start=first):
        conn.execute(
            "INSERT INTO events (event_id, lead_id, seq, type, channels, payload, state, "
            "attempts, next_attempt_at, created_at) "
            "VALUES (%s, 1, %s, 'lead.assigned', '[]', '{}', %s, %s, 0, 0)",
            (f"e{n}", n, state, attempts),
        )
    return first + len(states)


async def test_the_migration_counts_the_events_already_stored(pg_url: str) -> None:
    _migration_one_only(pg_url)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        states = [("pending", 0), ("pending", 2), ("delivered", 1), ("delivered", 1), ("dead", 5)]
        _insert_events(conn, 1, states)
    store = await open_store(pg_url)
    try:
        assert await _agree(store) == (2, 2, 1, 1, 5)
        slots = await store.fetch_one("SELECT count(*) AS n FROM outbox_counts")
        assert slots is not None and slots["n"] == OUTBOX_SLOTS
    finally:
        await store.close()


async def test_the_migration_counts_right_while_an_old_daemon_writes(pg_url: str) -> None:
    """A daemon of the previous version goes on writing while a new one migrates: events
    committed before the triggers exist, events in transactions open across the migration
    and events written after it are each counted once."""
    _migration_one_only(pg_url)
    stop = threading.Event()
    written: list[int] = []
    failed: list[BaseException] = []

    def old_daemon() -> None:
        try:
            with psycopg.connect(pg_url) as conn:
                seq = 1
                while not stop.is_set():
                    # as a daemon writes: the lead's row first, then its events, in two
                    # statements with a pause between, so some transactions are open while
                    # the migration creates the triggers
                    conn.execute("UPDATE leads SET last_seq = %s WHERE id = 1", (seq + 2,))
                    seq = _insert_events(conn, seq, [("pending", 0)])
                    time.sleep(0.002)
                    seq = _insert_events(conn, seq, [("delivered", 1), ("pending", 1)])
                    conn.execute("UPDATE events SET state = 'delivered' WHERE seq = %s", (seq - 3,))
                    conn.commit()
                    written.append(seq)
        except BaseException as exc:  # noqa: BLE001 - the test reports it
            failed.append(exc)

    writer = threading.Thread(target=old_daemon)
    writer.start()
    try:
        while len(written) < 20 and not failed:  # it has committed events before the migration
            await asyncio.sleep(0.01)
        store = await open_store(pg_url)
        try:
            migrated_at = len(written)
            while len(written) < migrated_at + 20 and not failed:  # and goes on writing after it
                await asyncio.sleep(0.01)
            stop.set()
            writer.join(timeout=10)
            assert not failed, failed
            counts = await _agree(store)
            assert counts[4] == 3 * len(written) and counts[0] == len(written)
        finally:
            await store.close()
    finally:
        stop.set()
        writer.join(timeout=10)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        held = conn.execute("SELECT pg_try_advisory_lock(%s)", (MIGRATION_LOCK,)).fetchone()
        assert held is not None and held[0] is True  # the migration let go of its lock


async def test_a_writer_never_waits_for_another_on_a_counter(pg_url: str) -> None:
    """Another transaction holds the store writer's own counter slot (a daemon whose backend
    pid falls on the same slot, say) and does not commit: the store's writes go on."""
    store = await open_store(pg_url)
    try:
        await _leads(store, 1)

        def backend_pid(tx: Any) -> int:
            row = tx.conn.execute("SELECT pg_backend_pid() AS pid").fetchone()
            return int(row["pid"])

        home = await store.write(backend_pid) % OUTBOX_SLOTS
        with psycopg.connect(pg_url) as other:
            other.execute("SELECT 1 FROM outbox_counts WHERE slot = %s FOR UPDATE", (home,))
            other.execute(  # and it counts an event of its own, in its transaction
                "INSERT INTO events (id, event_id, lead_id, seq, type, channels, payload, "
                "next_attempt_at, created_at) VALUES (1000, 'x', 1, 99, 't', '[]', '{}', 0, 0)"
            )
            await asyncio.wait_for(_leads(store, 5), timeout=5)
            await asyncio.wait_for(store.write(lambda tx: tx.mark_delivered([1, 2])), timeout=5)
            assert await _agree(store) == (4, 2, 0, 0, 6)
            other.commit()
        assert await _agree(store) == (5, 2, 0, 0, 7)
    finally:
        await store.close()


async def test_two_daemons_and_their_relays_at_once_keep_the_counts(pg_url: str) -> None:
    """Two stores (two daemons' writers) take leads while two more deliver, retry and
    dead-letter them, all at once: no deadlock, and the counters equal the scan."""
    stores = [await open_store(pg_url) for _ in range(4)]
    try:
        intake, relays = stores[:2], stores[2:]
        done = asyncio.Event()

        async def take(store: Store, prefix: str) -> None:
            for n in range(60):
                await asyncio.gather(
                    *(
                        leads.create_lead(
                            store, leads.parse_new_lead({"name": f"{prefix}{n}-{k}"}), status="new"
                        )
                        for k in range(5)
                    )
                )

        async def relay(store: Store, owner: str) -> None:
            turn = 0
            while not done.is_set() or await store.pending_count():
                rows = await store.claim_due(owner, time.time(), 20, [], 30.0)
                if not rows:
                    await asyncio.sleep(0.01)
                    continue
                ids = [int(row["id"]) for row in rows]
                turn += 1

                def settle(tx: Tx, ids: list[int] = ids, turn: int = turn) -> None:
                    # every third turn delivers its first two, the others retry them
                    if turn % 3:
                        tx.mark_retry(ids[:2], tx.now, "HTTP 500")
                    else:
                        tx.mark_delivered(ids[:2])
                    tx.mark_dead(ids[2:3], "HTTP 413")
                    tx.mark_delivered(ids[3:])

                await store.write(settle)

        async def intake_then_done() -> None:
            await asyncio.gather(take(intake[0], "a"), take(intake[1], "b"))
            done.set()

        await asyncio.wait_for(
            asyncio.gather(intake_then_done(), relay(relays[0], "r0"), relay(relays[1], "r1")),
            timeout=120,
        )
        counts = await _agree(stores[0])
        assert counts[4] == 600 and counts[0] == 0
        assert counts[1] > 0 and counts[2] > 0
    finally:
        await asyncio.gather(*(store.close() for store in stores))


async def test_db_copy_leaves_the_counts_right_on_postgres(tmp_path: Path, pg_url: str) -> None:
    from leadrelay.store import copy

    db = tmp_path / "old.db"
    source = await open_store(db)
    try:
        await _leads(source, 6)
        await source.write(lambda tx: tx.mark_delivered([1, 2]))
        await source.write(lambda tx: tx.mark_dead([3], "HTTP 413"))
        await source.write(lambda tx: tx.mark_retry([4], tx.now + 60, "timeout"))
        expected = await _agree(source)
    finally:
        await source.close()
    assert expected == (3, 2, 1, 1, 6)
    copy.copy(db, pg_url)
    store = await open_store(pg_url)
    try:
        assert await _agree(store) == expected
    finally:
        await store.close()


async def test_a_job_with_more_events_than_one_statement_takes(pg_url: str) -> None:
    """A statement carries at most 65535 parameters: a batch's events beyond one
    statement's share go in the next, and every one is counted."""
    store = await open_store(pg_url)
    try:
        (lead_id,) = await _leads(store, 1)

        def many(tx: Tx) -> None:
            for seq in range(2, 7002):
                tx.insert_event(
                    {
                        "event_id": f"bulk-{seq}",
                        "lead_id": lead_id,
                        "seq": seq,
                        "type": "lead.updated",
                        "channels": ["private-admin"],
                        "provider_id": None,
                        "payload": "{}",
                    }  # fmt: skip
                )

        await store.write(many)
        assert await _agree(store) == (7001, 0, 0, 0, 7001)
    finally:
        await store.close()


async def test_jobs_undone_in_a_batch_leave_no_count(pg_url: str) -> None:
    """Two daemons' writers take the same idempotency key at once, each beside leads of its
    own: the loser's batch is undone and run again with a savepoint a job (its key lost the
    race after it wrote), and what it counted the first time is undone with it."""
    stores = [await open_store(pg_url) for _ in range(2)]
    try:
        fields = leads.parse_new_lead({"name": "Same"})
        for round_ in range(5):
            results = await asyncio.gather(
                *(
                    leads.create_lead(store, fields, status="new", idempotency_key=f"k-{round_}")
                    for store in stores
                    for _ in range(10)
                ),
                *(leads.create_lead(store, fields, status="new") for store in stores),
            )
            assert len({r.lead["id"] for r in results}) == 3
        assert await _agree(stores[0]) == (15, 0, 0, 0, 15)
        rows = await stores[0].fetch_all("SELECT count(*) AS n FROM leads")
        assert rows[0]["n"] == 15
    finally:
        await asyncio.gather(*(store.close() for store in stores))
