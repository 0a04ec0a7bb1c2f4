"""`doctor` checks the outbox counters /metrics reads against a scan of the events, on both
backends: they agree after real traffic, and a counter changed by hand is reported."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from leadrelay import leads
from leadrelay.config import is_postgres
from leadrelay.store import open_store
from support.database import execute
from support.serve import cli, cli_json

pytestmark = pytest.mark.both_backends


def _checks(db: Path | str) -> dict[str, dict[str, str]]:
    done = cli(db, "doctor", "--json", check=False)
    return {check["name"]: check for check in json.loads(done.stdout)["checks"]}


async def _traffic(db: Path | str) -> None:
    """Four leads; one event delivered, one retrying, one dead-lettered."""
    store = await open_store(db)
    try:
        for n in range(4):
            await leads.create_lead(store, leads.parse_new_lead({"name": f"L{n}"}), status="new")
        await store.write(lambda tx: tx.mark_delivered([1]))
        await store.write(lambda tx: tx.mark_retry([2], tx.now + 60, "HTTP 500"))
        await store.write(lambda tx: tx.mark_dead([3], "HTTP 413"))
    finally:
        await store.close()


def test_doctor_reports_counters_that_disagree_with_the_events(db: Path | str) -> None:
    cli(db, "init")
    asyncio.run(_traffic(db))
    checks = _checks(db)
    assert checks["outbox ledger"]["status"] == "ok" and "outbox counters" not in checks
    status = cli_json(db, "outbox", "status")
    assert (status["pending"], status["delivered"], status["dead"]) == (2, 1, 1)

    # a hand-made change of the counters (on PostgreSQL one slot of the 64)
    if is_postgres(db):
        execute(db, "UPDATE outbox_counts SET pending = pending + 5 WHERE slot = 7")
    else:
        execute(db, "UPDATE outbox_counts SET n = n + 5 WHERE name = 'pending'")
    counters = _checks(db)["outbox counters"]
    assert counters["status"] == "fail"
    assert "pending 7 (counted 2)" in counters["detail"]
