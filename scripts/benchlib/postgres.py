"""PostgreSQL rows: intake on one daemon beside SQLite, two daemons beside one, and the drain
with two relays beside one, all in the same run, on one throwaway PostgreSQL cluster.

The cluster is Debian's PostgreSQL (initdb + pg_ctl as the postgres user when root) on a free
127.0.0.1 port in the work directory, fsync on: commits are as durable as on SQLite.  Set
LEADRELAY_BENCH_POSTGRES=postgresql://… to measure a server that already runs instead (each
row then makes a database of its own in it).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from benchlib.drain import delivery_rate, fill_backlog
from benchlib.plan import Plan
from benchlib.procs import BenchError, free_port
from benchlib.pusherkit import Subscriber
from benchlib.results import Row, RunResults, fmt_ratio, ratio
from benchlib.soketi import Soketi
from benchlib.subject import Leadrelay, run_cli
from benchlib.wrk import WrkResult, run_wrk

TARGET_ONE = 0.5  # one daemon on PostgreSQL, against the SQLite figure
TARGET_TWO = 1.0  # two daemons on one PostgreSQL, against one


class Cluster:
    def __init__(self, work: Path) -> None:
        found = shutil.which("initdb")
        versions = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
        if found:
            self.bin = Path(os.path.realpath(found)).parent
        elif versions:
            self.bin = Path(versions[0])
        else:
            raise BenchError("no PostgreSQL server binaries (apt-get install postgresql)")
        # a directory of its own: the server runs as the postgres user, who may not enter
        # the bench's private work directory
        self.dir = Path(tempfile.mkdtemp(prefix="leadrelay-bench-pg-"))
        self.port = free_port()
        self.user = "postgres" if os.geteuid() == 0 else None

    def _run(self, *args: str) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise BenchError(f"{args[0]} failed: {done.stderr.strip()[-300:]}")

    def start(self) -> str:
        if self.user:
            shutil.chown(self.dir, self.user)
        self._run("initdb", "-D", str(self.dir / "data"), "-U", "postgres", "-A", "trust")
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
            "-c max_connections=200 -c shared_buffers=128MB"
        )
        self._run("pg_ctl", "-D", str(self.dir / "data"), "-l", str(self.dir / "log"),
                  "-o", options, "-w", "start")  # fmt: skip
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.dir / "data"), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def _database(server: str, name: str) -> str:
    import psycopg

    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return server.rsplit("/", 1)[0] + f"/{name}"


def _wrk_all(plan: Plan, daemons: list[Leadrelay]) -> list[WrkResult]:
    """The plan's connections split across the daemons, all loaded at once."""
    results: list[WrkResult | None] = [None] * len(daemons)
    share = max(2, plan.connections // len(daemons))

    def one(i: int) -> None:
        results[i] = run_wrk(f"{daemons[i].url}/api/leads", duration_s=plan.intake_s,
                             connections=share, token=daemons[i].token)  # fmt: skip

    if plan.warmup_s:
        for d in daemons:
            run_wrk(f"{d.url}/api/leads", duration_s=plan.warmup_s, connections=share,
                    token=d.token)  # fmt: skip
    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(daemons))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if any(r is None for r in results):
        raise BenchError("a wrk run did not finish")
    return [r for r in results if r is not None]


def _daemons(db: Path | str, n: int, soketi: Soketi, work: Path, name: str) -> list[Leadrelay]:
    daemons: list[Leadrelay] = []
    try:
        for i in range(n):
            lr = Leadrelay(db, soketi, work)
            lr.start(f"{name}-{i}", relaying=False)
            daemons.append(lr)
    except BaseException:
        for d in daemons:
            d.stop()
        raise
    return daemons


def _intake(
    plan: Plan, db: Path | str, n: int, soketi: Soketi, work: Path, name: str
) -> dict[str, Any]:
    daemons = _daemons(db, n, soketi, work, name)
    try:
        runs = _wrk_all(plan, daemons)
    finally:
        for d in daemons:
            d.stop()
    return {
        "rps": round(sum(r.rps for r in runs), 1),
        "p99_ms": max(r.p99_ms for r in runs),
        "non_2xx": sum(r.non_2xx for r in runs),
        "socket_errors": sum(r.socket_errors for r in runs),
        "runs": [r.as_dict() for r in runs],
    }


