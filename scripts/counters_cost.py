"""What the day at a glance and search cost the intake: a lead's CPU with and without them.

    PYTHONPATH=scripts .venv/bin/python scripts/counters_cost.py [ROUNDS] [LEADS]

The store alone, as the lead writer runs it (`on_loop`, one process): LEADS leads (default
20,000) created by 64 concurrent `create_lead` calls, on a fresh database, in three shapes
taken in turn, ROUNDS times (default 3):
    shipped      the schema as migrated
    no counters  without the stats' triggers (lead_stats_*, contact_time) and the unassigned
                 leads' partial index
    neither      also without search's pending mark (its partial index, its column and the
                 trigger that forgets an erased lead's keys)
On SQLite the figure is the process's CPU a lead (every thread: SQLite runs in it). On
PostgreSQL (with --postgres, a throwaway cluster as scripts/bench starts) it is the CPU of the
process and of the cluster's server processes together, a lead. docs/console.md quotes it.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchlib.postgres import Cluster, _database

from leadrelay import accounts, leads
from leadrelay.store import open_store

CONCURRENCY = 64
TICK = 100  # clock ticks a second in /proc/*/stat (Linux's USER_HZ)
COUNTERS = (
    "DROP TRIGGER lead_stats_insert",
    "DROP TRIGGER lead_stats_update",
    "DROP TRIGGER lead_stats_delete",
    "DROP TRIGGER contact_time",
    "DROP INDEX leads_unassigned",
)
SEARCH_SQLITE = (
    "DROP TRIGGER search_keys_forget",
    "DROP INDEX leads_search_pending",
    "ALTER TABLE leads DROP COLUMN search_pending",
)
COUNTERS_PG = (
    "DROP TRIGGER lead_stats_insert ON leads",
    "DROP TRIGGER lead_stats_update ON leads",
    "DROP TRIGGER lead_stats_delete ON leads",
    "DROP TRIGGER contact_time ON events",
    "DROP INDEX leads_unassigned",
)
SEARCH_PG = (
    "DROP TRIGGER search_keys_forget ON leads",
    "DROP INDEX leads_search_pending",
    "ALTER TABLE leads DROP COLUMN search_pending",
)
SHAPES = ("shipped", "no counters", "neither")


def _fields(n: int, providers: list[int]) -> dict[str, Any]:
    return {
        "name": f"Lead Number{n}",
        "email": f"lead{n}@example.com",
        "phone": f"+1 555 {n:07d}",
        "provider_id": providers[n % len(providers)] if n % 5 else None,
        "source": "website",
        "notes": None,
        "external_id": None,
    }


def _server_ticks(data_dir: Path) -> int:
    """CPU ticks of a PostgreSQL cluster's processes so far (the postmaster's children)."""
    postmaster = int((data_dir / "postmaster.pid").read_text().split()[0])
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(stat.parent.name)
        if pid == postmaster or int(fields[1]) == postmaster:
            total += int(fields[11]) + int(fields[12])
    return total


async def _one(
    db: str | Path, drop: tuple[str, ...], count: int, server: Callable[[], int]
) -> tuple[float, float]:
    """CPU µs a lead, and leads a transaction, for `count` leads on a fresh database
    without what `drop` removes."""
    store = await open_store(db, on_loop=True)
    providers = [(await accounts.add_provider(store, f"P{n}"))["id"] for n in range(3)]
    await store.close()
    if drop:
        if isinstance(db, Path):
            with sqlite3.connect(db) as conn:
                for statement in drop:
                    conn.execute(statement)
        else:
            import psycopg

            with psycopg.connect(db, autocommit=True) as conn:
                for statement in drop:
                    conn.execute(statement)
    store = await open_store(db, on_loop=True)
    numbers = iter(range(count))

    async def worker() -> None:
        for n in numbers:
            await leads.create_lead(store, _fields(n, providers), status="new")

    cpu, ticks = time.process_time(), server()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    used = time.process_time() - cpu + (server() - ticks) / TICK
    batches = store.transactions
    await store.close()
    return used / count * 1e6, count / max(1, batches)


def main() -> int:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    rounds = int(args[0]) if args else 3
    count = int(args[1]) if len(args) > 1 else 20_000
    postgres = "--postgres" in sys.argv
    cluster = Cluster(Path(tempfile.mkdtemp())) if postgres else None
    url = cluster.start() if cluster else ""
    drops = {
        "shipped": (),
        "no counters": COUNTERS_PG if postgres else COUNTERS,
        "neither": (COUNTERS_PG + SEARCH_PG) if postgres else (COUNTERS + SEARCH_SQLITE),
    }
    figures: dict[str, list[float]] = {shape: [] for shape in SHAPES}
    try:
        with tempfile.TemporaryDirectory() as work:
            for r in range(rounds):
                for shape in SHAPES:
                    if cluster:
                        db: str | Path = _database(url, f"cost{r}{SHAPES.index(shape)}")
                        ticks: Callable[[], int] = lambda: _server_ticks(cluster.dir / "data")  # noqa: E731
                    else:
                        db, ticks = Path(work) / f"cost{r}{SHAPES.index(shape)}.db", lambda: 0
                    cost, batch = asyncio.run(_one(db, drops[shape], count, ticks))
                    figures[shape].append(cost)
                    print(
                        f"round {r + 1} {shape:12} {cost:6.1f} µs a lead, "
                        f"{batch:.1f} leads a transaction",
                        flush=True,
                    )
    finally:
        if cluster:
            cluster.stop()
    backend = "PostgreSQL" if postgres else "SQLite"
    for shape in SHAPES:
        low, high = min(figures[shape]), max(figures[shape])
        print(
            f"{backend} {shape:12} {low:.1f}–{high:.1f} µs a lead ({count} leads, {rounds} rounds)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
