"""Measure the two PostgreSQL drivers on leadrelay's workload (how psycopg 3 was chosen).

    .venv/bin/python scripts/pg_drivers.py postgresql://user@host:port/db

(a) group commit: transactions of BATCH leads, each lead an INSERT ... RETURNING id and its
    event's INSERT, committed with synchronous_commit = on;
(b) the relay's claim: batches of 10 due events taken with FOR UPDATE SKIP LOCKED under a
    lease, then marked delivered.
It needs asyncpg installed beside psycopg (`pip install asyncpg`); leadrelay does not.
"""

from __future__ import annotations

import asyncio
import sys
import time

BATCH = 64
LEADS = 6400
CLAIMS = 400

SCHEMA = """
DROP TABLE IF EXISTS bench_events; DROP TABLE IF EXISTS bench_leads;
CREATE TABLE bench_leads (id BIGSERIAL PRIMARY KEY, name TEXT NOT NULL, created_at TEXT);
CREATE TABLE bench_events (id BIGSERIAL PRIMARY KEY, lead_id BIGINT NOT NULL, seq INT NOT NULL,
  payload TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'pending', lease_owner TEXT,
  lease_until DOUBLE PRECISION, next_attempt_at DOUBLE PRECISION NOT NULL DEFAULT 0);
CREATE INDEX bench_pending ON bench_events (id) WHERE state = 'pending';
"""
CLAIM = """
UPDATE bench_events SET lease_owner = %s, lease_until = %s WHERE id IN (
  SELECT id FROM bench_events e WHERE state = 'pending' AND next_attempt_at <= %s
  AND (lease_until IS NULL OR lease_until < %s)
  ORDER BY id LIMIT 10 FOR UPDATE SKIP LOCKED) RETURNING id
"""
PAYLOAD = '{"id": 1, "name": "Ada Lovelace", "email": "ada@example.com"}' * 3


def psycopg_run(url: str) -> tuple[float, float]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(SCHEMA)
        conn.execute("SET synchronous_commit = on")
        start = time.perf_counter()
        for _ in range(LEADS // BATCH):
            with conn.transaction():
                for _ in range(BATCH):
                    lead = conn.execute(
                        "INSERT INTO bench_leads (name, created_at) VALUES (%s, %s) RETURNING id",
                        ("Ada", "2026-01-01T00:00:00Z"),
                    ).fetchone()
                    assert lead is not None
                    conn.execute(
                        "INSERT INTO bench_events (lead_id, seq, payload) VALUES (%s, 1, %s)",
                        (lead[0], PAYLOAD),
                    )
        intake = LEADS / (time.perf_counter() - start)
        start = time.perf_counter()
        claimed = 0
        for _ in range(CLAIMS):
            now = time.time()
            with conn.transaction():
                ids = [r[0] for r in conn.execute(CLAIM, ("me", now + 30, now, now)).fetchall()]
            with conn.transaction():
                conn.execute(
                    "UPDATE bench_events SET state = 'delivered' WHERE id = ANY(%s)", (ids,)
                )
            claimed += len(ids)
        drain = claimed / (time.perf_counter() - start)
    return intake, drain


async def asyncpg_run(url: str) -> tuple[float, float]:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(SCHEMA)
        await conn.execute("SET synchronous_commit = on")
        insert_lead = await conn.prepare(
            "INSERT INTO bench_leads (name, created_at) VALUES ($1, $2) RETURNING id"
        )
        insert_event = await conn.prepare(
            "INSERT INTO bench_events (lead_id, seq, payload) VALUES ($1, 1, $2)"
        )
        start = time.perf_counter()
        for _ in range(LEADS // BATCH):
            async with conn.transaction():
                for _ in range(BATCH):
                    lead_id = await insert_lead.fetchval("Ada", "2026-01-01T00:00:00Z")
                    await insert_event.fetch(lead_id, PAYLOAD)
        intake = LEADS / (time.perf_counter() - start)
        claim = CLAIM.replace("%s", "$1", 1).replace("%s", "$2", 1)
        claim = claim.replace("%s", "$3", 1).replace("%s", "$4", 1)
        start = time.perf_counter()
        claimed = 0
        for _ in range(CLAIMS):
            now = time.time()
            async with conn.transaction():
                ids = [r[0] for r in await conn.fetch(claim, "me", now + 30, now, now)]
            async with conn.transaction():
                await conn.execute(
                    "UPDATE bench_events SET state = 'delivered' WHERE id = ANY($1)", ids
                )
            claimed += len(ids)
        drain = claimed / (time.perf_counter() - start)
    finally:
        await conn.close()
    return intake, drain


def main() -> None:
    url = sys.argv[1]
    for _ in range(4):
        p = psycopg_run(url)
        a = asyncio.run(asyncpg_run(url))
        print(f"psycopg 3: {p[0]:8.0f} leads/s group-committed, {p[1]:7.0f} events/s claimed")
        print(f"asyncpg:   {a[0]:8.0f} leads/s group-committed, {a[1]:7.0f} events/s claimed")


if __name__ == "__main__":
    main()
