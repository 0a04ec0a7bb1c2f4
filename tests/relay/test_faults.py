"""Faults at the edges: Pusher failing in every way a proxy can make it, and the database.

Every test runs a real `leadrelay serve` (relay in its own process).  The Pusher faults run
on both backends: they come from `support.faulty_pusher.FaultyPusher`, a proxy between the
relay and a real soketi; the subscriber listens on soketi itself, as a dashboard would.  The
database faults are each backend's own: a locked, full or read-only SQLite file; a
PostgreSQL server stopped under the daemon and started again.  The relay's backoff is
capped at 1 s and its Pusher timeout at 1 s so that a fault costs seconds.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sqlite3
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from leadrelay.auth import CACHE_SECONDS
from support.faulty_pusher import FaultyPusher, point_at_proxy
from support.postgres import Cluster, Server
from support.serve import (
    WALK,
    Serve,
    cli,
    cli_json,
    make_leads,
    point_at_soketi,
    stored_events,
    stored_leads,
)
from support.soketi import Soketi
from support.subscriber import Subscriber, check_order_per_lead, ours

pytestmark = [pytest.mark.slow]

RELAY_ENV = {
    "LEADRELAY_RELAY_MAX_BACKOFF_SECONDS": "1",
    "LEADRELAY_RELAY_TIMEOUT_SECONDS": "1",
}
LEADS = 5
DELIVERY_TIMEOUT = 20.0


# --- the proxy itself ------------------------------------------------------------------------


def test_proxy_down_under_connecting_clients_leaves_no_socket_behind(soketi: Soketi) -> None:
    """`down()` while clients keep connecting: every connection the proxy accepted is closed.
    Python 3.11's Server.close() fails the setup of a connection accepted a moment before
    (an assertion in Server._attach) and leaks its socket; the garbage collector's
    ResourceWarning then failed whichever test ran next (once in a whole run under load)."""
    stop = threading.Event()

    with FaultyPusher(soketi) as proxy:
        url = f"http://{proxy.host}:{proxy.port}/"

        def connect_again_and_again() -> None:
            while not stop.is_set():
                with contextlib.suppress(httpx.HTTPError):
                    httpx.get(url, timeout=1.0)  # a new connection each time

        clients = [threading.Thread(target=connect_again_and_again) for _ in range(4)]
        for client in clients:
            client.start()
        try:
            proxy.wait_requests(20)
            for _ in range(40):
                proxy.down()
                proxy.up()
                time.sleep(0.02)  # let clients connect again
        finally:
            stop.set()
            for client in clients:
                client.join(10)
    gc.collect()  # a leaked socket's ResourceWarning is raised here, failing this test


# --- helpers ---------------------------------------------------------------------------------


def wait_delivered(sub: Subscriber, event_ids: set[str], timeout: float) -> float:
    """Block until every one of `event_ids` reached the subscriber; return the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if {e["event_id"] for e in ours(sub, event_ids)} >= event_ids:
            return time.monotonic() - started
        time.sleep(0.05)
    missing = event_ids - {e["event_id"] for e in ours(sub, event_ids)}
    raise AssertionError(f"{len(missing)} of {len(event_ids)} events never arrived")


def outbox(db: Path | str) -> dict[str, Any]:
    status: dict[str, Any] = cli_json(db, "outbox", "status")
    return status


def wait_until(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture
def proxy(soketi: Soketi) -> Iterator[FaultyPusher]:
    with FaultyPusher(soketi) as faulty:
        yield faulty


@pytest.fixture
def daemon(db: Path | str) -> Iterator[Serve]:
    """On the test's backend: SQLite, unless the test is marked both_backends."""
    with Serve(db, env=RELAY_ENV) as serve:
        yield serve


@pytest.fixture
def client(daemon: Serve) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=daemon.url, headers=daemon.auth(), timeout=15) as http:
        yield http


