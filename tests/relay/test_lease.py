"""Two `serve` on one database: one relays, the other stands by and takes over when it dies.

Real parts: two `leadrelay serve` processes (each with its writer and relay children) on one
SQLite file (on PostgreSQL every daemon relays: test_multi_daemon.py), a real soketi, a
subscriber on its `admin` channel.  Both daemons take leads under load; the lease holder is
SIGKILLed with its process group.
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.load import Load
from support.serve import Serve, cli, cli_json, point_at_soketi, stored_events
from support.soketi import Soketi
from support.subscriber import Subscriber, check_order_per_lead

pytestmark = [pytest.mark.slow, pytest.mark.soketi]

RELAY_ENV = {"LEADRELAY_RELAY_MAX_BACKOFF_SECONDS": "1", "LEADRELAY_RELAY_TIMEOUT_SECONDS": "1"}
TAKEOVER_LIMIT = 10.0


def lease(db: Path | str) -> dict[str, Any]:
    status: dict[str, Any] = cli_json(db, "outbox", "status")
    return dict(status["relay_lease"])


def wait_for_holder(db: Path | str, serve: Serve, timeout: float) -> float:
    """Block until `serve` holds the relay lease; return when that was seen."""
    assert serve.process is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = lease(db)
        if now["held"] and now["serve_pid"] == serve.process.pid:
            return time.time()
        time.sleep(0.1)
    raise AssertionError(f"serve pid {serve.process.pid} never held the lease: {lease(db)}")


def test_relay_lease_two_serves_one_relays_and_standby_takes_over(
    tmp_path: Path, soketi: Soketi
) -> None:
    db = tmp_path / "leadrelay.db"
    acked: dict[int, int] = {}
    with Subscriber(soketi, ["admin"]) as sub:
        first = Serve(db, env=RELAY_ENV).start()
        second = Serve(db, env=RELAY_ENV)
        try:
            point_at_soketi(db, soketi)
            wait_for_holder(db, first, 10)
            second.admin_token = first.admin_token
            second.start()
            assert second.process is not None
            standby = lease(db)
            assert standby["serve_pid"] == first.process.pid if first.process else False

            loads = [Load(first, "first", acked), Load(second, "second", acked)]
            time.sleep(3.0)  # both take leads; only the holder relays
            before_kill = time.time()
            first.kill()  # SIGKILL: the daemon, its writer and its relay child
            took_over_at = wait_for_holder(db, second, TAKEOVER_LIMIT + 5)
            assert took_over_at - before_kill < TAKEOVER_LIMIT, took_over_at - before_kill
            # who holds it, as an operator asks: outbox status, doctor, /readyz
            holder = f"serve pid {second.process.pid}"
            assert holder in cli(db, "outbox", "status").stdout
            assert holder in cli(db, "doctor", check=False).stdout
            readyz = httpx.get(f"{second.url}/readyz", headers=second.auth(), timeout=10).json()
            assert readyz["relay_lease"]["this_daemon"] is True, readyz
            time.sleep(1.0)  # the standby relays what waits, and the new load
            for load in loads:
                load.finish()

            with httpx.Client(base_url=second.url, headers=second.auth(), timeout=15) as c:
                stored = stored_events(c)
            expected = {
                e["event_id"]
                for e in stored
                if e["lead_id"] in acked and e["seq"] <= acked[e["lead_id"]]
            }
            assert sum(acked.values()) == len(expected) > 50, (len(expected), len(acked))
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                got = {r.data["event_id"] for r in sub.on("admin") if isinstance(r.data, dict)}
                if got >= expected:
                    break
                time.sleep(0.1)
            received = [
                r
                for r in sub.on("admin")
                if isinstance(r.data, dict) and r.data.get("event_id") in expected
            ]
            missing = expected - {r.data["event_id"] for r in received}
            assert not missing, f"{len(missing)} acknowledged events never arrived"
            duplicates, stale = check_order_per_lead([r.data for r in received])

            # copies only from the takeover: never while both daemons ran
            arrivals: dict[str, list[float]] = defaultdict(list)
            for r in received:
                arrivals[r.data["event_id"]].append(r.at)
            copies = [times[1:] for times in arrivals.values() if len(times) > 1]
            early = [t for times in copies for t in times if t < before_kill]
            late = [t for times in copies for t in times if t > took_over_at + 5]
            assert not early, f"{len(early)} copies while both daemons ran: both relayed"
            assert not late, f"{len(late)} copies long after the takeover"
            print(
                f"\nLEASE takeover {took_over_at - before_kill:.1f}s after SIGKILL; "
                f"{len(expected)} acknowledged events all arrived in order per lead; "
                f"{duplicates} duplicates ({stale} stale), all around the takeover"
            )
        finally:
            first.kill()
            second.kill()
