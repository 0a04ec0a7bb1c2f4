"""Where the CPU goes in the bench's PostgreSQL intake rows: one daemon beside two.

    PYTHONPATH=scripts .venv/bin/python scripts/pg_cpu.py [ROUNDS]

Starts soketi and a throwaway PostgreSQL cluster as `scripts/bench` does, then, ROUNDS times
(default 3), loads one daemon and then two (relaying paused, a fresh database each, the
bench's 64 wrk connections split across the daemons, 10 s).  For each load it prints the
req/s, the server's commits and WAL flushes (pg_stat_database, pg_stat_wal), what the
server's busy backends were waiting on (pg_stat_activity, sampled every 5 ms), and for each
kind of process its CPU and context switches a lead (from /proc; wrk's from its rusage).
docs/dev/performance.md quotes it.
"""

from __future__ import annotations

import dataclasses
import os
import resource
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import psycopg
from benchlib.plan import FULL
from benchlib.postgres import Cluster, _daemons, _database, _wrk_all
from benchlib.soketi import Soketi, start_soketi

TICK = os.sysconf("SC_CLK_TCK")
PLAN = dataclasses.replace(FULL, intake_s=10, warmup_s=0)


def kind(cmdline: str) -> str | None:
    """The process's part: leadrelay's HTTP, writer and relay, PostgreSQL, soketi."""
    if cmdline.startswith("postgres:"):
        return "postgres backends" if "127.0.0.1" in cmdline else "postgres (own processes)"
    if "leadrelay.lead_writer" in cmdline:
        return "lead writer"
    if "leadrelay.relay.runner" in cmdline:
        return "relay"
    if "leadrelay serve" in cmdline or "/leadrelay serve" in cmdline:
        return "HTTP (serve)"
    if "soketi" in cmdline:
        return "soketi"
    return None


def processes() -> dict[int, tuple[str, float, int]]:
    """pid → (kind, CPU seconds, context switches of all its threads)."""
    found: dict[int, tuple[str, float, int]] = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            part = kind(cmdline)
            if part is None:
                continue
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            switches = 0
            for tid in os.listdir(f"/proc/{pid}/task"):
                for line in Path(f"/proc/{pid}/task/{tid}/status").read_text().splitlines():
                    if "ctxt_switches" in line:
                        switches += int(line.split()[1])
        except OSError:
            continue  # gone meanwhile
        found[int(pid)] = (part, (int(fields[11]) + int(fields[12])) / TICK, switches)
    return found


def server_counts(url: str) -> tuple[int, int]:
    with psycopg.connect(url, autocommit=True) as conn:
        commits = conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
        syncs = conn.execute("SELECT wal_sync FROM pg_stat_wal").fetchone()
    assert commits is not None and syncs is not None
    return int(commits[0]), int(syncs[0])


def sample_waits(url: str, stop: threading.Event, waits: Counter[str]) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        while not stop.is_set():
            for (event,) in conn.execute(
                "SELECT coalesce(wait_event_type || ':' || wait_event, 'on CPU') "
                "FROM pg_stat_activity WHERE datname = current_database() "
                "AND pid <> pg_backend_pid() AND state <> 'idle'"
            ):
                waits[event] += 1
            time.sleep(0.005)


def load(server: str, soketi: Soketi, work: Path, n: int, name: str) -> None:
    url = _database(server, name)
    daemons = _daemons(url, n, soketi, work, name)
    try:
        commits0, syncs0 = server_counts(url)
        wrk0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        before, start = processes(), time.monotonic()
        waits: Counter[str] = Counter()
        stop = threading.Event()
        sampler = threading.Thread(target=sample_waits, args=(url, stop, waits))
        sampler.start()
        runs = _wrk_all(PLAN, daemons)  # the only children that end while we measure
        stop.set()
        sampler.join()
        after, wall = processes(), time.monotonic() - start
        wrk1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        commits1, syncs1 = server_counts(url)
    finally:
        for d in daemons:
            d.stop()
    leads = sum(r.rps for r in runs) * PLAN.intake_s
    cpu: Counter[str] = Counter()
    switches: Counter[str] = Counter()
    for pid, (part, seconds, count) in after.items():
        _, seconds0, count0 = before.get(pid, (part, 0.0, 0))
        cpu[part] += seconds - seconds0
        switches[part] += count - count0
    cpu["wrk"] = (wrk1.ru_utime + wrk1.ru_stime) - (wrk0.ru_utime + wrk0.ru_stime)
    commits = commits1 - commits0 - 2  # less server_counts' own
    print(
        f"\n{n} daemon(s): {leads / PLAN.intake_s:,.0f} req/s, "
        f"{sum(r.non_2xx for r in runs)} non-2xx; {commits:,} commits "
        f"({leads / max(1, commits):.1f} leads each, the wait sampler's included), "
        f"{syncs1 - syncs0:,} WAL flushes"
    )
    for part, seconds in cpu.most_common():
        if seconds >= 0.05:
            print(
                f"  {part:26} {seconds / wall:5.2f} cores  {1e6 * seconds / leads:6.1f} µs/lead"
                f"  {switches[part] / leads:5.2f} switches/lead"
            )
    total = sum(cpu.values())
    print(f"  {'all':26} {total / wall:5.2f} cores  {1e6 * total / leads:6.1f} µs/lead")
    sampled = sum(waits.values()) or 1
    print("  busy backends: " + ", ".join(
        f"{event} {100 * k / sampled:.0f}%" for event, k in waits.most_common(5)))  # fmt: skip


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    work = Path(tempfile.mkdtemp(prefix="leadrelay-pg-cpu-"))
    soketi = start_soketi(work)
    cluster = Cluster(work)
    try:
        server = cluster.start()
        for i in range(rounds):
            for n in (1, 2):
                load(server, soketi, work, n, f"cpu_{i}_{n}")
    finally:
        cluster.stop()
        soketi.server.stop()


if __name__ == "__main__":
    main()
