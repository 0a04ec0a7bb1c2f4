"""Relay drain: a backlog of pending events into soketi, beside the blocking pusher trigger
and beside soketi's own ingest limit (the fair ceiling: what a lean client gets in)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pusher
import uvloop

from benchlib.leanhttp import LeanPusherBackend
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


async def _trigger_batches(soketi: Soketi, events: int, in_flight: int) -> float:
    """Send `events` to `admin` as trigger_batch calls of 10, `in_flight` at once, over the
    lean keep-alive client; the seconds it took."""
    client = pusher.Pusher(
        app_id=soketi.app_id,
        key=soketi.key,
        secret=soketi.secret,
        host="127.0.0.1",
        port=soketi.port,
        ssl=False,
        backend=LeanPusherBackend,
    )
    batches = [
        [
            {
                "channel": "admin",
                "name": "lead.assigned",
                "data": json.dumps(lead_event(f"ingest-{n}", n)),
            }
            for n in range(start, min(start + 10, events))
        ]
        for start in range(0, events, 10)
    ]
    queue = iter(batches)

    async def worker() -> None:
        for batch in queue:
            await client.trigger_batch(batch)  # a bad status raises

    start = time.monotonic()
    try:
        await asyncio.gather(*(worker() for _ in range(in_flight)))
    finally:
        LeanPusherBackend.close()
    return time.monotonic() - start


def soketi_ingest_limit(plan: Plan, soketi: Soketi, work: Path) -> dict[str, Any]:
    """The same number of events as leadrelay's drain, straight into soketi: batches of 10
    at each in-flight level of the plan; the best level is the ceiling."""
    levels: dict[str, Any] = {}
    for in_flight in plan.ingest_in_flight:
        subscriber = Subscriber(soketi, work / f"drain-ingest-{in_flight}.json")
        try:
            subscriber.expect(plan.drain_events)
            try:
                sent_s = uvloop.run(_trigger_batches(soketi, plan.drain_events, in_flight))
            except Exception as exc:
                raise BenchError(f"trigger_batch failed at {in_flight} in flight: {exc}") from exc
            received = subscriber.finish(timeout=max(60.0, plan.drain_events / 2_000))
        finally:
            subscriber.kill()
        level = delivery_rate(received)
        level["send_s"] = round(sent_s, 3)
        level["missing"] = plan.drain_events - received.distinct_event_ids
        levels[str(in_flight)] = level
    best = max(levels, key=lambda k: levels[k]["events_per_s"] or 0)
    return {
        "events": plan.drain_events,
        "levels": levels,
        "best_in_flight": int(best),
        **levels[best],
    }


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
    ingest_notes: list[str] = []
    try:
        raw["soketi_ingest"] = soketi_ingest_limit(plan, soketi, work)
    except BenchError as exc:
        ingest_notes.append(f"soketi's ingest limit: {exc}")
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
    results.problems += [f"relay drain, {n}" for n in notes + ingest_notes]
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
    ingest = raw.get("soketi_ingest", {})
    ceiling = ingest.get("events_per_s")
    tried = ", ".join(
        f"{k} in flight {v['events_per_s'] or 0:,.0f}/s"
        for k, v in ingest.get("levels", {}).items()
    )
    results.rows.append(
        Row(
            measure="Relay drain, against soketi's own ingest limit (the fair ceiling)",
            target="none: how much of what soketi can take in the relay delivers",
            leadrelay=value,
            leadrelay_text="not run" if value is None else f"{value:,.0f} events/s",
            peer_name="lean client, trigger_batch of 10, the best of "
            f"{len(plan.ingest_in_flight)} in-flight levels",
            peer=ceiling,
            peer_text="not run"
            if ceiling is None
            else f"{ceiling:,.0f} events/s ({ingest['best_in_flight']} in flight; {tried}; "
            f"{ingest['missing']} missing)",
            ratio_text=fmt_ratio(ratio(value, ceiling), " ceiling"),
            met=None,
            notes=notes + ingest_notes,
        )
    )
    if ingest and ingest.get("missing"):
        results.failures.append(f"soketi ingest limit: {ingest['missing']} events never arrived")