@pytest.fixture
def relayed(daemon: Serve, proxy: FaultyPusher, soketi: Soketi) -> Iterator[Subscriber]:
    """The daemon relaying through the proxy; a subscriber on soketi's `admin` channel."""
    point_at_proxy(daemon.db, proxy)
    with Subscriber(soketi, ["admin"]) as sub:
        yield sub


# --- Pusher faults -----------------------------------------------------------------------


FAULTS = {
    "http_500": {"kind": "status", "status": 500},
    "http_503": {"kind": "status", "status": 503},
    "http_429_retry_after": {"kind": "status", "status": 429, "retry_after": 3},
    "slow_answer": {"kind": "slow", "delay": 2.5},  # > the relay's 1 s timeout
    "never_answers": {"kind": "hang"},
}


@pytest.mark.soketi
@pytest.mark.both_backends
@pytest.mark.parametrize("name", list(FAULTS))
def test_relay_fault_delays_events_and_loses_none(
    name: str, daemon: Serve, client: httpx.Client, proxy: FaultyPusher, relayed: Subscriber
) -> None:
    fault = dict(FAULTS[name])
    proxy.fault(fault.pop("kind"), **fault)
    started = proxy.counts["requests"]

    make_leads(client, name, LEADS)
    event_ids = {e["event_id"] for e in stored_events(client)}
    assert len(event_ids) == LEADS * (1 + len(WALK))

    # the relay keeps trying and the events wait in the outbox
    proxy.wait_requests(started + 2)
    status = wait_until(
        lambda: (s := outbox(daemon.db))["retrying"] > 0 and s, 10, "failed tries in the outbox"
    )
    assert status["pending"] > 0, status
    assert status["relay_paused_reason"] is None, "a transient fault must not pause relaying"
    if fault.get("delay") is None:  # a slow server still delivers, late
        assert ours(relayed, event_ids) == [], "nothing gets past the fault"
    if name == "http_429_retry_after":
        # Retry-After (3 s) is honoured over the 1 s backoff cap: at most one try per 3 s
        retrying = cli_json(daemon.db, "outbox", "failed")["retrying"]
        elapsed = time.monotonic() - proxy.arrivals[started]
        attempts = max(e["attempts"] for e in retrying)
        assert attempts <= elapsed / 3 + 1, f"{attempts} tries in {elapsed:.1f}s"

    faulted = proxy.counts["requests"] - started
    proxy.clear()
    took = wait_delivered(relayed, event_ids, DELIVERY_TIMEOUT)
    duplicates, stale = check_order_per_lead(ours(relayed, event_ids))
    wait_until(lambda: outbox(daemon.db)["pending"] == 0, 10, "an empty outbox")
    print(
        f"\nFAULT {name}: {faulted} requests faulted, {len(event_ids)} events, 0 lost, "
        f"{duplicates} duplicates ({stale} stale), delivered {took:.1f}s after the fault was lifted"
    )


@pytest.mark.soketi
@pytest.mark.both_backends
def test_relay_wrong_secret_pauses_visibly_and_resumes_when_fixed(
    daemon: Serve, client: httpx.Client, proxy: FaultyPusher, relayed: Subscriber, soketi: Soketi
) -> None:
    cli(daemon.db, "pusher", "set", "--secret", "wrong-secret-0123456789")
    time.sleep(1.0)  # the daemon follows settings within a second (CONTRACT §3)
    make_leads(client, "wrong secret", count=2)
    event_ids = {e["event_id"] for e in stored_events(client)}

    def paused_readyz() -> httpx.Response | None:
        response = client.get("/readyz")
        return response if response.status_code == 503 else None

    response = wait_until(paused_readyz, 10, "/readyz to report the pause")
    body = response.json()  # an admin's client: the details too
    assert body["problems"] == ["relay_paused"], body
    assert any("relay paused" in p and "secret" in p for p in body["details"]), body
    status = outbox(daemon.db)
    assert "secret" in (status["relay_paused_reason"] or ""), status
    assert status["pending"] == len(event_ids)
    tries = proxy.counts["requests"]
    time.sleep(1.5)
    assert proxy.counts["requests"] - tries <= 1, "a paused relay only probes now and then"
    assert ours(relayed, event_ids) == []

    cli(daemon.db, "pusher", "set", "--secret", soketi.secret)
    took = wait_delivered(relayed, event_ids, 5.0)  # "within a few seconds", not the 10 s probe
    check_order_per_lead(ours(relayed, event_ids))
    wait_until(lambda: client.get("/readyz").status_code == 200, 5, "/readyz to be ready again")
    assert outbox(daemon.db)["relay_paused_reason"] is None
    print(f"\nFAULT wrong_secret: paused, resumed {took:.1f}s after the fix, 0 lost")


