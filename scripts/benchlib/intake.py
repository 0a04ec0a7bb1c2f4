"""Durable intake: POST /api/leads under wrk, leadrelay beside the bare ceiling and a naive port.

Two ceilings: the bare endpoint in one process (what one interpreter carries), and the fair
one, the same endpoint under `uvicorn --workers 2` (what the two cores carry: leadrelay runs
three processes on them, so beside one bare process it could read over 1×)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from benchlib.plan import Plan
from benchlib.procs import BenchError, RssSampler, Server, free_port
from benchlib.results import Row, RunResults, fmt_ratio, ratio
from benchlib.soketi import Soketi
from benchlib.subject import Leadrelay
from benchlib.wrk import WrkResult, run_wrk


def uvicorn_peer(
    name: str, app: str, log_dir: Path, env: dict[str, str] | None = None, workers: int = 1
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
        str(workers),
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
    """Runs the four servers; returns the RSS samplers of leadrelay's runs for the memory row.

    Bare, paused and relaying run `plan.intake_rounds` times, interleaved, each leadrelay run
    beside the bare run of its own round: the machine's speed drifts by more than the gaps
    being measured, so each row shows the round with the median ratio, and notes them all.
    The naive port runs once (it is an order of magnitude away).
    """
    raw: dict[str, Any] = {}
    notes: dict[str, str] = {}
    samplers: dict[str, Any] = {}
    rounds: list[dict[str, WrkResult | None]] = []

    def attempt(runs: dict[str, WrkResult | None], key: str, body: Callable[[], WrkResult]) -> None:
        runs[key] = None
        try:
            result = runs[key] = body()
            raw.setdefault(key, []).append(result.as_dict())
            note_failures(results, f"intake {key}", result)
        except BenchError as exc:
            notes[key] = str(exc)
            results.problems.append(f"intake {key}: {exc}")

    def bare() -> WrkResult:
        server, url = uvicorn_peer("bare", "benchlib.peers.bare_app:app", work)
        with server:
            return load(plan, server, url)[0]

    def bare_two_workers() -> WrkResult:
        server, url = uvicorn_peer("bare2", "benchlib.peers.bare_app:app", work, workers=2)
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

    def leadrelay_run(key: str, relaying: bool, n: int) -> WrkResult:
        why_not = leadrelay_ready()
        if why_not:
            raise BenchError(why_not)
        lr = Leadrelay(work / f"intake-{key}-{n}.db", soketi, work)
        server = lr.start(f"leadrelay-intake-{key}", relaying=relaying)
        try:
            result, sampler = load(plan, server, lr.url, token=lr.token, sample_rss=True)
            # the memory row takes the highest peak of any round
            if sampler is not None and (key not in samplers or sampler.peak > samplers[key].peak):
                samplers[key] = sampler
            # What the load left behind, and how long the relay takes to catch up.
            pending, waited = lr.wait_pending(
                at_most=0, timeout=plan.catch_up_timeout_s if relaying else 0
            )
            raw.setdefault(f"{key}_after_load", []).append(
                {
                    "pending": pending,
                    "seconds_to_drain": round(waited, 2) if relaying and pending == 0 else None,
                }
            )
            return result
        finally:
            lr.stop()

    naive_runs: dict[str, WrkResult | None] = {}
    attempt(naive_runs, "naive", naive)
    for n in range(plan.intake_rounds):
        runs: dict[str, WrkResult | None] = {}
        attempt(runs, "bare", bare)
        attempt(runs, "bare2", bare_two_workers)
        attempt(runs, "paused", partial(leadrelay_run, "paused", False, n))
        attempt(runs, "relaying", partial(leadrelay_run, "relaying", True, n))
        rounds.append(runs)

    def median_round(
        key: str, ceiling: str = "bare"
    ) -> tuple[WrkResult | None, WrkResult | None, list[float]]:
        """(leadrelay's result, the `ceiling` result of its round) for the median ratio, and
        every round's ratio."""
        pairs = [
            (mine, peer)
            for r in rounds
            if (mine := r.get(key)) is not None and (peer := r.get(ceiling)) is not None
        ]
        if not pairs:
            last = rounds[-1] if rounds else {}
            return last.get(key), last.get(ceiling), []
        pairs.sort(key=lambda pair: pair[0].rps / pair[1].rps)
        ratios = [mine.rps / peer.rps for mine, peer in pairs]
        chosen = pairs[(len(pairs) - 1) // 2]
        return chosen[0], chosen[1], ratios

    paused_r, bare_for_paused, paused_ratios = median_round("paused")
    relay_r, bare_for_relay, relay_ratios = median_round("relaying")
    paused_f, bare2_for_paused, paused_fair = median_round("paused", "bare2")
    relay_f, bare2_for_relay, relay_fair = median_round("relaying", "bare2")
    naive_r = naive_runs.get("naive")
    for key, ceiling, ratios in (
        ("paused", "bare", paused_ratios),
        ("relaying", "bare", relay_ratios),
        ("paused", "bare2", paused_fair),
        ("relaying", "bare2", relay_fair),
    ):
        if len(ratios) > 1:
            listed = ", ".join(f"{r:.2f}×" for r in ratios)
            notes[f"{key}_rounds_{ceiling}"] = (
                f"{key}: {len(ratios)} rounds, each beside its own {ceiling} run: {listed}; "
                "the row shows the median round"
            )
    raw["round_ratios"] = {
        "paused": paused_ratios,
        "relaying": relay_ratios,
        "paused_fair": paused_fair,
        "relaying_fair": relay_fair,
    }

    def row(
        measure: str,
        result: WrkResult | None,
        key: str,
        peer_name: str,
        peer: WrkResult | None,
        peer_key: str,
        factor: float | None,
        label: str,
    ) -> Row:
        value = result.rps if result else None
        peer_value = peer.rps if peer else None
        r = ratio(value, peer_value)
        met = None
        if r is not None and result is not None and factor is not None:
            met = r >= factor and result.failures == 0
        target = (
            f"≥ {factor:g}× {label}, zero non-2xx"
            if factor is not None
            else "none: the share of the two cores' HTTP leadrelay keeps"
        )
        return Row(
            measure=measure,
            target=target,
            leadrelay=value,
            leadrelay_text=describe(result) if result else "not run",
            peer_name=peer_name,
            peer=peer_value,
            peer_text=describe(peer) if peer else "not run",
            ratio_text=fmt_ratio(r, f" {label}"),
            met=met,
            notes=[notes[k] for k in (key, peer_key, f"{key}_rounds_{peer_key}") if k in notes]
            if peer_key in ("bare", "bare2")
            else [notes[k] for k in (key, peer_key) if k in notes],
        )

    conns = f"{plan.connections} connections, {plan.intake_s} s"
    results.rows += [
        row(
            f"Durable intake, relaying paused (POST /api/leads, {conns})",
            paused_r,
            "paused",
            "bare Starlette endpoint (ceiling)",
            bare_for_paused,
            "bare",
            0.7,
            "ceiling",
        ),
        row(
            "Durable intake, relaying to soketi (against the ceiling)",
            relay_r,
            "relaying",
            "bare Starlette endpoint (ceiling)",
            bare_for_relay,
            "bare",
            0.5,
            "ceiling",
        ),
        row(
            "Durable intake, relaying paused (against the fair ceiling)",
            paused_f,
            "paused",
            "bare Starlette endpoint, uvicorn --workers 2 (fair ceiling)",
            bare2_for_paused,
            "bare2",
            None,
            "fair ceiling",
        ),
        row(
            "Durable intake, relaying to soketi (against the fair ceiling)",
            relay_f,
            "relaying",
            "bare Starlette endpoint, uvicorn --workers 2 (fair ceiling)",
            bare2_for_relay,
            "bare2",
            None,
            "fair ceiling",
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
