"""`scripts/bench [--smoke]`: run every measure, write the report, say whether each row ran."""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchlib.clistart import measure_cli_start
from benchlib.console import measure_console
from benchlib.drain import measure_drain
from benchlib.e2e import measure_e2e
from benchlib.intake import measure_intake
from benchlib.machine import cpu_probe_ms, describe_machine, load_average
from benchlib.memory import measure_memory
from benchlib.plan import FULL, SMOKE
from benchlib.postgres import measure_postgres
from benchlib.procs import REPO_ROOT, BenchError
from benchlib.pusher_api import measure_pusher_api
from benchlib.report import render
from benchlib.results import RunResults, one_line
from benchlib.retention import measure_retention
from benchlib.search import measure_search
from benchlib.soketi import start_soketi
from benchlib.status import measure_status
from benchlib.subject import why_not_ready

SECTIONS = (
    "intake",
    "status",
    "e2e",
    "pusher_api",
    "console",
    "drain",
    "postgres",
    "memory",
    "retention",
    "search",
    "cli",
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/bench",
        description="Measure leadrelay beside its peers on this machine and write the report.",
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="tiny durations for CI: checks every row yields a figure and no "
        "request fails; asserts nothing about timing",
    )
    parser.add_argument(
        "--out",
        type=Path,
        help="the report (default: docs/dev/benchmarks.md; with --smoke, a file in "
        "the temporary directory)",
    )
    parser.add_argument(
        "--raw",
        type=Path,
        help="also write the raw figures as JSON here "
        "(default: docs/bench-raw/<plan>.json, which git ignores)",
    )
    parser.add_argument(
        "--only",
        help=f"comma-separated subset of {','.join(SECTIONS)} "
        "(for working on the bench; memory needs intake for its baseline)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the work directory (databases, server logs)"
    )
    return parser.parse_args(argv)


def log_errors(work: Path) -> dict[str, dict[str, object]]:
    """ERROR lines and tracebacks in the servers' logs: a figure from a failing server misleads."""
    found: dict[str, dict[str, object]] = {}
    for log in sorted(work.glob("*.log")):
        lines = [
            ln
            for ln in log.read_text(errors="replace").splitlines()
            if "ERROR" in ln or ln.startswith("Traceback")
        ]
        if lines:
            found[log.stem] = {"lines": len(lines), "first": lines[:3]}
    return found


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan = SMOKE if args.smoke else FULL
    only = set(args.only.split(",")) if args.only else set(SECTIONS)
    unknown = only - set(SECTIONS)
    if unknown:
        print(f"bench: unknown section(s) {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    out = args.out or (
        Path(tempfile.gettempdir()) / "leadrelay-bench-smoke.md"
        if plan.smoke
        else REPO_ROOT / "docs" / "dev" / "benchmarks.md"
    )
    raw_out = args.raw or REPO_ROOT / "docs" / "bench-raw" / f"{plan.name}.json"
    work = Path(tempfile.mkdtemp(prefix="leadrelay-bench-"))
    started = time.monotonic()
    load_before = load_average()
    probe_before = cpu_probe_ms()
    results = RunResults()

    leadrelay_ready = functools.cache(why_not_ready)

    def step(name: str) -> None:
        print(f"bench: {name} ({time.monotonic() - started:.0f} s in)", flush=True)

    print(f"bench: {plan.name} run, work directory {work}", flush=True)
    soketi = None
    try:
        soketi = start_soketi(work)
        samplers = {}
        if "intake" in only:
            step("durable intake")
            samplers = measure_intake(plan, soketi, work, results, leadrelay_ready)
        if "status" in only:
            step("status webhooks")
            measure_status(plan, soketi, work, results, leadrelay_ready)
        if "e2e" in only:
            step("end to end")
            measure_e2e(plan, soketi, work, results, leadrelay_ready)
        if "pusher_api" in only:
            step("pusher api")
            measure_pusher_api(plan, soketi, work, results, leadrelay_ready)
        if "console" in only:
            step("console")
            measure_console(plan, soketi, work, results, leadrelay_ready)
        if "drain" in only:
            step("relay drain")
            measure_drain(plan, soketi, work, results, leadrelay_ready)
        if "postgres" in only:
            step("postgresql")
            measure_postgres(plan, soketi, work, results, leadrelay_ready)
        if "memory" in only:
            step("memory")
            measure_memory(
                plan, soketi, work, results, samplers, leadrelay_ready, intake_ran="intake" in only
            )
        if "retention" in only:
            step("retention")
            measure_retention(plan, soketi, work, results, leadrelay_ready)
        if "search" in only:
            step("search and stats")
            measure_search(plan, soketi, work, results, leadrelay_ready)
        if "cli" in only:
            step("CLI start")
            measure_cli_start(plan, results, leadrelay_ready)
    except BenchError as exc:
        results.problems.append(str(exc))
        print(f"bench: stopped: {exc}", file=sys.stderr)
    finally:
        if soketi is not None:
            soketi.stop()
        results.raw["server_log_errors"] = log_errors(work)
        if args.keep:
            print(f"bench: kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    seconds = time.monotonic() - started

    out.parent.mkdir(parents=True, exist_ok=True)
    machine = describe_machine()
    machine["load_average"] = load_before
    machine["cpu_probe_ms"] = (probe_before, cpu_probe_ms())
    out.write_text(render(plan, machine, results, seconds))
    raw_out.parent.mkdir(parents=True, exist_ok=True)
    raw_out.write_text(json.dumps(results.raw, indent=1, default=str) + "\n")
    print(f"bench: wrote {out} and {raw_out} in {seconds:.0f} s")

    for row in results.rows:
        why = one_line("; ".join(row.notes)) or "not run"
        figure = row.leadrelay_text if row.produced else f"NO FIGURE ({why})"
        print(
            f"  {row.measure}: {figure} | peer {row.peer_text or '—'} | {row.ratio_text} "
            f"| target {row.target} | met {row.met}"
        )
    incomplete = [row.measure for row in results.rows if not row.produced]
    for failure in results.failures:
        print(f"bench: FAILED REQUESTS: {failure}", file=sys.stderr)
    for measure in dict.fromkeys(incomplete):
        print(f"bench: NO FIGURE: {measure}", file=sys.stderr)
    if not results.rows:
        print("bench: no row ran", file=sys.stderr)
        return 1
    return 1 if incomplete or results.failures else 0
