"""Relay drain: a backlog of pending events into soketi, beside the blocking pusher trigger."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pusher

from benchlib.plan import Plan
from benchlib.procs import BenchError
from benchlib.pusherkit import Received, Subscriber, lead_event
from benchlib.results import Row, RunResults, fmt_ratio, ratio
from benchlib.soketi import Soketi
from benchlib.subject import Leadrelay, run_cli
from benchlib.wrk import run_wrk

TARGET_EVENTS_PER_S = 15_000


def delivery_rate(received: Received) -> dict[str, Any]:
    """Events/s between the first and the last arrival at the subscriber."""
    times = sorted(recv_ns for _, _, recv_ns in received.received)
    span_s = (times[-1] - times[0]) / 1e9 if len(times) > 1 else 0.0
    return {
        "received": len(received.received),
        "distinct_event_ids": received.distinct_event_ids,
        "first_to_last_s": round(span_s, 3),
        "events_per_s": round((received.distinct_event_ids - 1) / span_s, 1) if span_s else None,
    }


def fill_backlog(lr: Leadrelay, events: int, max_seconds: int) -> dict[str, Any]:
    """POST leads with relaying paused until about `events` wait in the outbox."""
    start = time.monotonic()
    result = run_wrk(
        f"{lr.url}/api/leads", duration_s=max_seconds, token=lr.token, max_requests=events
    )
    stats = {
        "requests": result.requests,
        "rps": round(result.rps, 1),
        "non_2xx": result.non_2xx,
        "socket_errors": result.socket_errors,
        "seconds": round(time.monotonic() - start, 2),
    }
    return stats


def leadrelay_drain(plan: Plan, soketi: Soketi, work: Path) -> dict[str, Any]:
    lr = Leadrelay(work / "drain.db", soketi, work)
    lr.start("leadrelay-drain", relaying=False)
    try:
        raw: dict[str, Any] = {"fill": fill_backlog(lr, plan.drain_events, max_seconds=120)}
        pending = lr.pending()
        raw["pending_before"] = pending
        if pending == 0:
            raise BenchError("the outbox is empty after the fill: nothing to drain")
        subscriber = Subscriber(soketi, work / "drain-leadrelay.json")
        try:
            subscriber.expect(pending)
            enabled_at = time.monotonic_ns()
            run_cli("pusher", "enable", db=lr.db)
            # A generous bound: the subscriber ends as soon as every event has arrived.
            received = subscriber.finish(timeout=max(60.0, pending / 2_000))
        finally:
            subscriber.kill()
        raw.update(delivery_rate(received))
        if received.received:
            last = max(recv_ns for _, _, recv_ns in received.received)
            raw["enable_to_last_s"] = round((last - enabled_at) / 1e9, 3)
        raw["missing"] = pending - received.distinct_event_ids
        raw["pending_after"], _ = lr.wait_pending(at_most=0, timeout=10, interval=0.5)
        return raw
    finally:
        lr.stop()


def blocking_trigger_drain(plan: Plan, soketi: Soketi, work: Path) -> dict[str, Any]:
    client = pusher.Pusher(
        app_id=soketi.app_id,
        key=soketi.key,
        secret=soketi.secret,
        host="127.0.0.1",
        port=soketi.port,
        ssl=False,
    )
    subscriber = Subscriber(soketi, work / "drain-peer.json")
    try:
        subscriber.expect(plan.peer_drain_events)
        start = time.monotonic()
        for i in range(plan.peer_drain_events):
            client.trigger("admin", "lead.assigned", lead_event(f"drain-peer-{i}", i))
        trigger_s = time.monotonic() - start
        received = subscriber.finish(timeout=60)
    finally:
        subscriber.kill()
    raw = delivery_rate(received)
    raw["events"] = plan.peer_drain_events
    raw["trigger_loop_s"] = round(trigger_s, 3)
    raw["missing"] = plan.peer_drain_events - received.distinct_event_ids
    return raw


def measure_drain(
    plan: Plan,
    soketi: Soketi,
    work: Path,
    results: RunResults,
    leadrelay_ready: Callable[[], str | None],
) -> None:
    raw: dict[str, Any] = {}
    notes: list[str] = []
    try:
        raw["blocking_trigger"] = blocking_trigger_drain(plan, soketi, work)
    except BenchError as exc:
        notes.append(f"peer: {exc}")
    try:
        why_not = leadrelay_ready()
        if why_not:
            raise BenchError(why_not)
        raw["leadrelay"] = leadrelay_drain(plan, soketi, work)
        fill = raw["leadrelay"]["fill"]
        if fill["non_2xx"] or fill["socket_errors"]:
            results.failures.append(
                f"relay drain fill: {fill['non_2xx']} non-2xx, "
                f"{fill['socket_errors']} socket errors"
            )
    except BenchError as exc:
        notes.append(f"leadrelay: {exc}")
    results.problems += [f"relay drain, {n}" for n in notes]
    results.raw["relay_drain"] = raw

    lr, peer = raw.get("leadrelay", {}), raw.get("blocking_trigger", {})
    value, peer_value = lr.get("events_per_s"), peer.get("events_per_s")
    met = None
    if value is not None:
        met = value >= TARGET_EVENTS_PER_S and lr["missing"] == 0 and lr["pending_after"] == 0
    results.rows.append(
        Row(
            measure=f"Relay drain: {plan.drain_events:,} pending events into soketi",
            target=f"≥ {TARGET_EVENTS_PER_S:,} events/s, all delivered",
            leadrelay=value,
            leadrelay_text="not run"
            if value is None
            else f"{value:,.0f} events/s ({lr['distinct_event_ids']:,} of {lr['pending_before']:,}"
            f" delivered, {lr['received'] - lr['distinct_event_ids']:,} duplicates)",
            peer_name="pusher package, blocking trigger, one event per call",
            peer=peer_value,
            peer_text="not run"
            if peer_value is None
            else f"{peer_value:,.0f} events/s ({peer['events']:,} events)",
            ratio_text=fmt_ratio(ratio(value, peer_value)),
            met=met,
            notes=notes,
        )
    )