def _drain(plan: Plan, url: str, n: int, soketi: Soketi, work: Path, name: str) -> dict[str, Any]:
    daemons = _daemons(url, n, soketi, work, name)
    try:
        raw: dict[str, Any] = {"fill": fill_backlog(daemons[0], plan.drain_events, 120)}
        pending = daemons[0].pending()
        raw["pending_before"] = pending
        if pending == 0:
            raise BenchError("the outbox is empty after the fill")
        subscriber = Subscriber(soketi, work / f"{name}.json")
        try:
            subscriber.expect(pending)
            run_cli("pusher", "enable", db=url)
            received = subscriber.finish(timeout=max(60.0, pending / 1_000))
        finally:
            subscriber.kill()
        raw.update(delivery_rate(received))
        raw["missing"] = pending - received.distinct_event_ids
        raw["pending_after"], _ = daemons[0].wait_pending(at_most=0, timeout=10, interval=0.5)
        return raw
    finally:
        for d in daemons:
            d.stop()


def _median_round(
    rounds: list[dict[str, Any]], key: str, base: str
) -> tuple[dict[str, Any], list[float]]:
    """{key, base} of the round whose key/base ratio is the median, and every ratio."""
    done = [r for r in rounds if r.get(key, {}).get("rps") and r.get(base, {}).get("rps")]
    if not done:
        return {}, []
    done.sort(key=lambda r: r[key]["rps"] / r[base]["rps"])
    chosen = done[(len(done) - 1) // 2]
    return {key: chosen[key], base: chosen[base]}, [r[key]["rps"] / r[base]["rps"] for r in done]


@contextlib.contextmanager
def postgres_server(work: Path, results: RunResults, rows: str) -> Iterator[str]:
    """The server the PostgreSQL rows (`rows`) run on: LEADRELAY_BENCH_POSTGRES, else a
    throwaway cluster in `work`, stopped afterwards (a failed stop is one of the run's
    problems, not the rows')."""
    server = os.environ.get("LEADRELAY_BENCH_POSTGRES")
    if server:
        yield server
        return
    cluster = Cluster(work)
    try:
        yield cluster.start()
    finally:
        try:
            cluster.stop()
        except BenchError as exc:
            results.problems.append(f"{rows} cluster stop: {exc}")


def measure_postgres(
    plan: Plan,
    soketi: Soketi,
    work: Path,
    results: RunResults,
    leadrelay_ready: Callable[[], str | None],
) -> None:
    raw: dict[str, Any] = {}
    notes: list[str] = []
    row_notes: dict[str, list[str]] = {"one": [], "two": []}
    try:
        why_not = leadrelay_ready()
        if why_not:
            raise BenchError(why_not)
        with postgres_server(work, results, "postgres") as server:
            # interleaved rounds, each on fresh databases: this host's figures drift by
            # half between runs a minute apart, and a ratio is read within one round
            rounds: list[dict[str, Any]] = []
            raw["rounds"] = rounds
            for n in range(plan.intake_rounds):
                one_round: dict[str, Any] = {}
                rounds.append(one_round)
                sqlite_db = work / f"pg-row-sqlite-{n}.db"
                one_round["sqlite_one"] = _intake(plan, sqlite_db, 1, soketi, work, "lr-sqlite")
                for key, daemons in (("pg_one", 1), ("pg_two", 2)):
                    db = _database(server, f"bench_{key}_{n}")
                    one_round[key] = _intake(plan, db, daemons, soketi, work, f"lr-{key}")
            for row, key, base in (("one", "pg_one", "sqlite_one"), ("two", "pg_two", "pg_one")):
                raw[f"row_{row}"], ratios = _median_round(rounds, key, base)
                if len(ratios) > 1:
                    listed = ", ".join(f"{r:.2f}×" for r in ratios)
                    row_notes[row].append(
                        f"{len(ratios)} rounds, interleaved, each on fresh databases: {listed}; "
                        "the row shows the median round"
                    )
            raw["drain_one"] = _drain(plan, _database(server, "bench_d1"), 1, soketi, work, "pg-d1")
            raw["drain_two"] = _drain(plan, _database(server, "bench_d2"), 2, soketi, work, "pg-d2")
    except BenchError as exc:
        notes.append(str(exc))
        results.problems.append(f"postgres rows: {exc}")
    results.raw["postgres"] = raw
    for n, one_round in enumerate(raw.get("rounds", [])):
        for key, run in one_round.items():
            if run["non_2xx"] or run["socket_errors"]:
                results.failures.append(
                    f"postgres intake {key}, round {n + 1}: {run['non_2xx']} non-2xx, "
                    f"{run['socket_errors']} errors"
                )
    for key in ("drain_one", "drain_two"):
        run = raw.get(key)
        if run and (run["missing"] or run["fill"]["non_2xx"] or run["fill"]["socket_errors"]):
            results.failures.append(f"postgres drain {key}: {run['missing']} missing")

    def rps(row: str, key: str) -> float | None:
        run = raw.get(f"row_{row}", {}).get(key)
        return run["rps"] if run else None

    def text(row: str, key: str) -> str:
        run = raw.get(f"row_{row}", {}).get(key)
        if not run:
            return "not run"
        return f"{run['rps']:,.0f} req/s · p99 {run['p99_ms']:.1f} ms · {run['non_2xx']} non-2xx"

    one, sqlite = rps("one", "pg_one"), rps("one", "sqlite_one")
    two, one_beside_two = rps("two", "pg_two"), rps("two", "pg_one")
    r_one, r_two = ratio(one, sqlite), ratio(two, one_beside_two)
    clean = not any("non-2xx" in f for f in results.failures if f.startswith("postgres intake"))
    results.rows.append(Row(
        measure="Durable intake on PostgreSQL, one daemon (paused), beside SQLite",
        target=f"≥ {TARGET_ONE}× the SQLite figure, zero non-2xx",
        leadrelay=one, leadrelay_text=text("one", "pg_one"),
        peer_name="the same daemon on SQLite, same round", peer=sqlite,
        peer_text=text("one", "sqlite_one"),
        ratio_text=fmt_ratio(r_one),
        met=None if r_one is None else r_one >= TARGET_ONE and clean,
        notes=notes + row_notes["one"],
    ))  # fmt: skip
    results.rows.append(Row(
        measure="Durable intake, two daemons on one PostgreSQL (paused), beside one",
        target=f"≥ {TARGET_TWO}× one daemon, zero non-2xx",
        leadrelay=two, leadrelay_text=text("two", "pg_two"),
        peer_name="one daemon on PostgreSQL, same round", peer=one_beside_two,
        peer_text=text("two", "pg_one"),
        ratio_text=fmt_ratio(r_two),
        met=None if r_two is None else r_two >= TARGET_TWO and clean,
        notes=notes + row_notes["two"],
    ))  # fmt: skip
    d1, d2 = raw.get("drain_one", {}), raw.get("drain_two", {})
    v1, v2 = d1.get("events_per_s"), d2.get("events_per_s")

    def dtext(run: dict[str, Any]) -> str:
        if not run or run.get("events_per_s") is None:
            return "not run"
        return (f"{run['events_per_s']:,.0f} events/s ({run['distinct_event_ids']:,} of "
                f"{run['pending_before']:,}, {run['missing']} missing, "
                f"{run['received'] - run['distinct_event_ids']} duplicates)")  # fmt: skip

    r_d = ratio(v2, v1)
    results.rows.append(Row(
        measure=f"Relay drain on PostgreSQL: {plan.drain_events:,} events, two relays beside one",
        target="all delivered, none missing (two relays share the outbox by claims)",
        leadrelay=v2, leadrelay_text=dtext(d2),
        peer_name="one daemon's relay, same run", peer=v1, peer_text=dtext(d1),
        ratio_text=fmt_ratio(r_d),
        met=None if v2 is None else d2["missing"] == 0 and d2["pending_after"] == 0,
        notes=notes,
    ))  # fmt: skip
