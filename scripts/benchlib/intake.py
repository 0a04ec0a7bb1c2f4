"""Durable intake: POST /api/leads under wrk, leadrelay beside the bare ceiling and a naive port."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchlib.plan import Plan
from benchlib.procs import BenchError, RssSampler, Server, free_port
from benchlib.results import Row, RunResults, fmt_ratio, ratio
from benchlib.soketi import Soketi
from benchlib.subject import Leadrelay
from benchlib.wrk import WrkResult, run_wrk


def uvicorn_peer(
    name: str, app: str, log_dir: Path, env: dict[str, str] | None = None
) -> tuple[Server, str]:
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--workers",
        "1",
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    server = Server(name, argv, env=env, log_dir=log_dir).start()
    url = f"http://127.0.0.1:{port}"
    try:
        server.wait_http(f"{url}/healthz")
    except BaseException:
        server.stop()
        raise
    return server, url


def load(
    plan: Plan, server: Server, url: str, token: str = "", sample_rss: bool = False
) -> tuple[WrkResult, RssSampler | None]:
    """A warm-up wrk run (discarded), then the measured one, optionally sampling RSS."""
    target = f"{url}/api/leads"
    if plan.warmup_s:
        run_wrk(target, duration_s=plan.warmup_s, connections=plan.connections, token=token)
    server.check_alive()
    sampler = RssSampler(server.pid) if sample_rss else None
    if sampler is not None:
        with sampler:
            result = run_wrk(
                target, duration_s=plan.intake_s, connections=plan.connections, token=token
            )
    else:
        result = run_wrk(
            target, duration_s=plan.intake_s, connections=plan.connections, token=token
        )
    server.check_alive()
    return result, sampler


def describe(result: WrkResult | None) -> str:
    if result is None:
        return "not run"
    text = f"{result.rps:,.0f} req/s · p99 {result.p99_ms:.1f} ms · {result.non_2xx} non-2xx"
    if result.socket_errors:
        text += f" · {result.socket_errors} socket errors"
    return text


def note_failures(results: RunResults, what: str, result: WrkResult) -> None:
    if result.failures:
        results.failures.append(
            f"{what}: {result.non_2xx} non-2xx responses, {result.socket_errors} socket errors"
        )


def measure_intake(
    plan: Plan,
    soketi: Soketi,
    work: Path,
    results: RunResults,
    leadrelay_ready: Callable[[], str | None],
) -> dict[str, Any]:
    """Runs the four servers; returns the RSS samplers of leadrelay's runs for the memory row."""
    raw: dict[str, Any] = {}
    runs: dict[str, WrkResult | None] = {
        "bare": None,
        "naive": None,
        "paused": None,
        "relaying": None,
    }
    notes: dict[str, str] = {}
    samplers: dict[str, Any] = {}

    def attempt(key: str, body: Callable[[], WrkResult]) -> None:
        try:
            result = runs[key] = body()
            raw[key] = result.as_dict()
            note_failures(results, f"intake {key}", result)
        except BenchError as exc:
            notes[key] = str(exc)
            results.problems.append(f"intake {key}: {exc}")

    def bare() -> WrkResult:
        server, url = uvicorn_peer("bare", "benchlib.peers.bare_app:app", work)
        with server:
            return load(plan, server, url)[0]

    def naive() -> WrkResult:
        env = {
            "NAIVE_DB": str(work / "naive.db"),
            "PUSHER_APP_ID": soketi.app_id,
            "PUSHER_KEY": soketi.key,
            "PUSHER_SECRET": soketi.secret,
            "PUSHER_HOST": "127.0.0.1",
            "PUSHER_PORT": str(soketi.port),
        }
        server, url = uvicorn_peer("naive", "benchlib.peers.naive_app:app", work, env)
        with server:
            return load(plan, server, url)[0]

    def leadrelay_run(key: str, relaying: bool) -> WrkResult:
        why_not = leadrelay_ready()
        if why_not:
            raise BenchError(why_not)
        lr = Leadrelay(work / f"intake-{key}.db", soketi, work)
        server = lr.start(f"leadrelay-intake-{key}", relaying=relaying)
        try:
            result, sampler = load(plan, server, lr.url, token=lr.token, sample_rss=True)
            samplers[key] = sampler
            # What the load left behind, and how long the relay takes to catch up.
            pending, waited = lr.wait_pending(
                at_most=0, timeout=plan.catch_up_timeout_s if relaying else 0
            )
            raw[f"{key}_after_load"] = {
                "pending": pending,
                "seconds_to_drain": round(waited, 2) if relaying and pending == 0 else None,
            }
            return result
        finally:
            lr.stop()

    attempt("bare", bare)
    attempt("naive", naive)
    attempt("paused", lambda: leadrelay_run("paused", relaying=False))
    attempt("relaying", lambda: leadrelay_run("relaying", relaying=True))

    bare_r, naive_r, paused_r, relay_r = (runs[k] for k in ("bare", "naive", "paused", "relaying"))

    def row(
        measure: str,
        result: WrkResult | None,
        key: str,
        peer_name: str,
        peer: WrkResult | None,
        peer_key: str,
        factor: float,
        label: str,
    ) -> Row:
        value = result.rps if result else None
        peer_value = peer.rps if peer else None
        r = ratio(value, peer_value)
        met = None
        if r is not None and result is not None:
            met = r >= factor and result.failures == 0
        return Row(
            measure=measure,
            target=f"≥ {factor:g}× {label}, zero non-2xx",
            leadrelay=value,
            leadrelay_text=describe(result) if result else "not run",
            peer_name=peer_name,
            peer=peer_value,
            peer_text=describe(peer) if peer else "not run",
            ratio_text=fmt_ratio(r, f" {label}"),
            met=met,
            notes=[notes[k] for k in (key, peer_key) if k in notes],
        )

    conns = f"{plan.connections} connections, {plan.intake_s} s"
    results.rows += [
        row(
            f"Durable intake, relaying paused (POST /api/leads, {conns})",
            paused_r,
            "paused",
            "bare Starlette endpoint (ceiling)",
            bare_r,
            "bare",
            0.7,
            "ceiling",
        ),
        row(
            "Durable intake, relaying to soketi (against the ceiling)",
            relay_r,
            "relaying",
            "bare Starlette endpoint (ceiling)",
            bare_r,
            "bare",
            0.5,
            "ceiling",
        ),
        row(
            "Durable intake, relaying to soketi (against the naive port)",
            relay_r,
            "relaying",
            "naive port (commit per request + inline AsyncIOBackend trigger)",
            naive_r,
            "naive",
            4.0,
            "naive",
        ),
    ]
    results.raw["intake"] = raw
    return samplers