@pytest.mark.soketi
@pytest.mark.both_backends
def test_relay_disable_holds_events_and_enable_delivers_them(
    daemon: Serve, client: httpx.Client, proxy: FaultyPusher, relayed: Subscriber
) -> None:
    cli(daemon.db, "pusher", "disable")
    time.sleep(1.0)  # the daemon follows settings within a second (CONTRACT §3)
    tries = proxy.counts["requests"]
    make_leads(client, "disabled", count=3)
    event_ids = {e["event_id"] for e in stored_events(client)}
    time.sleep(1.0)
    status = outbox(daemon.db)
    assert status["pending"] == len(event_ids) and status["pusher_enabled"] is False, status
    assert proxy.counts["requests"] == tries, "a disabled relay sends nothing"
    make_leads(client, "still disabled", count=1)
    event_ids = {e["event_id"] for e in stored_events(client)}
    assert outbox(daemon.db)["pending"] == len(event_ids), "pending grows while disabled"

    cli(daemon.db, "pusher", "enable")
    took = wait_delivered(relayed, event_ids, 5.0)
    check_order_per_lead(ours(relayed, event_ids))
    print(
        f"\nFAULT pusher_disabled: {len(event_ids)} events held, delivered {took:.1f}s after enable"
    )


@pytest.mark.soketi
@pytest.mark.both_backends
def test_relay_400_on_a_batch_dead_letters_only_the_refused_event(
    daemon: Serve, client: httpx.Client, proxy: FaultyPusher, relayed: Subscriber
) -> None:
    """Pusher refuses a batch with 400 for one bad event: the batch is split, the others
    are delivered (their leads keep their order), and only the refused one is dead."""
    cli(daemon.db, "pusher", "disable")
    time.sleep(1.0)  # the daemon follows settings within a second (CONTRACT §3)
    for name in ("Ada", "Refuse Me", "Bo", "Cy"):
        assert client.post("/api/leads", json={"name": name}).status_code == 201
    stored = stored_events(client)
    assert len(stored) == 4
    proxy.fault("status", status=400, when=b"Refuse Me")
    cli(daemon.db, "pusher", "enable")
    good = {e["event_id"] for e in stored if e["data"]["lead"]["name"] != "Refuse Me"}
    wait_delivered(relayed, good, DELIVERY_TIMEOUT)
    failed = wait_until(
        lambda: (f := cli_json(daemon.db, "outbox", "failed"))["dead"] and f, 10, "a dead letter"
    )
    assert [e["event_id"] for e in failed["dead"]] == [
        e["event_id"] for e in stored if e["data"]["lead"]["name"] == "Refuse Me"
    ]
    status = wait_until(lambda: (s := outbox(daemon.db))["pending"] == 0 and s, 10, "settled")
    assert (status["dead"], status["delivered"]) == (1, 3), status


@pytest.mark.soketi
@pytest.mark.postgres
def test_relay_claims_only_what_it_can_send_now(
    pg_migrated_url: str, proxy: FaultyPusher, soketi: Soketi
) -> None:
    """With its one send slot taken by a send that hangs, a relay claims nothing more: a
    claim that waited for a slot could run out before its send began, and another daemon
    would send the same events."""
    env = {**RELAY_ENV, "LEADRELAY_RELAY_IN_FLIGHT": "1", "LEADRELAY_RELAY_TIMEOUT_SECONDS": "3"}
    with Serve(pg_migrated_url, env=env) as serve:
        with httpx.Client(base_url=serve.url, headers=serve.auth(), timeout=15) as client:
            cli(serve.db, "pusher", "disable")
            for n in range(25):
                assert client.post("/api/leads", json={"name": f"Lead {n}"}).status_code == 201
            proxy.fault("hang")
            point_at_proxy(serve.db, proxy)
            proxy.wait_requests(1)
            time.sleep(1.0)  # what the relay does while its one send hangs
            claimed = cli_json(serve.db, "outbox", "status")
            rows = _claimed(serve.db)
            assert 0 < rows <= 10, f"{rows} events claimed with one slot busy: {claimed}"
            proxy.clear()


