"""Memory: RSS of `leadrelay serve` (and any relay child) under load, and with a large backlog.

The backlog is cloned straight into SQLite from one lead and one event that leadrelay itself
wrote through its API, so the rows are exactly its own; only ids, names and event ids change.
Posting a million leads through the API would take most of the run's time budget.
"""

from __future__ import annotations

import json
import sqlite3
import statistics
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchlib.plan import Plan
from benchlib.procs import BenchError, RssSampler
from benchlib.results import Row, RunResults, fmt_ratio, ratio
from benchlib.soketi import Soketi
from benchlib.subject import Leadrelay
from benchlib.wrk import run_wrk

LIMIT_MB = 150.0
FLAT_FACTOR = 1.10  # peak with the backlog waiting vs the same load with an empty outbox
MB = 1024 * 1024


def rss_summary(sampler: RssSampler) -> dict[str, Any]:
    values = [rss / MB for _, rss in sampler.samples]
    third = max(1, len(values) // 3)
    return {
        "samples": len(values),
        "processes": sampler.max_processes,
        "start_mb": round(values[0], 1) if values else None,
        "peak_mb": round(max(values), 1) if values else None,
        "first_third_median_mb": round(statistics.median(values[:third]), 1) if values else None,
        "last_third_median_mb": round(statistics.median(values[-third:]), 1) if values else None,
    }


def post_one_lead(lr: Leadrelay) -> None:
    request = urllib.request.Request(
        f"{lr.url}/api/leads",
        method="POST",
        data=json.dumps(
            {"name": "backlog-template", "email": "lead@example.com", "source": "bench"}
        ).encode(),
        headers={"Authorization": f"Bearer {lr.token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        if response.status != 201:
            raise BenchError(f"POST /api/leads answered {response.status}")


def clone_backlog(db: Path, count: int) -> float:
    """Copy the one lead and its event `count` - 1 times; returns the seconds it took."""
    start = time.monotonic()
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        lead_cols = [r[1] for r in conn.execute("PRAGMA table_info(leads)")]
        event_cols = [r[1] for r in conn.execute("PRAGMA table_info(events)")]
        needed = {
            "leads": {"id", "name"} - set(lead_cols),
            "events": {"id", "event_id", "lead_id", "payload"} - set(event_cols),
        }
        if any(needed.values()):
            raise BenchError(f"leadrelay's schema changed; the backlog clone needs {needed}")
        template = conn.execute("SELECT id, lead_id FROM events ORDER BY id LIMIT 1").fetchone()
        if template is None:
            raise BenchError("no template event to clone")
        event_row, lead_id = template
        # Fresh ids above the template's; event ids are valid, distinct, made-up UUIDs.
        event_uuid = "printf('00000000-0000-4000-8000-%012d', n.i)"
        lead_select = ", ".join(
            {"id": "t.id + n.i", "name": "'backlog-' || n.i"}.get(c, f"t.{c}") for c in lead_cols
        )
        event_cols = [c for c in event_cols if c != "id"]
        event_select = ", ".join(
            {
                "event_id": event_uuid,
                "lead_id": "t.lead_id + n.i",
                "payload": f"json_set(t.payload, '$.event_id', {event_uuid}, "
                "'$.lead.id', t.lead_id + n.i, '$.lead.name', 'backlog-' || n.i)",
            }.get(c, f"t.{c}")
            for c in event_cols
        )
        series = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
        conn.execute("BEGIN")
        conn.execute(
            series + f"INSERT INTO leads ({', '.join(lead_cols)}) "
            f"SELECT {lead_select} FROM n, leads t WHERE t.id = ?",
            (count - 1, lead_id),
        )
        conn.execute(
            series + f"INSERT INTO events ({', '.join(event_cols)}) "
            f"SELECT {event_select} FROM n, events t WHERE t.id = ?",
            (count - 1, event_row),
        )
        conn.execute("COMMIT")
    finally:
        conn.close()
    return time.monotonic() - start


def loaded_rss(plan: Plan, lr: Leadrelay) -> tuple[RssSampler, dict[str, Any]]:
    assert lr.server is not None
    with RssSampler(lr.server.pid) as sampler:
        result = run_wrk(
            f"{lr.url}/api/leads",
            duration_s=plan.backlog_load_s,
            connections=plan.connections,
            token=lr.token,
        )
    lr.server.check_alive()
    return sampler, result.as_dict()


def backlog_memory(plan: Plan, soketi: Soketi, work: Path) -> dict[str, Any]:
    lr = Leadrelay(work / "backlog.db", soketi, work)
    lr.start("leadrelay-backlog-template", relaying=False)
    try:
        post_one_lead(lr)
    finally:
        lr.stop()
    raw: dict[str, Any] = {"clone_seconds": round(clone_backlog(lr.db, plan.backlog_events), 1)}
    raw["pending_at_start"] = lr.pending()
    if raw["pending_at_start"] < plan.backlog_events:
        raise BenchError(f"only {raw['pending_at_start']:,} events pending after the clone")
    lr.start("leadrelay-backlog", relaying=False)
    try:
        paused, raw["paused_load"] = loaded_rss(plan, lr)
        raw["paused_rss"] = rss_summary(paused)
        lr.set_relaying(True)
        relaying, raw["relaying_load"] = loaded_rss(plan, lr)
        raw["relaying_rss"] = rss_summary(relaying)
        raw["pending_at_end"] = lr.pending()
    finally:
        lr.stop()
    raw["peak_mb"] = max(raw["paused_rss"]["peak_mb"], raw["relaying_rss"]["peak_mb"])
    for key in ("paused_load", "relaying_load"):
        raw[key] = {k: raw[key][k] for k in ("rps", "non_2xx", "socket_errors", "requests")}
    return raw


def measure_memory(
    plan: Plan,
    soketi: Soketi,
    work: Path,
    results: RunResults,
    intake_samplers: dict[str, RssSampler],
    leadrelay_ready: Callable[[], str | None],
    intake_ran: bool,
) -> None:
    raw: dict[str, Any] = {"intake": {k: rss_summary(s) for k, s in intake_samplers.items()}}
    under_load = max((v["peak_mb"] for v in raw["intake"].values() if v["peak_mb"]), default=None)
    load_note = ""
    if under_load is None:
        load_note = (
            "leadrelay's intake runs did not run (see above)"
            if intake_ran
            else "needs the intake runs of the same bench run"
        )
    results.rows.append(
        Row(
            measure=(
                "Memory: RSS of serve and its processes (lead writer, relay) "
                "under the intake load (peak)"
            ),
            target=f"≤ {LIMIT_MB:g} MB",
            needs_peer=False,
            leadrelay=under_load,
            leadrelay_text="not run" if under_load is None else f"{under_load:.0f} MB",
            peer_text="—",
            ratio_text="—",
            met=None if under_load is None else under_load <= LIMIT_MB,
            notes=[load_note] if load_note else [],
        )
    )

    note = ""
    try:
        why_not = leadrelay_ready()
        if why_not:
            raise BenchError(why_not)
        raw["backlog"] = backlog_memory(plan, soketi, work)
        for phase in ("paused_load", "relaying_load"):
            load = raw["backlog"][phase]
            if load["non_2xx"] or load["socket_errors"]:
                results.failures.append(
                    f"memory, backlog {phase}: {load['non_2xx']} non-2xx, "
                    f"{load['socket_errors']} socket errors"
                )
    except BenchError as exc:
        note = str(exc)
        results.problems.append(f"memory with a backlog: {exc}")
    results.raw["memory"] = raw

    backlog = raw.get("backlog", {})
    value = backlog.get("peak_mb")
    # The same load with an empty outbox: the intake runs, phase by phase.
    empty = [raw["intake"][k]["peak_mb"] for k in ("paused", "relaying") if k in raw["intake"]]
    baseline = max(empty) if empty else None
    growth = ratio(value, baseline)
    met = None
    if value is not None and growth is not None:
        met = value <= LIMIT_MB and growth <= FLAT_FACTOR
    results.rows.append(
        Row(
            measure=f"Memory: {plan.backlog_events:,} events waiting in the outbox, under the same"
            " load, paused then relaying (peak RSS)",
            target=f"≤ {LIMIT_MB:g} MB and flat (≤ {FLAT_FACTOR:.2f}× the empty-outbox peak)",
            leadrelay=value,
            leadrelay_text="not run" if value is None else f"{value:.0f} MB",
            peer_name="the same daemon with an empty outbox",
            peer=baseline,
            peer_text="not run" if baseline is None else f"{baseline:.0f} MB",
            ratio_text=fmt_ratio(growth),
            met=met,
            notes=[n for n in (note, "" if baseline else load_note) if n],
        )
    )
