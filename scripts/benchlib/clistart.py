"""CLI start: wall time of `leadrelay --help` beside `python -c pass`."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from benchlib.plan import Plan
from benchlib.procs import REPO_ROOT, BenchError, bench_env
from benchlib.results import Row, RunResults, fmt_ratio, ratio
from benchlib.subject import leadrelay_argv

LIMIT_MS = 150.0


def wall_times_ms(argv: Sequence[str], runs: int) -> list[float]:
    """One untimed run to warm the page cache, then `runs` timed ones."""
    env = bench_env()
    times = []
    for i in range(runs + 1):
        start = time.perf_counter()
        proc = subprocess.run(
            argv,
            env=env,
            cwd=REPO_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
        elapsed = (time.perf_counter() - start) * 1000
        if proc.returncode != 0:
            raise BenchError(f"`{' '.join(argv)}` exited {proc.returncode}: {proc.stderr[-300:]}")
        if i:
            times.append(elapsed)
    return times


def summary(times: list[float]) -> dict[str, Any]:
    return {
        "runs": len(times),
        "median_ms": round(statistics.median(times), 1),
        "min_ms": round(min(times), 1),
        "max_ms": round(max(times), 1),
        "all_ms": [round(t, 1) for t in times],
    }


def measure_cli_start(
    plan: Plan, results: RunResults, leadrelay_ready: Callable[[], str | None]
) -> None:
    raw: dict[str, Any] = {}
    notes = []
    argv = leadrelay_argv() + ["--help"]
    try:
        raw["python_pass"] = summary(wall_times_ms([sys.executable, "-c", "pass"], plan.cli_runs))
    except BenchError as exc:
        notes.append(str(exc))
    try:
        why_not = leadrelay_ready()
        if why_not:
            raise BenchError(why_not)
        raw["leadrelay_help"] = summary(wall_times_ms(argv, plan.cli_runs))
    except BenchError as exc:
        notes.append(str(exc))
    # shown relative to the checkout, whose path differs from machine to machine
    shown = [os.path.relpath(a, REPO_ROOT) if a.startswith(f"{REPO_ROOT}/") else a for a in argv]
    raw["leadrelay_command"] = " ".join(shown)
    results.problems += [f"CLI start: {n}" for n in notes]
    results.raw["cli_start"] = raw
    value = raw.get("leadrelay_help", {}).get("median_ms")
    peer = raw.get("python_pass", {}).get("median_ms")
    results.rows.append(
        Row(
            measure=f"CLI start: `leadrelay --help` (median of {plan.cli_runs})",
            target=f"≤ {LIMIT_MS:g} ms",
            leadrelay=value,
            leadrelay_text="not run" if value is None else f"{value:.0f} ms",
            peer_name="`python -c pass`",
            peer=peer,
            peer_text="not run" if peer is None else f"{peer:.0f} ms",
            ratio_text=fmt_ratio(ratio(value, peer)),
            met=None if value is None else value <= LIMIT_MS,
            notes=notes,
        )
    )