def _claimed(db: Path | str) -> int:
    import psycopg

    with psycopg.connect(str(db)) as conn:
        row = conn.execute("SELECT count(*) FROM events WHERE lease_owner IS NOT NULL").fetchone()
        return int(row[0]) if row else 0


# --- database faults ---------------------------------------------------------------------


@contextlib.contextmanager
def exclusive_lock(db: Path) -> Iterator[sqlite3.Connection]:
    """Another process's view: a connection holding the write lock until released."""
    conn = sqlite3.connect(db, timeout=10, isolation_level=None)
    try:
        conn.execute("BEGIN EXCLUSIVE")
        yield conn
        conn.execute("ROLLBACK")
    finally:
        conn.close()


def lead_names(client: httpx.Client) -> list[str]:
    return [lead["name"] for lead in stored_leads(client)]


def test_intake_locked_database_answers_503_and_recovers(
    daemon: Serve, client: httpx.Client
) -> None:
    assert isinstance(daemon.db, Path)
    assert client.post("/api/leads", json={"name": "before"}).status_code == 201
    events_before = len(stored_events(client))
    with exclusive_lock(daemon.db):
        # held past the store's 5 s busy_timeout: the writer gives up
        started = time.monotonic()
        lead = client.post("/api/leads", json={"name": "locked out"})
        waited = time.monotonic() - started
        # reads go on under the lock (WAL): the list still answers
        assert client.get("/api/admin/leads").status_code == 200
        time.sleep(max(0.0, 6.0 - waited))  # hold it ~6 s in all

    assert lead.status_code == 503, lead.text
    error = lead.json()["error"]
    assert error["code"] == "database_unavailable" and "locked" in error["message"], error
    assert set(lead.json()) == {"error"} and set(error) == {"code", "message"}
    assert waited >= 4.5, f"answered after {waited:.1f}s: did the writer wait its busy_timeout?"
    # nothing half-written: no lead, no event
    assert "locked out" not in lead_names(client)
    assert len(stored_events(client)) == events_before

    recovered = client.post("/api/leads", json={"name": "after the lock"})
    assert recovered.status_code == 201, recovered.text
    assert client.get("/readyz").status_code == 200
    assert lead_names(client) == ["before", "after the lock"]
    print(f"\nFAULT db_locked: 503 after {waited:.1f}s, 503 database_unavailable, recovered")


@contextlib.contextmanager
def small_tmpfs(where: Path, size: str) -> Iterator[Path]:
    where.mkdir()
    try:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"cannot mount a tmpfs to fill (full-disk case not run): {exc}")
    if mounted.returncode != 0:
        pytest.skip(
            "cannot mount a tmpfs to fill (full-disk case not run; needs root or "
            f"CAP_SYS_ADMIN): {mounted.stderr.strip()}"
        )
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, timeout=10)


