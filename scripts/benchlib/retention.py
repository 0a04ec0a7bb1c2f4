"""Retention rows: intake while the daemon prunes, and the outbox counts with many events stored.

Both use a database holding `plan.stored_events` delivered events, cloned from one lead
leadrelay itself wrote (memory.py's clone). For the prune row the same intake load runs twice
on it, relaying paused, the daemon pruning every second: first with every stored event
young (a prune pass finds nothing), then with every stored event made 40 days old just
before the measured load, so the daemon deletes them, a batch at a time, while the load
runs. The ratio is the second run's req/s over the first's.

The counts row times what `/metrics` and `leadrelay outbox status` read, on the young
database while the daemon runs: `GET /metrics` over HTTP, and the library call behind
`outbox status` (the command's own figure would be mostly the interpreter's start). Beside
it, the full-table count that both made before the counters, on the same database.
"""

from __future__ import annotations

import asyncio
import sqlite3
import statistics
import time
import urllib.request
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchlib.memory import clone_backlog, post_one_lead
from benchlib.plan import Plan
from benchlib.procs import BenchError
from benchlib.results import Row, RunResults, fmt_ratio, ratio
from benchlib.soketi import Soketi
from benchlib.subject import Leadrelay
from benchlib.wrk import WrkResult, run_wrk

PRUNE_FACTOR = 0.9
COUNTS_LIMIT_MS = 50.0
DAY = 86400.0
SAMPLES = 20


def stored_database(plan: Plan, soketi: Soketi, work: Path, name: str) -> Path:
    """A database with `plan.stored_events` delivered events, all of them young."""
    lr = Leadrelay(work / f"{name}.db", soketi, work)
    lr.start(f"leadrelay-{name}-template", relaying=False)
    try:
        post_one_lead(lr)
    finally:
        lr.stop()
    clone_backlog(lr.db, plan.stored_events)
    _sql(lr.db, "UPDATE events SET state = 'delivered', attempts = 1, delivered_at = created_at")
    return lr.db


def _sql(db: Path, statement: str, *params: object) -> None:
    conn = sqlite3.connect(db, isolation_level=None, timeout=30)
    try:
        conn.execute(statement, params)
    finally:
        conn.close()


def intake_run(
    plan: Plan, soketi: Soketi, work: Path, db: Path, name: str, *, age_days: float
) -> tuple[WrkResult, dict[str, Any]]:
    """The intake load on `db`, relaying paused. Just before the measured load every stored
    delivered event is dated `age_days` back (40: the daemon's next prune pass, at most a
    second later, deletes them while the load runs; 0: nothing to prune), and the WAL that
    update left is checkpointed, so both kinds of run start from the same state."""
    lr = Leadrelay(db, soketi, work)
    lr.env = {"LEADRELAY_PRUNE_INTERVAL_SECONDS": "1"}
    server = lr.start(f"leadrelay-{name}", relaying=False)
    try:
        target = f"{lr.url}/api/leads"
        if plan.warmup_s:
            run_wrk(target, duration_s=plan.warmup_s, connections=plan.connections, token=lr.token)
        dated = time.time() - age_days * DAY
        _sql(
            db,
            "UPDATE events SET created_at = ?, delivered_at = ? WHERE state = 'delivered'",
            dated,
            dated,
        )
        _sql(db, "PRAGMA wal_checkpoint(TRUNCATE)")
        before = lr.outbox_status()["delivered"]
        result = run_wrk(
            target, duration_s=plan.intake_s, connections=plan.connections, token=lr.token
        )
        server.check_alive()
        after = lr.outbox_status()["delivered"]
    finally:
        lr.stop()
    pruned = {
        "delivered_at_load_start": before,
        "pruned_during_the_measured_load": before - after,
        "delivered_left": after,
    }
    return result, pruned


def time_counts(lr: Leadrelay) -> dict[str, Any]:
    def metrics_ms() -> float:
        start = time.perf_counter()
        with urllib.request.urlopen(f"{lr.url}/metrics", timeout=10) as response:
            response.read()
        return (time.perf_counter() - start) * 1000

    metrics = [metrics_ms() for _ in range(SAMPLES)]

    async def library() -> tuple[list[float], list[float]]:
        from leadrelay.pusher import config as pusher_config
        from leadrelay.store.base import RELAY_STATE_KEY
        from leadrelay.store.sqlite import Store

        store = await Store.open(lr.db)
        try:
            status, scan = [], []
            for _ in range(SAMPLES):
                start = time.perf_counter()
                await store.outbox_counts()
                await store.get_setting(RELAY_STATE_KEY)
                await pusher_config.load(store)
                status.append((time.perf_counter() - start) * 1000)
            for _ in range(3):
                start = time.perf_counter()
                await store.counted_outbox()
                scan.append((time.perf_counter() - start) * 1000)
            return status, scan
        finally:
            await store.close()

    status, scan = asyncio.run(library())
    return {
        "metrics_ms": {
            "median": round(statistics.median(metrics), 2),
            "max": round(max(metrics), 2),
        },
        "outbox_status_ms": {
            "median": round(statistics.median(status), 2),
            "max": round(max(status), 2),
        },
        "table_scan_ms": {"median": round(statistics.median(scan), 1)},
    }


