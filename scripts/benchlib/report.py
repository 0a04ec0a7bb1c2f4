"""docs/dev/benchmarks.md from one run: the machine, the table, how it was measured, raw numbers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from benchlib.plan import Plan
from benchlib.results import Row, RunResults, one_line


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _met(row: Row) -> str:
    return {True: "yes", False: "**no**", None: "—"}[row.met]


def _peer(row: Row) -> str:
    if not row.peer_name:
        return row.peer_text or "—"
    return f"{row.peer_name}: {row.peer_text}"


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def machine_section(machine: dict[str, Any]) -> list[str]:
    packages = ", ".join(f"{k} {v}" for k, v in machine["packages"].items())
    return [
        "## Machine",
        "",
        "| | |",
        "|---|---|",
        f"| CPU | {machine['cpu']} |",
        f"| cores | {machine['cores']} |",
        f"| memory | {machine['memory_gib']} GiB |",
        f"| OS | {machine['os']} |",
        f"| Python | {machine['python']} |",
        f"| SQLite | {machine['sqlite']} |",
        f"| databases on | {machine['work_filesystem']} (the temporary directory; fsync cost "
        "depends on it) |",
        f"| Python packages | {packages} |",
        f"| load and Pusher stand-in | {machine['wrk']}; soketi {machine['soketi']} on node "
        f"{machine['node']} |",
        f"| leadrelay commit | {machine['leadrelay_commit']} |",
        f"| 1-minute load average before the run | {machine.get('load_average', 'not taken')} "
        "(other work on these cores lowers every figure) |",
        f"| CPU probe: a fixed single-core Python loop, best of 3 | {_probe(machine)} (compare "
        "it between runs: a host slowed by its other guests shows here, not in the load) |",
        "",
    ]


def _probe(machine: dict[str, Any]) -> str:
    before, after = machine.get("cpu_probe_ms") or (None, None)
    if before is None:
        return "not taken"
    return f"{before:.1f} ms before the run, {after:.1f} ms after"


def table_section(results: RunResults) -> list[str]:
    lines = [
        "## Results",
        "",
        "| # | measure | leadrelay | peer in the same run | ratio | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    notes: dict[str, list[str]] = {}
    for number, row in enumerate(results.rows, 1):
        lines.append(
            "| "
            + " | ".join(
                _cell(c)
                for c in (
                    str(number),
                    row.measure,
                    row.leadrelay_text,
                    _peer(row),
                    row.ratio_text,
                    row.target,
                    _met(row),
                )
            )
            + " |"
        )
        for note in row.notes:
            notes.setdefault(one_line(note), []).append(str(number))
    lines.append("")
    if notes:
        lines += ["Notes on the rows (why a figure is missing):", ""]
        lines += [f"- rows {', '.join(rows)}: {note}" for note, rows in notes.items()]
        lines.append("")
    logs = results.raw.get("server_log_errors") or {}
    if logs:
        lines += ["Servers that logged errors (first lines; counted, not judged):", ""]
        lines += [
            f"- {name}: {info['lines']} line(s), e.g. `{one_line(str(info['first'][0]), 200)}`"
            for name, info in logs.items()
        ]
        lines.append("")
    if results.failures:
        lines += ["Requests that failed:", "", *(f"- {f}" for f in results.failures), ""]
    return lines


def method_section(plan: Plan) -> list[str]:
    return [
        "## How each figure is taken",
        "",
        "- Every server is a subprocess on a free 127.0.0.1 port; the peers run on uvicorn with "
        "uvloop and httptools, one worker (the fair ceiling: two). One soketi serves the whole "
        "run.",
        f"- Intake: wrk, {plan.connections} connections, 2 threads, "
        f"{plan.warmup_s} s warm-up (discarded) then {plan.intake_s} s measured; every POST "
        "carries a unique lead name. A wrk Lua hook counts every status ≥ 300; socket errors "
        "count as failures too. leadrelay runs on a fresh database each time: once with "
        "`leadrelay pusher disable` (paused), once relaying to soketi. "
        f"The bare endpoint, paused and relaying run {plan.intake_rounds} time(s), interleaved; "
        "each leadrelay run is set beside the bare run of its own round, and the row shows the "
        "round with the median ratio (every round's ratio is in the notes, every run in the raw "
        "numbers). The naive port runs once. The fair ceiling is the same bare endpoint under "
        "`uvicorn --workers 2`, run in each round too: leadrelay's three processes (HTTP, lead "
        "writer, relay) share the two cores, so one bare process alone is not what the machine "
        "can carry.",
        "- Status webhooks: one `leadrelay serve`, relaying paused, 512 leads with external_ids; "
        "first the intake load above (POST /api/leads, admin token), then the same wrk load of "
        "signed `POST /api/leads/status` requests on the same daemon. wrk's Lua has no HMAC, so "
        "they are signed beforehand (`scripts/benchlib/status.py`), each a delivery of its own "
        "(a fresh webhook-id) and a real change (each lead alternates between two statuses with "
        "a growing changed_at), so each fires one event; the raw numbers hold the events the "
        "load wrote against the answers counted.",
        "- The naive port (`scripts/benchlib/peers/naive_app.py`) commits each lead and its outbox "
        "row in a transaction of its own (WAL, synchronous=FULL), then awaits the pusher "
        "package's stock `AsyncIOBackend` trigger before answering.",
        f"- End to end: {plan.e2e_rate:,} requests/s, open loop, for {plan.e2e_warmup_s:g} s of "
        f"warm-up (left out of the percentiles, still checked for missing events) and "
        f"{plan.e2e_s:g} s measured. Latency is the subscriber's receive time minus the time the "
        "request was due to go out (so a stalled server cannot hide its stall by delaying the "
        "sends behind it), both CLOCK_MONOTONIC on this machine, matched by the unique lead name. "
        "Up to 512 requests are in flight at once, sent by a lean keep-alive HTTP client "
        "(`scripts/benchlib/leanhttp.py`) so that the load costs the shared cores little. The "
        "subscriber is a separate process on soketi's `admin` channel. The peer triggers the "
        "same kind of event on soketi directly (pusher package, on the same lean client).",
        f"- Console: {plan.console_rate} leads/s, open loop, {plan.console_warmup_s:g} s of "
        f"warm-up then {plan.console_s:g} s measured, to a leadrelay relaying to soketi, watched "
        "by the web console signed in as admin in headless Chromium (Debian's, driven by "
        "Playwright in a process of its own, pusher-js from npm in the CDN's place) and by a "
        "plain websocket subscriber on `admin`. The page's time is when its bell's DOM first "
        "held the lead's notification (a MutationObserver, `performance.timeOrigin + now()`, "
        "mapped to CLOCK_MONOTONIC by the tightest of 7 round trips; the mapping's error bound "
        "is in the raw numbers); the peer is the same events' arrival at the subscriber.",
        f"- Relay drain: {plan.drain_events:,} leads are posted with relaying paused, then "
        "`leadrelay pusher enable`; the rate is the distinct events received by the subscriber "
        "between its first and last arrival. The peer calls the pusher package's blocking "
        f"`trigger` {plan.peer_drain_events:,} times, one event per call, measured the same way. "
        f"soketi's own ingest limit (the fair ceiling): the same {plan.drain_events:,} events "
        "sent straight to soketi as `trigger_batch` calls of 10 on the lean keep-alive client, "
        f"at {', '.join(map(str, plan.ingest_in_flight))} batches in flight, each level "
        "measured the same way; the best level is the ceiling.",
        "- Memory: RSS summed over the `leadrelay serve` process and its children, read from "
        "/proc every 0.1 s during the intake runs. For the backlog, one lead is posted through "
        "the API, then its lead and event rows are cloned in SQLite into "
        f"{plan.backlog_events:,} pending events (new ids, names and event ids); a fresh "
        f"`leadrelay serve` then takes {plan.backlog_load_s} s of the intake load paused and "
        f"{plan.backlog_load_s} s relaying.",
        f"- Retention: one lead posted through the API is cloned into {plan.stored_events:,} "
        "delivered events. `/metrics` (over HTTP, `serve` running) and the library call behind "
        "`leadrelay outbox status` (the command's own time is mostly the interpreter's start) "
        "are each timed 20 times on it; beside them, the `count(*)` scans both made before. "
        "Then the intake load runs twice on the same database, relaying paused, the daemon "
        "pruning every second: with every event young (nothing to prune), then with every "
        "event made 40 days old just before the measured load, so the daemon deletes them "
        "while it runs; the row is the second run's req/s over the first's.",
        f"- Search and stats: {plan.search_leads:,} made-up leads over the last 30 days (a few "
        "hundred first and last names, so that a name is shared as in life; ten providers) "
        "written straight into the database a `leadrelay serve` made, the counters' triggers "
        "running; their keys written by leadrelay's own indexer (timed: leads/s); a month of "
        "first contacts in the speed-to-contact histogram. On a fresh `serve`, relaying "
        f"paused, {plan.search_samples} requests of each kind are timed one at a time over one "
        "keep-alive connection after 5 untimed ones: the admin's and a provider's search "
        "(`order=newest`, 50 leads; cycling through a full name, a last name, three letters, "
        "an email's start, phone digits, a CRM id and a word nobody has), `GET "
        "/api/admin/stats` (30 days), and the plain list (`order=newest`, 50 leads) beside "
        "them. A search row's figure is the worse p99 of the admin's and the provider's. Then "
        "the same on a throwaway PostgreSQL cluster.",
        f"- CLI start: wall time of {plan.cli_runs} runs each after one untimed run, median.",
        "",
    ]


def raw_section(results: RunResults) -> list[str]:
    raw = results.raw
    lines = ["## Raw numbers", ""]
    intake = raw.get("intake", {})
    runs = []
    for k, v in intake.items():
        # one result per run, or a list of them when the run was repeated in rounds
        listed = v if isinstance(v, list) else [v]
        for n, r in enumerate(listed, 1):
            if isinstance(r, dict) and "rps" in r:
                runs.append((f"{k} (round {n})" if len(listed) > 1 else k, r))
    if runs:
        lines += [
            "Intake (wrk):",
            "",
            "| run | req/s | p50 ms | p90 ms | p99 ms | max ms | requests | non-2xx "
            "| socket errors |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for key, r in runs:
            lines.append(
                f"| {key} | {_fmt(r['rps'], 0)} | {_fmt(r['p50_ms'], 2)} | "
                f"{_fmt(r['p90_ms'], 2)} | {_fmt(r['p99_ms'], 2)} | "
                f"{_fmt(r['max_ms'], 2)} | {_fmt(r['requests'])} | "
                f"{_fmt(r['non_2xx'])} | {_fmt(r['socket_errors'])} |"
            )
        lines.append("")
    e2e = raw.get("end_to_end", {})
    if e2e:
        lines += [
            "End to end:",
            "",
            "| who | sent/s | accepted | received | missing | duplicates | p50 ms "
            "| p90 ms | p99 ms | p99.9 ms | max ms |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for who, s in e2e.items():
            lines.append(
                f"| {who} | {_fmt(s.get('achieved_rate'), 0)} | {_fmt(s['accepted'])} "
                f"| {_fmt(s['received'])} | {_fmt(s['missing'])} "
                f"| {_fmt(s['duplicates'])} | {_fmt(s.get('p50_ms'), 2)} "
                f"| {_fmt(s.get('p90_ms'), 2)} | {_fmt(s.get('p99_ms'), 2)} "
                f"| {_fmt(s.get('p99.9_ms'), 2)} | {_fmt(s.get('max_ms'), 2)} |"
            )
        lines.append("")
    lines += drain_table(raw) + memory_table(raw) + cli_table(raw)
    lines += [
        "Every raw figure of the run:",
        "",
        "```json",
        json.dumps(raw, indent=1, sort_keys=False, default=str),
        "```",
        "",
    ]
    return lines


def drain_table(raw: dict[str, Any]) -> list[str]:
    drain = raw.get("relay_drain", {})
    if not drain:
        return []
    lines = [
        "Relay drain:",
        "",
        "| who | events | distinct received | duplicates | first → last s | events/s |",
        "|---|---|---|---|---|---|",
    ]
    for who, d in drain.items():
        events = d.get("pending_before", d.get("events"))
        lines.append(
            f"| {who} | {_fmt(events)} | {_fmt(d['distinct_event_ids'])} "
            f"| {_fmt(d['received'] - d['distinct_event_ids'])} "
            f"| {_fmt(d['first_to_last_s'], 2)} | {_fmt(d['events_per_s'], 0)} |"
        )
    return lines + [""]


def memory_table(raw: dict[str, Any]) -> list[str]:
    memory = raw.get("memory", {})
    phases = [(f"empty outbox, {k}", v) for k, v in memory.get("intake", {}).items()]
    backlog = memory.get("backlog", {})
    phases += [
        (f"{_fmt(backlog.get('pending_at_start'))} waiting, {k.split('_')[0]}", backlog[k])
        for k in ("paused_rss", "relaying_rss")
        if k in backlog
    ]
    if not phases:
        return []
    lines = [
        "Memory (RSS of `leadrelay serve` and its children, MB):",
        "",
        "| phase | processes | start | peak | median, first third | median, last third |",
        "|---|---|---|---|---|---|",
    ]
    for name, m in phases:
        lines.append(
            f"| {name} | {m['processes']} | {_fmt(m['start_mb'])} "
            f"| {_fmt(m['peak_mb'])} | {_fmt(m['first_third_median_mb'])} "
            f"| {_fmt(m['last_third_median_mb'])} |"
        )
    return lines + [""]


def cli_table(raw: dict[str, Any]) -> list[str]:
    timed = [(k, v) for k, v in raw.get("cli_start", {}).items() if isinstance(v, dict)]
    if not timed:
        return []
    names = {"python_pass": "python -c pass", "leadrelay_help": "leadrelay --help"}
    lines = [
        "CLI start (ms):",
        "",
        "| command | runs | median | min | max |",
        "|---|---|---|---|---|",
    ]
    for key, c in timed:
        lines.append(
            f"| {names.get(key, key)} | {c['runs']} | {_fmt(c['median_ms'])} "
            f"| {_fmt(c['min_ms'])} | {_fmt(c['max_ms'])} |"
        )
    return lines + [""]


def render(plan: Plan, machine: dict[str, Any], results: RunResults, seconds: float) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    produced = sum(row.produced for row in results.rows)
    met = sum(row.met is True for row in results.rows)
    lines = [
        "# Benchmarks",
        "",
        f"Written by `scripts/bench` ({plan.name} run) on {when}, in {seconds:.0f} s. Every "
        "figure comes from that one run on the machine below: leadrelay and its peers ran one "
        "after another on it, against the same local soketi standing in for Pusher. Figures on a "
        "2-core machine are noisy; read them as ratios. Run `scripts/bench` to measure again.",
        "",
        f"{produced} of {len(results.rows)} rows produced a figure; {met} met their target. "
        "The profiles behind the optimisations, their before/after figures, and the "
        "measurements that explain each missed target are in "
        "[performance.md](performance.md).",
        "",
    ]
    load = machine.get("load_average", "")
    try:
        busy = float(load) > 0.5
    except ValueError:
        busy = False
    if busy:
        lines += [
            f"**The machine was busy when this run started** (1-minute load average {load} on "
            f"{machine['cores']} cores): other work shared the cores, so every figure here is "
            "lower, and every latency higher, than this machine gives on its own. Compare rows "
            "only within this run, and measure again on a quiet machine before quoting them.",
            "",
        ]
    lines += machine_section(machine)
    lines += table_section(results)
    lines += method_section(plan)
    lines += raw_section(results)
    return "\n".join(lines)
