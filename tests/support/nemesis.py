"""Faults injected while a workload (workload.py) runs, each recorded in its history as a
`start` and a `heal` of the process `nemesis`.

    kill            SIGKILL a daemon's whole process group (daemon, lead writer, relay), then
                    start it again on the same port
    stop_writer     SIGSTOP a daemon's lead writer child, SIGCONT it later
    slow_pusher     the proxy in front of soketi answers later than the relay's timeout and
                    claim (support/faulty_pusher.py)
    terminate       pg_terminate_backend on every other session of the database, three times
    prune           a quiet moment: the writers wait, every event is delivered and older than
                    retention, `leadrelay db prune` deletes them all (the newest too), then
                    the writers go on
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from support.database import rows
from support.faulty_pusher import FaultyPusher
from support.serve import Serve, cli
from support.workload import Workload

Nemesis = Callable[[Workload], Awaitable[None]]
FAULTS = ("kill", "stop_writer", "slow_pusher", "terminate", "prune")


@dataclass
class Target:
    """What a fault may touch."""

    db: Path | str
    daemons: list[Serve]
    env: dict[str, str]  # the daemons' settings, for the CLI's prune
    proxy: FaultyPusher | None = None
    after: float = 1.0  # seconds into the load
    hold: float = 2.0  # seconds the fault lasts
    slow: float = 5.0  # the slow proxy's delay: past the slow case's timeout and claim


def nemesis(fault: str, target: Target) -> Nemesis:
    faults: dict[str, Callable[[Workload, Target], Awaitable[None]]] = {
        "kill": _kill,
        "stop_writer": _stop_writer,
        "slow_pusher": _slow_pusher,
        "terminate": _terminate,
        "prune": _prune,
    }
    run = faults[fault]

    async def inject(workload: Workload) -> None:
        await asyncio.sleep(target.after)
        workload.history.fault("start", fault=fault)
        try:
            await run(workload, target)
        finally:
            workload.history.fault("heal", fault=fault)

    return inject


async def _kill(workload: Workload, target: Target) -> None:
    daemon = target.daemons[0]
    await asyncio.to_thread(daemon.kill)
    workload.history.fault("killed", daemon=0)
    await asyncio.sleep(target.hold / 4)
    await asyncio.to_thread(daemon.start, 60)
    workload.history.fault("restarted", daemon=0)


async def _stop_writer(workload: Workload, target: Target) -> None:
    pids = target.daemons[0].children("leadrelay.lead_writer")
    assert pids, "the daemon has no lead writer child"
    for pid in pids:
        _signal(pid, signal.SIGSTOP)
    workload.history.fault("stopped", pids=pids)
    await asyncio.sleep(target.hold)
    for pid in pids:
        _signal(pid, signal.SIGCONT)  # gone if the daemon replaced it meanwhile


def _signal(pid: int, sig: signal.Signals) -> None:
    import os

    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


async def _slow_pusher(workload: Workload, target: Target) -> None:
    assert target.proxy is not None, "slow_pusher needs the daemons pointed at the proxy"
    proxy = target.proxy
    await asyncio.to_thread(proxy.fault, "slow", delay=target.slow)
    await asyncio.sleep(target.hold)
    await asyncio.to_thread(proxy.clear)


async def _terminate(workload: Workload, target: Target) -> None:
    for _ in range(3):
        ended = await asyncio.to_thread(_terminate_sessions, str(target.db))
        workload.history.fault("terminated", sessions=ended)
        await asyncio.sleep(target.hold / 3)


def _terminate_sessions(url: str) -> int:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchone()
    return int(row[0]) if row else 0


async def _prune(workload: Workload, target: Target) -> None:
    workload.open.clear()
    deadline = time.monotonic() + 30
    while workload.idle < workload.writers and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    while time.monotonic() < deadline:
        pending = await asyncio.to_thread(
            rows, target.db, "SELECT count(*) AS n FROM events WHERE state <> 'delivered'"
        )
        if not pending[0]["n"]:
            break
        await asyncio.sleep(0.1)
    days = float(target.env.get("LEADRELAY_EVENTS_RETENTION_DAYS", "0"))
    await asyncio.sleep(days * 86400 + 0.3)
    done = await asyncio.to_thread(cli, target.db, "db", "prune", env=target.env)
    workload.history.fault("pruned", output=done.stdout.strip().replace("\n", " ")[:200])
    workload.open.set()
