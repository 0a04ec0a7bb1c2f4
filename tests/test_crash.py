"""Crash and outage proofs: a real `leadrelay serve`, a real soketi, a subscriber on `admin`,
on both backends (the children that cannot be restarted at once touch no database: SQLite).

- SIGKILL of the daemon's process group (daemon and relay) at random moments under
  concurrent intake: every lead answered 2xx is in the database and its lead.assigned
  reached the subscriber; redelivered copies are counted and printed, never asserted.
- soketi stopped, or frozen, while leads arrive: intake still answers, and once soketi is
  back every event arrives, in `seq` order per lead.
- SIGTERM: requests in flight are answered, the process exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import random
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from leadrelay import leads
from leadrelay.config import Settings, is_postgres
from leadrelay.errors import Unavailable
from leadrelay.lead_writer import LeadWriter
from leadrelay.lead_writer import handle as lead_writer
from leadrelay.relay import runner as relay_runner
from leadrelay.relay.runner import RelayRunner
from leadrelay.store.sqlite import Store
from support.database import rows, write_lock
from support.faulty_pusher import FaultyPusher, point_at_proxy
from support.serve import (
    WALK,
    Serve,
    cli_json,
    make_leads,
    point_at_soketi,
    stored_events,
    stored_leads,
)
from support.soketi import Soketi
from support.subscriber import Subscriber, check_order_per_lead, ours

pytestmark = [pytest.mark.slow, pytest.mark.soketi]

RELAY_ENV = {
    "LEADRELAY_RELAY_MAX_BACKOFF_SECONDS": "1",
    "LEADRELAY_RELAY_TIMEOUT_SECONDS": "1",
}
WORKERS = 12
KILL_ROUNDS = 3
MAX_LEADS_PER_WORKER = 1500
LOAD_SECONDS_MAX = 30.0


# --- helpers ---------------------------------------------------------------------------------


def events_of(serve: Serve) -> list[dict[str, Any]]:
    with httpx.Client(base_url=serve.url, headers=serve.auth(), timeout=15) as client:
        return stored_events(client)


def outbox_rows(db: Path | str, event_ids: set[str]) -> list[dict[str, Any]]:
    """These events' rows in the outbox, read straight from the database: state, attempts,
    times and, on PostgreSQL, the claim (a dead relay's claim holds an event back)."""
    lease = ", lease_owner, lease_until" if is_postgres(db) else ""
    stored = rows(
        db,
        "SELECT id, event_id, state, attempts, next_attempt_at, delivered_at"
        f"{lease} FROM events ORDER BY id",
    )
    return [row for row in stored if row["event_id"] in event_ids]


SESSIONS_IN_TRANSACTION = (
    "SELECT pid, application_name, state, (now() - xact_start)::text AS open_for, "
    "wait_event_type, wait_event, left(query, 60) AS query FROM pg_stat_activity "
    "WHERE datname = current_database() AND xact_start IS NOT NULL "
    "AND pid <> pg_backend_pid()"
)


def lead_ids_of(serve: Serve) -> set[int]:
    with httpx.Client(base_url=serve.url, headers=serve.auth(), timeout=15) as client:
        return {lead["id"] for lead in stored_leads(client)}


def wait_delivered(
    subs: list[Subscriber], event_ids: set[str], timeout: float, serve: Serve | None = None
) -> float:
    """Block until every one of `event_ids` reached one of the subscribers.  On a timeout,
    with `serve`, say what the database holds of the missing ones: never sent, or sent and
    not seen by the subscriber."""
    started = time.monotonic()
    got: set[str] = set()
    while time.monotonic() - started < timeout:
        got = {e["event_id"] for sub in subs for e in ours(sub, event_ids)}
        if got >= event_ids:
            return time.monotonic() - started
        time.sleep(0.05)
    missing = event_ids - got
    told = f"{len(missing)} of {len(event_ids)} events never arrived"
    if serve is not None:
        told += f"; outbox status now {cli_json(serve.db, 'outbox', 'status')}"
        held = outbox_rows(serve.db, missing)
        told += f"; missing ids {held[0]['id']}..{held[-1]['id']}, the first five: {held[:5]}"
        told += (
            f"; the subscriber got {len(subs[0].received)} messages in all, "
            f"its thread {'alive' if subs[0]._thread.is_alive() else 'ended'}, "
            f"error {subs[0]._error!r}"
        )
        if is_postgres(serve.db):
            # a killed daemon's backend that has not noticed keeps its row locks, and
            # claims skip locked rows
            open_sessions = rows(serve.db, SESSIONS_IN_TRANSACTION)
            told += f"; sessions in a transaction: {open_sessions}"
        relay_lines = [line for line in serve.logs().splitlines() if "relay" in line.lower()]
        told += "; the daemon's last relay lines: " + " | ".join(relay_lines[-15:])
    raise AssertionError(told)


def restart(serve: Serve) -> None:
    """Start the daemon again on the same port and database, closing the dead one's pipes."""
    if serve.process is not None and serve.process.stdout is not None:
        serve.process.stdout.close()
    with contextlib.suppress(AttributeError):
        serve._log.close()  # type: ignore[union-attr]
    serve.start()


@dataclass
class Load:
    """Concurrent POST /api/leads from `workers` threads, each with its own client,
    bounded by a count per worker and a wall-clock limit; it rides out a dead daemon."""

    url: str
    auth: dict[str, str]
    workers: int = WORKERS
    acked: dict[int, str] = field(default_factory=dict)  # lead id → name, answered 2xx
    outcomes: Counter[str] = field(default_factory=Counter)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> Load:
        deadline = time.monotonic() + LOAD_SECONDS_MAX
        for n in range(self.workers):
            thread = threading.Thread(target=self._work, args=(n, deadline), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(15)

    def _work(self, worker: int, deadline: float) -> None:
        with httpx.Client(base_url=self.url, headers=self.auth, timeout=10) as client:
            for n in range(MAX_LEADS_PER_WORKER):
                if self._stop.is_set() or time.monotonic() > deadline:
                    return
                name = f"w{worker}-{n}"
                try:
                    response = client.post("/api/leads", json={"name": name})
                except httpx.HTTPError as exc:
                    self._count(type(exc).__name__)
                    time.sleep(0.02)  # the daemon is down: try the next lead shortly
                    continue
                self._count(str(response.status_code))
                if response.is_success:
                    with self._lock:
                        self.acked[response.json()["id"]] = name

    def _count(self, outcome: str) -> None:
        with self._lock:
            self.outcomes[outcome] += 1


# --- crash ---------------------------------------------------------------------------------


@pytest.mark.both_backends
def test_crash_sigkill_under_load_loses_no_acknowledged_lead(
    db: Path | str, soketi: Soketi
) -> None:
    serve = Serve(db, env=RELAY_ENV).start()
    try:
        point_at_soketi(serve.db, soketi)
        assert serve.admin_token is not None
        rng = random.Random()
        kills = 0
        with Subscriber(soketi, ["admin"]) as sub:
            with Load(serve.url, serve.auth()) as load:
                for _ in range(KILL_ROUNDS):
                    time.sleep(rng.uniform(0.5, 2.0))
                    serve.kill()  # SIGKILL to the group: daemon and relay, mid-request
                    kills += 1
                    time.sleep(rng.uniform(0.05, 0.5))
                    restart(serve)
                time.sleep(1.0)  # load on the last daemon too
            assert load.acked, f"no lead was acknowledged: {dict(load.outcomes)}"

            stored = lead_ids_of(serve)
            lost = set(load.acked) - stored
            assert not lost, f"{len(lost)} acknowledged leads are not in the database"

            events = events_of(serve)
            event_ids = {e["event_id"] for e in events}
            took = wait_delivered([sub], event_ids, 30.0, serve)
            assigned = {
                e["lead_id"]: e["event_id"] for e in events if e["event"] == "lead.assigned"
            }
            received = ours(sub, event_ids)
            got = {data["event_id"] for data in received}
            missing = [lead for lead in load.acked if assigned.get(lead) not in got]
            assert not missing, f"{len(missing)} acknowledged leads' lead.assigned never arrived"

        copies = Counter(data["event_id"] for data in received)
        duplicates = sum(n - 1 for n in copies.values())
        unacked = len(stored) - len(load.acked)
        print(
            f"\nCRASH: {kills} SIGKILLs under {WORKERS} concurrent clients; "
            f"{len(load.acked)} leads acknowledged, 0 lost, {unacked} stored without an answer "
            f"(killed mid-request), {len(event_ids)} events all received "
            f"({took:.1f}s after the load), {duplicates} duplicates redelivered; "
            f"outcomes {dict(load.outcomes)}"
        )
    finally:
        serve.kill()


def writer_pid(serve: Serve) -> int:
    """The daemon's lead writer process (leadrelay/lead_writer/)."""
    found = serve.children("leadrelay.lead_writer")
    if not found:
        raise AssertionError("the daemon has no lead writer process")
    return found[0]


@pytest.mark.both_backends
def test_lead_writer_killed_under_load_is_restarted_and_loses_no_acknowledged_lead(
    db: Path | str,
) -> None:
    serve = Serve(db).start()
    try:
        with Load(serve.url, serve.auth(), workers=6) as load:
            time.sleep(1.0)
            first = writer_pid(serve)
            os.kill(first, signal.SIGKILL)
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:  # the daemon starts another
                with contextlib.suppress(AssertionError):
                    if writer_pid(serve) != first:
                        break
                time.sleep(0.1)
            acked_before = len(load.acked)
            time.sleep(2.0)  # and takes leads through it
        assert len(load.acked) > acked_before, f"no lead after the restart: {load.outcomes}"
        # what was in the killed writer's hands is a 503 (send again), never another 5xx
        assert set(load.outcomes) <= {"201", "503"}, load.outcomes
        stored = lead_ids_of(serve)
        lost = set(load.acked) - stored
        assert not lost, f"{len(lost)} acknowledged leads are not in the database"
        assert "restarting it" in serve.logs()
        print(f"\nWRITER KILLED: outcomes {dict(load.outcomes)}")
    finally:
        serve.kill()


def failing_once(monkeypatch: pytest.MonkeyPatch, module: Any) -> list[int]:
    """The next process start fails as when the machine is out of processes (the one fault
    a real part cannot give on demand); the ones after it start for real."""
    real = subprocess.Popen
    calls: list[int] = []

    def popen(*args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
        calls.append(1)
        if len(calls) == 1:
            raise OSError(errno.EAGAIN, "Resource temporarily unavailable")
        return real(*args, **kwargs)

    monkeypatch.setattr(module.subprocess, "Popen", popen)
    return calls


@pytest.mark.anyio
async def test_lead_writer_that_cannot_be_restarted_at_once_is_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    writer = LeadWriter(tmp_path / "leadrelay.db")
    await writer.start()
    fields = leads.parse_new_lead({"name": "Ada", "email": "ada@example.com"})
    try:
        assert (await writer.create(fields, status="new", idempotency_key=None, socket_id=None))[
            0
        ] == 201
        calls = failing_once(monkeypatch, lead_writer)
        assert writer._child is not None
        writer._child.kill()
        deadline = time.monotonic() + 10
        while True:  # a 503 while there is no writer, then leads are stored again
            try:
                status, _ = await writer.create(
                    fields, status="new", idempotency_key=None, socket_id=None
                )
                break
            except Unavailable:
                assert time.monotonic() < deadline, "the lead writer never came back"
                await asyncio.sleep(0.05)
        assert status == 201 and len(calls) == 2
        assert "could not start the lead writer process" in caplog.text
    finally:
        await writer.close()


@pytest.mark.anyio
async def test_relay_process_that_cannot_be_restarted_at_once_is_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    store = await Store.open(tmp_path / "leadrelay.db")
    runner = RelayRunner(Settings(db=store.path), store)
    await runner.start()
    try:
        while runner._child is None:  # the supervisor starts it
            await asyncio.sleep(0.01)
        first = runner._child
        calls = failing_once(monkeypatch, relay_runner)
        first.kill()
        deadline = time.monotonic() + 10
        while runner._child is first or runner._child is None or runner._child.poll() is not None:
            assert time.monotonic() < deadline, "the relay process never came back"
            await asyncio.sleep(0.05)
        assert len(calls) == 2
        assert "could not start the relay process" in caplog.text
    finally:
        await runner.stop()
        await store.close()


# --- soketi outages -------------------------------------------------------------------------


@pytest.fixture
def own_soketi() -> Iterator[Soketi]:
    """A soketi of the test's own: these tests stop or freeze it."""
    with Soketi() as server:
        yield server


@pytest.mark.both_backends
def test_relay_soketi_stopped_intake_answers_and_every_event_arrives_in_order(
    db: Path | str, own_soketi: Soketi
) -> None:
    with (
        FaultyPusher(own_soketi) as proxy,
        Serve(db, env=RELAY_ENV) as serve,
        httpx.Client(base_url=serve.url, headers=serve.auth(), timeout=15) as client,
    ):
        point_at_proxy(serve.db, proxy)
        with Subscriber(own_soketi, ["admin"]) as before:
            make_leads(client, "before", 1)
            earlier = {e["event_id"] for e in events_of(serve)}
            wait_delivered([before], earlier, 10)

        own_soketi.stop()
        make_leads(client, "during", 6)
        event_ids = {e["event_id"] for e in events_of(serve)} - earlier
        time.sleep(1.5)
        status = cli_json(serve.db, "outbox", "status")
        assert status["pending"] == 6 * (1 + len(WALK)), status
        assert proxy.counts["upstream_down"] > 0, "the relay never met the dead soketi"

        # soketi comes back; the proxy holds the relay off (connection refused) until a new
        # subscriber is in, since Pusher keeps no history for a client that was not there
        proxy.down()
        own_soketi.start()
        with Subscriber(own_soketi, ["admin"]) as after:
            proxy.up()
            took = wait_delivered([after], event_ids, 20.0)
            duplicates, stale = check_order_per_lead(ours(after, event_ids))
        print(
            f"\nOUTAGE soketi stopped: {len(event_ids)} events held, all arrived in order "
            f"{took:.1f}s after it was back, {duplicates} duplicates ({stale} stale)"
        )


@pytest.mark.both_backends
def test_relay_soketi_frozen_every_event_arrives_in_order(
    db: Path | str, own_soketi: Soketi
) -> None:
    with (
        Serve(db, env=RELAY_ENV) as serve,
        httpx.Client(base_url=serve.url, headers=serve.auth(), timeout=15) as client,
        Subscriber(own_soketi, ["admin"]) as sub,
    ):
        point_at_soketi(serve.db, own_soketi)
        make_leads(client, "before", 1)
        wait_delivered([sub], {e["event_id"] for e in events_of(serve)}, 10)

        own_soketi.pause()  # SIGSTOP: connections accepted by the kernel, never answered
        try:
            make_leads(client, "during", 4)
            event_ids = {e["event_id"] for e in events_of(serve)}
            time.sleep(2.5)  # past the relay's 1 s timeout, more than once
            status = cli_json(serve.db, "outbox", "status")
            assert status["retrying"] > 0, status
        finally:
            own_soketi.resume()
        took = wait_delivered([sub], event_ids, 20.0)
        duplicates, stale = check_order_per_lead(ours(sub, event_ids))
        print(
            f"\nOUTAGE soketi frozen: {len(event_ids)} events, all arrived in order "
            f"{took:.1f}s after it thawed, {duplicates} duplicates ({stale} stale)"
        )


# --- graceful stop --------------------------------------------------------------------------


@pytest.mark.both_backends
def test_serve_sigterm_answers_requests_in_flight(db: Path | str) -> None:
    serve = Serve(db).start()
    answers: list[int | str] = []
    sent = threading.Semaphore(0)

    def trace(event: str, info: dict[str, Any]) -> None:
        if event == "http11.send_request_body.complete":
            sent.release()

    def post(n: int) -> None:
        with httpx.Client(base_url=serve.url, headers=serve.auth(), timeout=20) as client:
            try:
                response = client.post(
                    "/api/leads", json={"name": f"in flight {n}"}, extensions={"trace": trace}
                )
                answers.append(response.status_code)
            except httpx.HTTPError as exc:
                answers.append(type(exc).__name__)

    try:
        # hold the write lock so the requests are provably in flight when SIGTERM comes
        with write_lock(serve.db):
            posting = [threading.Thread(target=post, args=(n,)) for n in range(8)]
            for thread in posting:
                thread.start()
            for _ in posting:
                assert sent.acquire(timeout=5), "a request was never sent"
            time.sleep(0.5)  # and read by the server (the lock holds them in the writer)
            assert answers == [], "the lock should hold every request"
            serve.signal(signal.SIGTERM)
            time.sleep(1.0)
            assert serve.process is not None and serve.process.poll() is None, "exited early"
        for thread in posting:
            thread.join(15)
        # it exits once they are answered (with what status: the next test)
        serve.process.wait(20)
    finally:
        serve.kill()
    assert answers == [201] * 8
    names = {lead["name"] for lead in cli_json(serve.db, "leads", "list", "--limit", "100")}
    assert names == {f"in flight {n}" for n in range(8)}


@pytest.mark.both_backends
def test_serve_sigterm_exits_0(db: Path | str) -> None:
    serve = Serve(db).start()
    try:
        assert serve.stop() == 0, serve.logs()
    finally:
        serve.kill()