def fill(path: Path) -> None:
    """Write `path` until the file system has no byte left."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 16, 1 << 12, 1 << 9, 1):
            with contextlib.suppress(OSError):
                for _ in range(100_000):
                    os.write(fd, b"\1" * size)
    finally:
        os.close(fd)


def test_intake_full_disk_answers_503_and_recovers(tmp_path: Path) -> None:
    with small_tmpfs(tmp_path / "disk", "4m") as disk, Serve(disk / "leadrelay.db") as serve:
        with httpx.Client(base_url=serve.url, headers=serve.auth(), timeout=15) as client:
            assert client.post("/api/leads", json={"name": "before"}).status_code == 201
            fill(disk / "filler")
            assert os.statvfs(disk).f_bavail == 0

            acked, refused = [], 0
            for n in range(50):  # bounded: a full disk must refuse well before this
                response = client.post(
                    "/api/leads", json={"name": f"full {n}", "notes": "x" * 4000}
                )
                if response.status_code == 201:
                    acked.append(response.json()["name"])
                    continue
                assert response.status_code == 503, response.text
                error = response.json()["error"]
                assert error["code"] == "database_unavailable" and "full" in error["message"]
                refused += 1
            assert refused > 0
            ready = client.get("/readyz")
            assert ready.status_code == 503 and "full" in " ".join(ready.json()["details"])

            (disk / "filler").unlink()
            recovered = client.post("/api/leads", json={"name": "after"})
            assert recovered.status_code == 201, recovered.text
            assert client.get("/readyz").status_code == 200
            # every lead acknowledged is there, no refused one is
            assert lead_names(client) == ["before", *acked, "after"]
    print(f"\nFAULT disk_full: {refused} refused with 503, {len(acked)} acknowledged, recovered")


@contextlib.contextmanager
def write_protected(*paths: Path) -> Iterator[None]:
    """Files no process may write, root included (`chattr +i`): a read-only database.

    File modes do not stop root, and a tmpfs cannot be remounted read-only while the daemon
    holds its files open; the immutable flag can be set under it.  The -shm file is left
    alone: SQLite maps it, and a write to an immutable mapping is a SIGBUS, not a disk fault.
    """
    done = subprocess.run(["chattr", "+i", *map(str, paths)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot make files immutable here (chattr: {done.stderr.strip()})")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", *map(str, paths)], check=True)


def test_intake_read_only_database_answers_503_and_recovers(
    daemon: Serve, client: httpx.Client
) -> None:
    assert isinstance(daemon.db, Path)
    assert client.post("/api/leads", json={"name": "before"}).status_code == 201
    events_before = len(stored_events(client))
    wal = daemon.db.with_name(daemon.db.name + "-wal")
    with write_protected(daemon.db, wal):
        refused = client.post("/api/leads", json={"name": "read-only"})
        ready = client.get("/readyz")
        assert client.get("/api/admin/leads").status_code == 200  # reads go on

    assert refused.status_code == 503, refused.text
    error = refused.json()["error"]
    assert error["code"] == "database_unavailable" and "writ" in error["message"], error
    assert ready.status_code == 503 and ready.json()["problems"]
    assert "read-only" not in lead_names(client)
    assert len(stored_events(client)) == events_before

    recovered = client.post("/api/leads", json={"name": "after"})
    assert recovered.status_code == 201, recovered.text
    assert client.get("/readyz").status_code == 200
    assert lead_names(client) == ["before", "after"]
    print("\nFAULT db_read_only: 503 database_unavailable, recovered")


# --- PostgreSQL: the server stopped under a running daemon ---------------------------------


@pytest.fixture
def own_postgres() -> Iterator[Cluster]:
    """A PostgreSQL server of the test's own: this test stops it."""
    with Cluster() as cluster:
        yield cluster


class Intake:
    """Leads created and walked through WALK from a few threads until stopped, riding out
    refusals; every answer is kept, and what was acknowledged: lead id → its events."""

    def __init__(self, serve: Serve, workers: int = 4) -> None:
        self.serve = serve
        self.acked: dict[int, int] = {}
        self.refusals: list[httpx.Response] = []
        self.outcomes: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._work, args=(n,), daemon=True) for n in range(workers)
        ]

    def __enter__(self) -> Intake:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def _answer(self, response: httpx.Response) -> bool:
        with self._lock:
            self.outcomes[str(response.status_code)] += 1
            if not response.is_success:
                self.refusals.append(response)
        return response.is_success

    def _work(self, worker: int) -> None:
        serve = self.serve
        with httpx.Client(base_url=serve.url, headers=serve.auth(), timeout=30) as client:
            for n in range(100_000):
                if self._stop.is_set():
                    return
                try:
                    created = client.post("/api/leads", json={"name": f"w{worker}-{n}"})
                    if not self._answer(created):
                        time.sleep(0.05)
                        continue
                    lead_id = created.json()["id"]
                    with self._lock:
                        self.acked[lead_id] = 1
                    for status in WALK:
                        patch = client.patch(f"/api/admin/leads/{lead_id}", json={"status": status})
                        if not self._answer(patch):
                            break  # its later changes would skip a step: leave the lead here
                        with self._lock:
                            self.acked[lead_id] += 1
                except httpx.HTTPError as exc:  # the daemon stays up: this is a failure
                    with self._lock:
                        self.outcomes[type(exc).__name__] += 1
                    time.sleep(0.05)


