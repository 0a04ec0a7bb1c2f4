"""One checked run: `daemons` real `leadrelay serve` on one database, relaying to a real
soketi (through the slow proxy for `slow_pusher`), a subscriber on every channel, the
workload (workload.py) for a few seconds with one fault (nemesis.py), then everything
delivered and read to the end, and the history checked (checker.py).

    result = checked_run(db, soketi, daemons=2, fault="kill", seed=7)
    assert result.valid, result.report()
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

from support.checker import Result, arrivals_of, check, read_stored
from support.database import rows
from support.faulty_pusher import FaultyPusher, point_at_proxy
from support.history import History
from support.nemesis import Target, nemesis
from support.serve import Serve, cli_json, point_at_soketi
from support.soketi import Soketi
from support.subscriber import Subscriber
from support.workload import Workload

RETENTION_SECONDS = 2.0
ENV = {
    "LEADRELAY_RELAY_MAX_BACKOFF_SECONDS": "1",
    "LEADRELAY_RELAY_TIMEOUT_SECONDS": "1",
    "LEADRELAY_RELAY_CLAIM_SECONDS": "4",
    # delivered events go after two seconds, pruned by every daemon each second
    "LEADRELAY_EVENTS_RETENTION_DAYS": repr(RETENTION_SECONDS / 86400),
    "LEADRELAY_PRUNE_INTERVAL_SECONDS": "1",
}
FAULT_ENV = {
    # a writer stopped for `hold` seconds: each lead waiting on it is a 503 first
    "stop_writer": {"LEADRELAY_WRITE_TIMEOUT_SECONDS": "1.5"},
    # the proxy's 5 s (nemesis.Target.slow) is past the relay's timeout and its claim
    # (PostgreSQL), which must outlast the timeout: a relay that waits for send slots holds
    # claims that run out.  The timeout is 3 s, not less: after the heal the backlog goes
    # through the proxy at once, and on a loaded machine (load 6-9 on 2 cores) sends with a
    # 1.5 s timeout went on timing out for 12 s, each one a copy the fault did not make
    "slow_pusher": {"LEADRELAY_RELAY_TIMEOUT_SECONDS": "3", "LEADRELAY_RELAY_CLAIM_SECONDS": "4"},
}
GRACE = 12.0  # copies allowed this long after a fault: a claim or lease runs out, backoff
NOTABLE = re.compile(r"\b(WARNING|ERROR|CRITICAL)\b")  # log lines a failure's report shows


def checked_run(
    db: Path | str, soketi: Soketi, *, daemons: int, fault: str, seed: int, seconds: float = 4.0
) -> Result:
    env = {**ENV, **FAULT_ENV.get(fault, {})}
    proxy = FaultyPusher(soketi).start() if fault == "slow_pusher" else None
    serves: list[Serve] = []
    try:
        for _ in range(daemons):
            serve = Serve(db, env=env)
            serve.admin_token = serves[0].admin_token if serves else None
            serves.append(serve.start(60))
        providers = {
            p["id"]: p["token"]
            for p in (cli_json(db, "providers", "add", f"provider {i}") for i in range(2))
        }
        if proxy is not None:
            point_at_proxy(db, proxy)
        else:
            point_at_soketi(db, soketi)
        channels = ["admin", *(f"private-provider.{p}" for p in providers)]
        target = Target(db, serves, env, proxy)
        history = History()
        with Subscriber(soketi, channels) as subscriber:
            asyncio.run(_drive(history, serves, providers, seed, seconds, fault, target))
            _await_delivery(db, subscriber)
            stored = read_stored(db)
            arrivals = arrivals_of(history, subscriber.received)
        result = check(history, stored, arrivals=arrivals, channels=channels, grace=GRACE)
        for n, serve in enumerate(serves):  # since its last start, for a failure's report
            said = [line for line in serve.logs().splitlines() if NOTABLE.search(line)]
            result.logs[f"daemon {n}"] = said[-20:]
        print(f"\nCHECKER {daemons} daemon(s), fault {fault}, seed {seed}: {result.summary()}")
        return result
    finally:
        for serve in serves:
            serve.kill()
        if proxy is not None:
            proxy.close()


async def _drive(
    history: History,
    serves: list[Serve],
    providers: dict[int, str],
    seed: int,
    seconds: float,
    fault: str,
    target: Target,
) -> None:
    async with Workload(history, serves, providers, seed) as workload:
        await workload.run(seconds, None if fault == "none" else nemesis(fault, target))
        await asyncio.to_thread(_await_relayed, target.db)
        await workload.finish_followers()


def _await_relayed(db: Path | str, timeout: float = 60.0) -> None:
    """Until no event waits for the relay (a killed daemon's lease or claims run out first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not rows(db, "SELECT count(*) AS n FROM events WHERE state = 'pending'")[0]["n"]:
            return
        time.sleep(0.1)


def _await_delivery(db: Path | str, subscriber: Subscriber, timeout: float = 20.0) -> None:
    """Until the subscriber has every delivered event still stored (what was pruned arrived
    before it was pruned); the checker says what is missing after that."""
    wanted = {
        r["event_id"] for r in rows(db, "SELECT event_id FROM events WHERE state = 'delivered'")
    }
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = {r.data.get("event_id") for r in subscriber.on("admin") if isinstance(r.data, dict)}
        if wanted <= got:
            return
        time.sleep(0.1)
