"""The concurrency checker on real daemons: one fault a run, the whole history checked.

Each run starts real `leadrelay serve` processes on one database (a SQLite file: one daemon
and two; PostgreSQL: two and three), points them at a real soketi, and for a few seconds
races writers against them (creates with and without Idempotency-Key, admin and provider
PATCHes, reassignments, the CRM's status webhook twice at once with `changed_at` in either
order, erasures) while followers page through both events APIs, a subscriber listens on
every channel, daemons prune delivered events every second, and one fault strikes
(support/nemesis.py).  Then every event is delivered, the followers read to the end, and
support/checker.py checks the history: on a failure it prints what broke and the slice of
the history around it.  `CHECKER_SEED=N` repeats a run's choices (not its timing).

What it found on the code before issue 25's fixes, and the runs since: docs/faults.md, "The
concurrency checker".
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from support.checked import checked_run
from support.soketi import Soketi

pytestmark = [pytest.mark.slow, pytest.mark.soketi]

SQLITE_FAULTS = ["kill", "stop_writer", "slow_pusher", "prune"]
# each fault once, on two or three daemons in turn
POSTGRES_RUNS = [
    ("kill", 3),
    ("stop_writer", 2),
    ("slow_pusher", 3),
    ("terminate", 2),
    ("prune", 3),
]


def seed() -> int:
    return int(os.environ.get("CHECKER_SEED") or random.randrange(1_000_000))


@pytest.mark.parametrize("daemons", [1, 2])
@pytest.mark.parametrize("fault", SQLITE_FAULTS)
def test_sqlite_daemons_keep_every_promise_under_a_fault(
    tmp_path: Path, soketi: Soketi, fault: str, daemons: int
) -> None:
    db = tmp_path / "leadrelay.db"
    result = checked_run(db, soketi, daemons=daemons, fault=fault, seed=seed())
    assert result.valid, result.report()


@pytest.mark.postgres
@pytest.mark.parametrize(("fault", "daemons"), POSTGRES_RUNS)
def test_postgres_daemons_keep_every_promise_under_a_fault(
    pg_migrated_url: str, soketi: Soketi, fault: str, daemons: int
) -> None:
    result = checked_run(pg_migrated_url, soketi, daemons=daemons, fault=fault, seed=seed())
    assert result.valid, result.report()