def assert_unavailable(response: httpx.Response) -> None:
    """A 503 with the contract's error body and a Retry-After to wait before sending again."""
    assert response.status_code == 503, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["code"] in (
        "database_unavailable",
        "writer_unavailable",
        "commit_unknown",
    ), body
    assert body["error"]["message"].strip(), body
    assert int(response.headers.get("Retry-After", "0")) >= 1, dict(response.headers)


def timed(send: Any, *args: Any, **kwargs: Any) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = send(*args, **kwargs)
    return response, time.monotonic() - started


def stored(response: httpx.Response) -> httpx.Response | None:
    return response if response.status_code == 201 else None


@pytest.mark.postgres
@pytest.mark.soketi
def test_intake_postgres_stopped_answers_503_and_recovers(
    own_postgres: Cluster, soketi: Soketi
) -> None:
    url = Server(own_postgres.url).fresh_database()  # the daemon's first start migrates it
    with (
        Serve(url, env=RELAY_ENV) as serve,
        httpx.Client(base_url=serve.url, headers=serve.auth(), timeout=30) as client,
        Subscriber(soketi, ["admin"]) as sub,
    ):
        point_at_soketi(url, soketi)
        make_leads(client, "before", 2)
        wait_delivered(sub, {e["event_id"] for e in stored_events(client)}, DELIVERY_TIMEOUT)

        with Intake(serve) as intake:
            time.sleep(1.0)  # the load under way
            own_postgres.halt("fast")  # every session ended; connections refused from now
            halted = time.monotonic()
            time.sleep(0.5)
            # while it is down: each new lead a 503 (send again later), never stored
            down = [timed(client.post, "/api/leads", json={"name": "while down 0"})]
            ready, listed = timed(client.get, "/readyz"), timed(client.get, "/api/admin/leads")
            # past the token cache: from now on a request needs the server to know its token
            time.sleep(max(0.0, CACHE_SECONDS + 0.5 - (time.monotonic() - halted)))
            down += [timed(client.post, "/api/leads", json={"name": f"while down {n}"})
                     for n in range(1, 4)]  # fmt: skip
            own_postgres.start()
            back = time.monotonic()
            # intake recovers by itself: a new lead is stored within a few seconds
            recovered = wait_until(
                lambda: stored(client.post("/api/leads", json={"name": "after"})),
                15,
                "a new lead to be stored after PostgreSQL came back",
            )
            recovered_in = time.monotonic() - back
            acked_at_recovery = len(intake.acked)
            time.sleep(2.0)  # and the load goes on through it
        print(f"\nOUTAGE postgres outcomes: {dict(intake.outcomes)}")

        for response, _ in down:
            assert_unavailable(response)
        assert ready[0].status_code == 503 and ready[0].json()["problems"], ready[0].text
        assert listed[0].status_code == 503, listed[0].text
        assert set(listed[0].json()["error"]) == {"code", "message"}, listed[0].text
        # answered at once, not after the reader pool's 10 s wait for a connection
        waits = [took for _, took in [*down, ready, listed]]
        assert max(waits) < 3.0, waits
        assert set(intake.outcomes) <= {"200", "201", "503"}, intake.outcomes
        assert intake.outcomes["503"] > 0, "the load never met the stopped server"
        for response in intake.refusals:
            assert_unavailable(response)
        assert len(intake.acked) > acked_at_recovery, "no lead acknowledged after recovery"
        assert recovered.status_code == 201
        assert client.get("/readyz").status_code == 200

        # every acknowledged lead is stored with at least its acknowledged events; none of
        # the leads refused while the server was down is; no lead is half-written
        leads = {lead["id"]: lead for lead in stored_leads(client)}
        lost = set(intake.acked) - set(leads)
        assert not lost, f"{len(lost)} acknowledged leads are not stored"
        assert not {lead["name"] for lead in leads.values()} & {f"while down {n}" for n in range(4)}
        events = stored_events(client)
        seqs: dict[int, list[int]] = {}
        for event in events:
            seqs.setdefault(event["lead_id"], []).append(event["seq"])
        for lead_id, lead in leads.items():
            order = seqs.get(lead_id, [])
            assert order == list(range(1, len(order) + 1)) and order, (lead_id, order)
            assert len(order) >= intake.acked.get(lead_id, 0), (lead_id, order)
            assert lead["status"] == ("new", *WALK)[len(order) - 1], (lead, order)

        # and every stored event reaches Pusher, in order per lead
        event_ids = {e["event_id"] for e in events}
        took = wait_delivered(sub, event_ids, DELIVERY_TIMEOUT)
        duplicates, stale = check_order_per_lead(ours(sub, event_ids))
        wait_until(lambda: outbox(url)["pending"] == 0, 10, "an empty outbox")
        assert "Traceback" not in serve.logs(), serve.logs()[-3000:]
    print(
        f"OUTAGE postgres stopped: {len(intake.acked)} leads acknowledged, 0 lost, "
        f"{intake.outcomes['503']} answered 503 while it was down (the longest wait "
        f"{max(waits):.1f}s), a new lead stored {recovered_in:.1f}s after it was back, "
        f"{len(event_ids)} events "
        f"all delivered in order {took:.1f}s after the load, {duplicates} duplicates "
        f"({stale} stale)"
    )


