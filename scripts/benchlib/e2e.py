"""End to end: a lead sent at a steady rate → its event received by a websocket subscriber."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pusher
import uvloop

from benchlib.leanhttp import LeanClient, LeanPusherBackend
from benchlib.plan import Plan
from benchlib.procs import BenchError
from benchlib.pusherkit import Subscriber, lead_event
from benchlib.results import Row, RunResults, fmt_ratio, ratio
from benchlib.soketi import Soketi
from benchlib.subject import Leadrelay

MAX_IN_FLIGHT = 512


@dataclass
class Sent:
    name: str
    send_ns: int
    status: int
    measured: bool  # False for the warm-up


async def paced(
    send_one: Callable[[str], Awaitable[int]], rate: int, warmup_s: float, measure_s: float
) -> tuple[list[Sent], float]:
    """Open loop: request i goes out at start + i/rate, whether or not earlier ones answered."""
    run = uuid.uuid4().hex[:8]
    warmup_n, total = int(warmup_s * rate), int((warmup_s + measure_s) * rate)
    sent: list[Sent] = []
    gate = asyncio.Semaphore(MAX_IN_FLIGHT)
    tasks: list[asyncio.Task[None]] = []

    async def one(i: int) -> None:
        name = f"e2e-{run}-{'w' if i < warmup_n else 'm'}-{i}"
        # The time it was due, not the time a slot freed up: a stalled server must not make
        # its own latency look smaller by delaying the sends behind it.
        send_ns = time.monotonic_ns()
        async with gate:
            try:
                status = await send_one(name)
            except Exception:  # a refused or failed send counts as a failure, not a crash
                status = 0
        sent.append(Sent(name, send_ns, status, i >= warmup_n))

    loop = asyncio.get_running_loop()
    start = loop.time()
    i = 0
    measure_started = 0.0
    while i < total:
        due = min(total, int((loop.time() - start) * rate) + 1)
        while i < due:
            if i == warmup_n:
                measure_started = loop.time()
            tasks.append(asyncio.create_task(one(i)))
            i += 1
        await asyncio.sleep(max(0.0, start + i / rate - loop.time()))
    measure_elapsed = loop.time() - measure_started
    await asyncio.gather(*tasks)
    return sent, measure_elapsed


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, int(-(-pct * len(ordered) // 100)))
    return ordered[rank - 1]


def analyse(
    sent: list[Sent], received: list[tuple[str, str, int]], measure_elapsed: float, rate: int
) -> dict[str, Any]:
    first_seen: dict[str, int] = {}
    for name, _event_id, recv_ns in received:
        first_seen.setdefault(name, recv_ns)
    accepted = [s for s in sent if 200 <= s.status < 300]
    measured = [s for s in accepted if s.measured]
    latencies = [(first_seen[s.name] - s.send_ns) / 1e6 for s in measured if s.name in first_seen]
    missing = [s.name for s in accepted if s.name not in first_seen]
    stats: dict[str, Any] = {
        "target_rate": rate,
        "measured_sends": sum(1 for s in sent if s.measured),
        "achieved_rate": round(sum(1 for s in sent if s.measured) / measure_elapsed, 1)
        if measure_elapsed
        else None,
        "accepted": len(accepted),
        "non_2xx": len(sent) - len(accepted),
        "received": len(first_seen),
        "duplicates": len(received) - len(first_seen),
        "missing": len(missing),
        "missing_examples": missing[:5],
    }
    if latencies:
        for pct in (50, 90, 99, 99.9):
            stats[f"p{pct:g}_ms"] = round(percentile(latencies, pct), 3)
        stats["max_ms"] = round(max(latencies), 3)
    return stats


async def _post_leads(url: str, token: str, plan: Plan) -> tuple[list[Sent], float]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    client = LeanClient(host, int(port))
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    async def send(name: str) -> int:
        body = orjson.dumps({"name": name, "source": "bench"})
        status, _ = await client.send(client.encode("POST", "/api/leads", headers, body))
        return status

    try:
        return await paced(send, plan.e2e_rate, plan.e2e_warmup_s, plan.e2e_s)
    finally:
        client.close()


async def trigger_sdk(
    soketi: Soketi, plan: Plan, port: int | None = None
) -> tuple[list[Sent], float]:
    """The `pusher` SDK's trigger, paced, to soketi itself (or to what listens on `port`
    with soketi's app: leadrelay's Pusher API, say)."""
    client = pusher.Pusher(
        app_id=soketi.app_id,
        key=soketi.key,
        secret=soketi.secret,
        host="127.0.0.1",
        port=port or soketi.port,
        ssl=False,
        backend=LeanPusherBackend,
    )

    async def send(name: str) -> int:
        await client.trigger("admin", "lead.assigned", lead_event(name))
        return 200  # a bad status raises

    try:
        return await paced(send, plan.e2e_rate, plan.e2e_warmup_s, plan.e2e_s)
    finally:
        LeanPusherBackend.close()


def run_one(
    soketi: Soketi,
    out: Path,
    plan: Plan,
    sender: Callable[[], Coroutine[Any, Any, tuple[list[Sent], float]]],
) -> dict[str, Any]:
    subscriber = Subscriber(soketi, out)
    try:
        sent, measure_elapsed = uvloop.run(sender())
        subscriber.expect(sum(1 for s in sent if 200 <= s.status < 300))
        received = subscriber.finish(timeout=plan.catch_up_timeout_s)
    finally:
        subscriber.kill()
    if received.error:
        raise BenchError(f"subscriber: {received.error}")
    return analyse(sent, received.received, measure_elapsed, plan.e2e_rate)


def measure_e2e(
    plan: Plan,
    soketi: Soketi,
    work: Path,
    results: RunResults,
    leadrelay_ready: Callable[[], str | None],
) -> None:
    raw: dict[str, Any] = {}
    notes: list[str] = []
    try:
        raw["soketi"] = run_one(
            soketi, work / "e2e-soketi.json", plan, lambda: trigger_sdk(soketi, plan)
        )
    except BenchError as exc:
        notes.append(f"soketi peer: {exc}")
    try:
        why_not = leadrelay_ready()
        if why_not:
            raise BenchError(why_not)
        lr = Leadrelay(work / "e2e.db", soketi, work)
        lr.start("leadrelay-e2e", relaying=True)
        try:
            raw["leadrelay"] = run_one(
                soketi,
                work / "e2e-leadrelay.json",
                plan,
                lambda: _post_leads(lr.url, lr.token, plan),
            )
        finally:
            lr.stop()
    except BenchError as exc:
        notes.append(f"leadrelay: {exc}")
    results.problems += [f"end to end, {n}" for n in notes]
    for who in ("soketi", "leadrelay"):
        if raw.get(who, {}).get("non_2xx"):
            results.failures.append(f"end to end {who}: {raw[who]['non_2xx']} sends not 2xx")
    results.raw["end_to_end"] = raw

    lr_stats, peer_stats = raw.get("leadrelay", {}), raw.get("soketi", {})
    results.rows += latency_rows(
        plan,
        lr_stats,
        peer_stats,
        notes,
        measure="End to end {pct}: webhook sent → event on a websocket",
        peer_name="soketi's own trigger → receive",
    )
    lr_missing = lr_stats.get("missing")
    results.rows.append(
        Row(
            measure="End to end: events missing",
            target="none missing",
            leadrelay=lr_missing,
            leadrelay_text="not run"
            if lr_missing is None
            else f"{lr_missing:,} of {lr_stats['accepted']:,} "
            f"({lr_stats['duplicates']:,} duplicates)",
            peer_name="soketi's own trigger → receive",
            peer=peer_stats.get("missing"),
            peer_text="not run"
            if not peer_stats
            else f"{peer_stats['missing']:,} of {peer_stats['accepted']:,}",
            ratio_text="—",
            met=None if lr_missing is None else lr_missing == 0,
            notes=notes,
        )
    )


def latency_rows(
    plan: Plan,
    lr_stats: dict[str, Any],
    peer_stats: dict[str, Any],
    notes: list[str],
    *,
    measure: str,
    peer_name: str,
) -> list[Row]:
    """The p50 and p99 rows of an end-to-end run beside its peer's (`measure` names the
    percentile as {pct})."""
    rows = []
    rate = f"{plan.e2e_rate:,}/s for {plan.e2e_s:g} s"
    for pct, limit in (("p50", 5.0), ("p99", 25.0)):
        value, peer = lr_stats.get(f"{pct}_ms"), peer_stats.get(f"{pct}_ms")
        met = None if value is None else (value <= limit and lr_stats["missing"] == 0)
        missing = (
            "" if value is None or not lr_stats["missing"] else f", {lr_stats['missing']:,} missing"
        )
        rows.append(
            Row(
                measure=f"{measure.format(pct=pct)} ({rate})",
                target=f"≤ {limit:g} ms, none missing",
                leadrelay=value,
                leadrelay_text="not run" if value is None else f"{value:.1f} ms{missing}",
                peer_name=peer_name,
                peer=peer,
                peer_text="not run" if peer is None else f"{peer:.1f} ms",
                ratio_text=fmt_ratio(ratio(value, peer)),
                met=met,
                notes=notes,
            )
        )
    return rows
