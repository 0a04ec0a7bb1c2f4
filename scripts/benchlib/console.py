"""The web console: a lead posted → the bell updated in a real page, beside a plain subscriber.

One leadrelay relaying to soketi; one headless Chromium signed in to the admin console
(benchlib.console_page) and one plain websocket subscriber on `admin` (benchlib.subscriber),
both in processes of their own. Leads go out at a steady rate; each one's latency is the time
its notification appeared in the page's DOM (or its event reached the subscriber) minus the
time it was due to be sent, all on CLOCK_MONOTONIC.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import uvloop

from benchlib.console_page import CHROMIUM, PUSHER_JS
from benchlib.e2e import _post_leads, analyse
from benchlib.plan import Plan
from benchlib.procs import BenchError, bench_env
from benchlib.pusherkit import Subscriber
from benchlib.results import Row, RunResults, fmt_ratio, ratio
from benchlib.soketi import Soketi
from benchlib.subject import Leadrelay

TARGET_MS = 1000.0  # what the console's browser test holds it to: within a second


class ConsolePage(Subscriber):
    """benchlib.console_page in its own process; the same expect/finish protocol."""

    def __init__(self, url: str, token: str, out: Path) -> None:  # noqa: D107
        from leadrelay.web.console import PUSHER_JS_CDN

        self.out = out
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchlib.console_page",
                "--url",
                url,
                "--token",
                token,
                "--cdn",
                PUSHER_JS_CDN,
                "--out",
                str(out),
            ],
            env=bench_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._wait_line("READY", timeout=60)

    def clock_error_ms(self) -> float | None:
        try:
            value = json.loads(self.out.read_text()).get("clock_error_ms")
        except (OSError, ValueError):
            return None
        return None if value is None else float(value)


def why_no_browser() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is missing (scripts/install-browser)"
    if not PUSHER_JS.exists():
        return f"{PUSHER_JS} is missing (scripts/install-js-clients)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "the playwright package is missing (pip install -e '.[test]')"
    return None


def run_console(plan: Plan, soketi: Soketi, work: Path) -> dict[str, Any]:
    lr = Leadrelay(work / "console.db", soketi, work)
    lr.start("leadrelay-console", relaying=True)
    page = subscriber = None
    try:
        page = ConsolePage(lr.url, lr.token, work / "console-page.json")
        subscriber = Subscriber(soketi, work / "console-subscriber.json")
        load = replace(
            plan,
            e2e_rate=plan.console_rate,
            e2e_warmup_s=plan.console_warmup_s,
            e2e_s=plan.console_s,
        )
        sent, elapsed = uvloop.run(_post_leads(lr.url, lr.token, load))
        accepted = sum(1 for s in sent if 200 <= s.status < 300)
        page.expect(accepted)
        subscriber.expect(accepted)
        rang = page.finish(timeout=plan.catch_up_timeout_s)
        heard = subscriber.finish(timeout=plan.catch_up_timeout_s)
    finally:
        for proc in (page, subscriber):
            if proc is not None:
                proc.kill()
        lr.stop()
    if heard.error or rang.error:
        raise BenchError(f"console page: {rang.error or '-'}; subscriber: {heard.error or '-'}")
    page_stats = analyse(sent, rang.received, elapsed, plan.console_rate)
    page_stats["clock_error_ms"] = page.clock_error_ms()
    return {
        "page": page_stats,
        "subscriber": analyse(sent, heard.received, elapsed, plan.console_rate),
    }


def measure_console(
    plan: Plan,
    soketi: Soketi,
    work: Path,
    results: RunResults,
    leadrelay_ready: Callable[[], str | None],
) -> None:
    raw: dict[str, Any] = {}
    notes: list[str] = []
    try:
        why_not = leadrelay_ready() or why_no_browser()
        if why_not:
            raise BenchError(why_not)
        raw = run_console(plan, soketi, work)
    except BenchError as exc:
        notes.append(str(exc))
    results.problems += [f"console, {n}" for n in notes]
    if raw.get("page", {}).get("non_2xx"):
        results.failures.append(f"console: {raw['page']['non_2xx']} leads not 2xx")
    results.raw["console"] = raw
    page, sub = raw.get("page", {}), raw.get("subscriber", {})
    rate = f"{plan.console_rate:,} leads/s for {plan.console_s:g} s"
    for pct in ("p50", "p99"):
        value, peer = page.get(f"{pct}_ms"), sub.get(f"{pct}_ms")
        met = None if value is None else (value <= TARGET_MS and page["missing"] == 0)
        results.rows.append(
            Row(
                measure=f"Console {pct}: lead posted → bell updated in the page ({rate})",
                target=f"≤ {TARGET_MS:,.0f} ms, none missing",
                leadrelay=value,
                leadrelay_text="not run"
                if value is None
                else f"{value:.1f} ms ({page['missing']} missing)",
                peer_name="the same events at a plain websocket subscriber",
                peer=peer,
                peer_text="not run" if peer is None else f"{peer:.1f} ms",
                ratio_text=fmt_ratio(ratio(value, peer)),
                met=met,
                notes=notes,
            )
        )