LONG_OUTAGE_SECONDS = 20.0


@pytest.mark.postgres
def test_reads_come_back_within_seconds_of_a_long_postgres_outage(own_postgres: Cluster) -> None:
    """After a long outage the daemon reads again as soon as the server is back (the reader
    pool's retries, doubling while the server is away, must not leave it waiting for a try
    many seconds off), and its first write after is stored (not failed on a connection
    the server hung up on)."""
    url = Server(own_postgres.url).fresh_database()
    with (
        Serve(url, relay="off") as serve,
        httpx.Client(base_url=serve.url, headers=serve.auth(), timeout=30) as client,
    ):
        # the lead writer up and connected, so that the outage finds its connection open
        assert client.post("/api/leads", json={"name": "before"}).status_code == 201
        assert client.get("/api/admin/leads").status_code == 200
        own_postgres.halt("fast")
        halted = time.monotonic()
        # reads all through it, as a dashboard makes them: each answered 503, at once
        while time.monotonic() - halted < LONG_OUTAGE_SECONDS:
            response, took = timed(client.get, "/api/admin/leads")
            assert response.status_code == 503 and took < 3.0, (response.text, took)
            time.sleep(1.0)
        own_postgres.start()
        back = time.monotonic()
        wait_until(
            lambda: client.get("/api/admin/leads").status_code == 200,
            30,
            "a read to succeed after PostgreSQL came back",
        )
        read_again = time.monotonic() - back
        assert read_again < 3.0, f"reads came back {read_again:.1f}s after the server"
        # the first writes go on new connections, not on the ones the server hung up on
        first = client.post("/api/leads", json={"name": "first after"})
        assert first.status_code == 201, first.text
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert "Traceback" not in serve.logs(), serve.logs()[-3000:]
    print(
        f"\nOUTAGE postgres away {LONG_OUTAGE_SECONDS:g}s: reads answered 503 at once "
        f"throughout, 200 again {read_again:.1f}s after it was back, the first lead stored"
    )
