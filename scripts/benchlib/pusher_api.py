"""leadrelay as a durable Pusher: the `pusher` SDK's trigger sent to leadrelay's Pusher API.

Two rows.  Throughput: a signed trigger under wrk beside POST /api/leads on the same daemon
in the same run (both stored through the lead writer, group-committed and fsynced, relaying
paused so that only the intake is measured).  End to end: the SDK's trigger at a steady rate,
through leadrelay to soketi, to a websocket subscriber, beside the same trigger sent straight
to soketi (the end-to-end section's peer run, or one of its own): the price of durability.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson
import pusher
import pusher.http

from benchlib.e2e import latency_rows, run_one, trigger_sdk
from benchlib.intake import describe, load, note_failures
from benchlib.plan import Plan
from benchlib.procs import BENCH_DIR, BenchError
from benchlib.pusherkit import lead_event
from benchlib.results import Row, RunResults, fmt_ratio, ratio
from benchlib.soketi import Soketi
from benchlib.subject import Leadrelay
from benchlib.wrk import WrkResult, median_round, run_wrk

TRIGGER_SCRIPT = BENCH_DIR / "post_trigger.lua"
ENV = {"LEADRELAY_PUSHER_API": "true"}
THROUGHPUT_TARGET = 0.5  # of POST /api/leads: both are one durable write through the writer


def signed_trigger(soketi: Soketi) -> tuple[str, str]:
    """One trigger signed now, as the SDK signs it: its path with the query, and its body."""
    client = pusher.Pusher(
        app_id=soketi.app_id, key=soketi.key, secret=soketi.secret, host="x", ssl=False
    )
    params = {
        "name": "lead.assigned",
        "channels": ["bench-throughput"],
        "data": orjson.dumps(lead_event("throughput")).decode(),
    }
    inner = client._pusher_client
    request = pusher.http.Request(inner, "POST", f"/apps/{soketi.app_id}/events", params)
    return request.signed_path, request.body


def load_triggers(plan: Plan, lr: Leadrelay, soketi: Soketi) -> WrkResult:
    """A warm-up run (discarded) and the measured one; signed afresh for each (600 s)."""
    result = None
    for duration in ([plan.warmup_s] if plan.warmup_s else []) + [plan.intake_s]:
        target, body = signed_trigger(soketi)
        if lr.server is not None:
            lr.server.check_alive()
        result = run_wrk(
            f"{lr.url}{target}",
            duration_s=duration,
            connections=plan.connections,
            script=TRIGGER_SCRIPT,
            script_env={"BENCH_TARGET": target, "BENCH_BODY": body},
        )
    assert result is not None
    return result


def measure_pusher_api(
    plan: Plan, soketi: Soketi, work: Path, results: RunResults, leadrelay_ready: Any
) -> None:
    raw: dict[str, Any] = {"rounds": []}
    notes: list[str] = []
    pairs: list[tuple[WrkResult, WrkResult]] = []
    try:
        why_not = leadrelay_ready()
        if why_not:
            raise BenchError(why_not)
        lr = Leadrelay(work / "pusher-api.db", soketi, work)
        lr.env = ENV
        server = lr.start("leadrelay-pusher-api", relaying=False)
        try:
            for _ in range(plan.intake_rounds):
                leads_r = load(plan, server, lr.url, token=lr.token)[0]
                note_failures(results, "pusher api bench: POST /api/leads", leads_r)
                before = lr.pending()
                trigger_r = load_triggers(plan, lr, soketi)
                note_failures(results, "pusher api bench: POST /apps/{id}/events", trigger_r)
                server.check_alive()
                pairs.append((trigger_r, leads_r))
                raw["rounds"].append(
                    {
                        "leads": leads_r.as_dict(),
                        "triggers": trigger_r.as_dict(),
                        "events_stored_by_the_trigger_load": lr.pending() - before,
                    }
                )
            lr.set_relaying(True)
            lr.wait_pending(0, plan.catch_up_timeout_s * 3)  # the backlog out of the way
            started = time.monotonic()
            raw["end_to_end"] = run_one(
                soketi,
                work / "e2e-pusher-api.json",
                plan,
                lambda: trigger_sdk(soketi, plan, lr.port),  # the SDK, its host leadrelay
            )
            raw["end_to_end"]["seconds"] = round(time.monotonic() - started, 1)
        finally:
            lr.stop()
    except BenchError as exc:
        notes.append(str(exc))
        results.problems.append(f"pusher api: {exc}")
    peer = results.raw.get("end_to_end", {}).get("soketi")
    if not peer:
        try:
            peer = run_one(
                soketi,
                work / "e2e-pusher-api-peer.json",
                plan,
                lambda: trigger_sdk(soketi, plan),
            )
        except BenchError as exc:
            notes.append(f"soketi peer: {exc}")
            peer = {}
    raw["soketi"] = peer
    results.raw["pusher_api"] = raw
    lr_e2e = raw.get("end_to_end", {})
    if lr_e2e.get("non_2xx"):
        results.failures.append(f"pusher api end to end: {lr_e2e['non_2xx']} triggers not 2xx")
    _throughput_row(plan, results, pairs, notes)
    results.rows += latency_rows(
        plan,
        lr_e2e,
        peer,
        notes,
        # every trigger on one channel: the worst case for order per channel, whose events
        # go out one request (up to ten events) at a time
        measure="Pusher SDK trigger through leadrelay {pct}, all on one channel: trigger → "
        "event on a websocket",
        peer_name="the same SDK trigger sent straight to soketi",
    )


def _throughput_row(
    plan: Plan, results: RunResults, pairs: list[tuple[WrkResult, WrkResult]], notes: list[str]
) -> None:
    notes = list(notes)
    trigger_r, leads_r = median_round(pairs, notes)
    value = trigger_r.rps if trigger_r else None
    peer = leads_r.rps if leads_r else None
    r = ratio(value, peer)
    met = None
    if r is not None and trigger_r is not None:
        met = r >= THROUGHPUT_TARGET and trigger_r.failures == 0
    conns = f"{plan.connections} connections, {plan.intake_s} s, relaying paused"
    results.rows.append(
        Row(
            measure=f"Pusher API trigger (POST /apps/{{id}}/events, {conns})",
            target=f"≥ {THROUGHPUT_TARGET:g}× POST /api/leads on the same daemon, zero non-2xx",
            leadrelay=value,
            leadrelay_text=describe(trigger_r) if trigger_r else "not run",
            peer_name="POST /api/leads (admin token), the same daemon, the same run",
            peer=peer,
            peer_text=describe(leads_r) if leads_r else "not run",
            ratio_text=fmt_ratio(r, " POST /api/leads"),
            met=met,
            notes=notes,
        )
    )
