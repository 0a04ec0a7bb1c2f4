"""Signed status webhooks: POST /api/leads/status under wrk, beside POST /api/leads on the
same daemon in the same run.

Both write one durable row change and one event through the lead writer; a status webhook
also verifies a Standard Webhooks signature and finds its lead by external_id.  wrk's Lua
has no HMAC, so the requests are signed beforehand, each a delivery of its own (a fresh
`webhook-id`), each a real change (the leads alternate between two statuses, with a
`changed_at` that only grows), so every answer is `applied` and fires one event.
"""

from __future__ import annotations

import http.client
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from benchlib.intake import describe, load, note_failures
from benchlib.plan import Plan
from benchlib.procs import BENCH_DIR, BenchError
from benchlib.results import Row, RunResults, fmt_ratio, ratio
from benchlib.soketi import Soketi
from benchlib.subject import Leadrelay, run_cli
from benchlib.wrk import WrkResult, median_round, run_wrk

SIGNED_SCRIPT = BENCH_DIR / "post_signed.lua"
LEADS = 512  # leads the webhooks change, round-robin
THREADS = 2
TARGET = 0.5
# signed ahead per second of the run: well above what two cores answer (a run that uses them
# all up stops early, and its rate is still over the time it ran)
SIGNED_PER_SECOND = 12_000


def seed_leads(url: str, token: str, count: int) -> None:
    """Leads with external_ids crm-0 … crm-{count-1}, over one keep-alive connection."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    try:
        for n in range(count):
            body = json.dumps({"name": f"Status lead {n}", "external_id": f"crm-{n}"})
            conn.request("POST", "/api/leads", body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.status != 201:
                raise BenchError(f"seeding lead {n} answered {response.status}")
    finally:
        conn.close()


def sign_requests(path: Path, secret: str, count: int, first: int) -> None:
    """`count` signed status webhooks, numbered from `first`, one line each (see the Lua)."""
    from leadrelay.web.webhooks import sign_headers

    now = int(time.time())
    base_ms = 1_764_000_000_000  # changed_at: a millisecond later for every request
    statuses = ("contacted", "qualified")
    lines = []
    for n in range(first, first + count):
        lead, lap = n % LEADS, n // LEADS
        changed = time.gmtime((base_ms + n) // 1000)
        changed_at = time.strftime("%Y-%m-%dT%H:%M:%S", changed) + f".{(base_ms + n) % 1000:03d}Z"
        body = json.dumps(
            {"external_id": f"crm-{lead}", "status": statuses[lap % 2], "changed_at": changed_at},
            separators=(",", ":"),
        ).encode()
        headers = sign_headers(secret, body, msg_id=f"msg_bench_{n}", timestamp=now)
        lines.append(
            f"{headers['webhook-id']}\t{headers['webhook-timestamp']}\t"
            f"{headers['webhook-signature']}\t{body.decode()}"
        )
    path.write_text("\n".join(lines) + "\n")


def load_signed(plan: Plan, lr: Leadrelay, secret: str, work: Path, first: int) -> WrkResult:
    """A warm-up run (discarded) and the measured one, of fresh deliveries numbered from
    `first` (each run signs `SIGNED_PER_SECOND` per second of it)."""
    target = f"{lr.url}/api/leads/status"
    result = None
    for duration in ([plan.warmup_s] if plan.warmup_s else []) + [plan.intake_s]:
        count = duration * SIGNED_PER_SECOND
        signed = work / f"signed-{first}.tsv"
        sign_requests(signed, secret, count, first)
        first += count
        if lr.server is not None:
            lr.server.check_alive()
        per_thread = count // THREADS - plan.connections // THREADS  # never past the end
        result = run_wrk(
            target,
            duration_s=duration,
            connections=plan.connections,
            threads=THREADS,
            max_requests=per_thread * THREADS,
            script=SIGNED_SCRIPT,
            script_env={
                "BENCH_PATH": "/api/leads/status",
                "BENCH_SIGNED": str(signed),
                "BENCH_THREADS": str(THREADS),
            },
        )
        signed.unlink()
    assert result is not None
    return result


def measure_status(
    plan: Plan, soketi: Soketi, work: Path, results: RunResults, leadrelay_ready: Any
) -> None:
    """`plan.intake_rounds` rounds on one daemon, each POST /api/leads then the status
    webhooks; the row shows the round with the median ratio (the machine's speed drifts more
    than the gap measured), the notes every round's."""
    raw: dict[str, Any] = {"rounds": []}
    notes: list[str] = []
    pairs: list[tuple[WrkResult, WrkResult]] = []
    try:
        why_not = leadrelay_ready()
        if why_not:
            raise BenchError(why_not)
        lr = Leadrelay(work / "status.db", soketi, work)
        server = lr.start("leadrelay-status", relaying=False)
        try:
            secret = json.loads(run_cli("webhooks", "secret", "--json", db=lr.db))["secret"]
            seed_leads(lr.url, lr.token, LEADS)
            first = 0
            for _ in range(plan.intake_rounds):
                leads_r = load(plan, server, lr.url, token=lr.token)[0]
                note_failures(results, "status bench: POST /api/leads", leads_r)
                before = lr.pending()
                status_r = load_signed(plan, lr, secret, work, first)
                first += (plan.warmup_s + plan.intake_s) * SIGNED_PER_SECOND
                note_failures(results, "status bench: POST /api/leads/status", status_r)
                server.check_alive()
                pairs.append((status_r, leads_r))
                raw["rounds"].append(
                    {
                        "leads": leads_r.as_dict(),
                        "status": status_r.as_dict(),
                        # every change applied fires one event: the outbox grows by one for
                        # each answer (warm-up too), plus the requests in flight when wrk
                        # stopped (at most one per connection)
                        "events_written_by_the_status_load": lr.pending() - before,
                    }
                )
        finally:
            lr.stop()
    except BenchError as exc:
        notes.append(str(exc))
        results.problems.append(f"status webhooks: {exc}")
    results.raw["status_webhooks"] = raw
    status_r, leads_r = median_round(pairs, notes)

    value = status_r.rps if status_r else None
    peer = leads_r.rps if leads_r else None
    r = ratio(value, peer)
    met = None
    if r is not None and status_r is not None and leads_r is not None:
        met = r >= TARGET and status_r.failures == 0
    conns = f"{plan.connections} connections, {plan.intake_s} s, relaying paused"
    results.rows.append(
        Row(
            measure=f"Signed status webhooks (POST /api/leads/status, {conns})",
            target=f"≥ {TARGET:g}× POST /api/leads on the same daemon, zero non-2xx",
            leadrelay=value,
            leadrelay_text=describe(status_r) if status_r else "not run",
            peer_name="POST /api/leads (admin token), the same daemon, the same run",
            peer=peer,
            peer_text=describe(leads_r) if leads_r else "not run",
            ratio_text=fmt_ratio(r, " POST /api/leads"),
            met=met,
            notes=notes,
        )
    )