def _mean(runs: list[WrkResult]) -> WrkResult | None:
    """The runs' mean req/s and p99, on the first run's other figures."""
    if not runs:
        return None
    return replace(
        runs[0],
        rps=statistics.mean(r.rps for r in runs),
        p99_ms=statistics.mean(r.p99_ms for r in runs),
        non_2xx=sum(r.non_2xx for r in runs),
        socket_errors=sum(r.socket_errors for r in runs),
    )


def measure_retention(
    plan: Plan,
    soketi: Soketi,
    work: Path,
    results: RunResults,
    leadrelay_ready: Callable[[], str | None],
) -> None:
    raw: dict[str, Any] = {"stored_events": plan.stored_events}
    notes: list[str] = []
    young_r = old_r = None
    counts: dict[str, Any] = {}
    try:
        why_not = leadrelay_ready()
        if why_not:
            raise BenchError(why_not)
        db = stored_database(plan, soketi, work, "retention")

        lr = Leadrelay(db, soketi, work)
        lr.start("leadrelay-counts", relaying=False)
        try:
            counts = raw["counts"] = time_counts(lr)
            raw["counts"]["delivered"] = lr.outbox_status()["delivered"]
        finally:
            lr.stop()

        # young, old, then old, young: a drift of the machine's speed cancels out
        order = [(0.0, 40.0), (40.0, 0.0)][: 1 if plan.smoke else 2]
        young_runs: list[WrkResult] = []
        old_runs: list[WrkResult] = []
        raw["runs"] = []
        for n, ages in enumerate(order):
            for age in ages:
                name = f"prune-{'during' if age else 'none'}-{n}"
                result, counts_ = intake_run(plan, soketi, work, db, name, age_days=age)
                (old_runs if age else young_runs).append(result)
                raw["runs"].append({"age_days": age, **counts_, "load": result.as_dict()})
                if result.failures:
                    results.failures.append(
                        f"retention {name}: {result.non_2xx} non-2xx, "
                        f"{result.socket_errors} socket errors"
                    )
        young_r, old_r = _mean(young_runs), _mean(old_runs)
        pruned_runs = [r for r in raw["runs"] if r["age_days"]]
        raw["old_run"] = {
            "pruned_during_the_measured_load": sum(
                r["pruned_during_the_measured_load"] for r in pruned_runs
            ),
            "delivered_left": min(r["delivered_left"] for r in pruned_runs),
        }
        if raw["old_run"]["pruned_during_the_measured_load"] <= 0:
            notes.append("the daemon pruned nothing during the measured load")
        if raw["old_run"]["delivered_left"] == 0:
            notes.append(
                "the daemon had pruned every old event before the load ended: "
                "the run does not cover the whole load"
            )
        if len(old_runs) > 1:
            notes.append(
                "runs in the order nothing, prune, prune, nothing; req/s "
                + ", ".join(f"{r['load']['rps']:,.0f}" for r in raw["runs"])
                + "; the row shows the means"
            )
    except BenchError as exc:
        notes.append(str(exc))
        results.problems.append(f"retention: {exc}")
    results.raw["retention"] = raw

    r = ratio(old_r.rps if old_r else None, young_r.rps if young_r else None)
    pruned = raw.get("old_run", {}).get("pruned_during_the_measured_load")
    results.rows.append(
        Row(
            measure=(
                f"Durable intake while the daemon prunes ({plan.stored_events:,} old delivered "
                f"events stored, relaying paused, {plan.connections} connections, "
                f"{plan.intake_s} s)"
            ),
            target=f"≥ {PRUNE_FACTOR:g}× the same run with nothing to prune, zero non-2xx",
            leadrelay=old_r.rps if old_r and pruned else None,
            leadrelay_text=(
                f"{old_r.rps:,.0f} req/s · p99 {old_r.p99_ms:.1f} ms · {pruned:,} events pruned "
                "during the measured loads"
                if old_r and pruned is not None
                else "not run"
            ),
            peer_name="nothing to prune",
            peer=young_r.rps if young_r else None,
            peer_text=f"{young_r.rps:,.0f} req/s · p99 {young_r.p99_ms:.1f} ms"
            if young_r
            else "not run",
            ratio_text=fmt_ratio(r),
            met=None
            if r is None or old_r is None or young_r is None
            else r >= PRUNE_FACTOR and old_r.failures == 0 and young_r.failures == 0,
            notes=notes,
        )
    )

    metrics = counts.get("metrics_ms", {}).get("median")
    status = counts.get("outbox_status_ms", {}).get("median")
    scan = counts.get("table_scan_ms", {}).get("median")
    worst = max(metrics, status) if metrics is not None and status is not None else None
    results.rows.append(
        Row(
            measure=(
                f"`outbox status` and `/metrics` with {plan.stored_events:,} events stored "
                f"(median of {SAMPLES}, serve running)"
            ),
            target=f"≤ {COUNTS_LIMIT_MS:g} ms each",
            needs_peer=False,
            leadrelay=worst,
            leadrelay_text="not run"
            if worst is None
            else f"/metrics {metrics:.1f} ms · outbox status {status:.1f} ms",
            peer_name="the count(*) scans they replaced",
            peer=scan,
            peer_text="not run" if scan is None else f"{scan:,.0f} ms",
            ratio_text="—",
            met=None if worst is None else worst <= COUNTS_LIMIT_MS,
            notes=[] if worst is not None else notes[:1],
        )
    )
