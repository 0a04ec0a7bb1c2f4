"""Tests for `leadrelay tail`: run as a user runs it, against a real soketi and daemon."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from rich.console import Console

from leadrelay.cli.tail.command import tail as tail_command
from leadrelay.cli.tail.follow import Remembered
from leadrelay.cli.tail.history import ApiHistory, History, StoreHistory, TailError
from leadrelay.cli.tail.options import parse_event_names, parse_pusher_url, parse_since
from leadrelay.cli.tail.output import Origin, RichOutput, Shown, format_latency
from leadrelay.config import Settings
from leadrelay.pusher import config as pusher_config
from leadrelay.store.sqlite import Store
from support.app import running_app
from support.serve import Serve, cli, point_at_soketi
from support.soketi import Soketi, free_port

pytestmark = pytest.mark.timeout(20)
SOCKET_ID = re.compile(r"\(socket (\d+\.\d+)\)")


class TailProcess:
    """`leadrelay tail ARGS` in a subprocess; stdout lines collected as they come."""

    def __init__(self, db: Path | str, *args: str) -> None:
        self._err = tempfile.TemporaryFile("w+")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "leadrelay", "tail", *args, "--db", str(db)],
            stdout=subprocess.PIPE,
            stderr=self._err,
            text=True,
            env={**os.environ, "COLUMNS": "80", "TERM": "dumb"},
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in list(self.lines)]

    def stderr(self) -> str:
        self._err.seek(0)
        return self._err.read()

    def wait_stderr(self, text: str, timeout: float = 10.0, count: int = 1) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            err = self.stderr()
            if err.count(text) >= count:
                return err
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"tail never said {text!r}; stderr:\n{self.stderr()}")

    def wait_lines(self, count: int, timeout: float = 10.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(self.lines) < count:
            time.sleep(0.02)
        assert len(self.lines) >= count, f"{self.lines}\nstderr:\n{self.stderr()}"
        return list(self.lines)

    def socket_id(self) -> str:
        match = SOCKET_ID.findall(self.wait_stderr("subscribed"))
        return str(match[-1])

    def stop(self) -> str:
        """Ctrl-C: exit 0, no traceback; return stderr."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        code = self.process.wait(10)
        self._reader.join(5)
        err = self.stderr()
        assert code == 0, err
        assert "Traceback" not in err
        return err

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
        self._reader.join(5)
        assert self.process.stdout is not None
        self.process.stdout.close()
        self._err.close()


@pytest.fixture
def tails() -> Iterator[list[TailProcess]]:
    started: list[TailProcess] = []
    yield started
    for process in started:
        process.kill()


def start_tail(tails: list[TailProcess], db: Path | str, *args: str) -> TailProcess:
    process = TailProcess(db, *args)
    tails.append(process)
    process.wait_stderr("subscribed")
    return process


class Daemon:
    """A `leadrelay serve` relaying to soketi, with providers 1 and 2 and their tokens."""

    def __init__(self, db: Path | str, soketi: Soketi, *, enable: bool = True) -> None:
        self.db = db
        self.soketi = soketi
        self.serve = Serve(db).start()
        point_at_soketi(db, soketi, enable=enable)
        self.client = httpx.Client(base_url=self.serve.url, headers=self.serve.auth(), timeout=10)
        self.tokens = {n: self.add_provider(n) for n in (1, 2)}

    def add_provider(self, provider_id: int) -> str:
        out = cli(
            self.db, "providers", "add", f"P{provider_id}", "--id", str(provider_id), "--json"
        )
        return str(json.loads(out.stdout)["token"])

    @property
    def pusher_url(self) -> str:
        return f"ws://{self.soketi.host}:{self.soketi.port}/app/{self.soketi.key}"

    def lead(self, name: str, provider: int | None = None) -> dict[str, Any]:
        response = self.client.post("/api/leads", json={"name": name, "provider_id": provider})
        assert response.status_code == 201, response.text
        return dict(response.json())

    def status(self, lead_id: int, status: str, headers: dict[str, str] | None = None) -> None:
        response = self.client.patch(
            f"/api/admin/leads/{lead_id}", json={"status": status}, headers=headers
        )
        assert response.status_code == 200, response.text

    def stored_events(self) -> list[dict[str, Any]]:
        return list(self.client.get("/api/admin/events").json()["events"])

    def close(self) -> None:
        self.client.close()
        self.serve.kill()


@pytest.fixture(scope="module")
def daemon(soketi: Soketi, module_db: Path | str) -> Iterator[Daemon]:
    """Shared by tests that only look at events made after their tail started (one a
    backend for the tests marked both_backends)."""
    running = Daemon(module_db, soketi)
    yield running
    running.close()


def ids(events: list[dict[str, Any]]) -> list[str]:
    return [e["data"]["event_id"] for e in events]


def delivered_count(db: Path | str) -> int:
    sql = "SELECT count(*) FROM events WHERE state = 'delivered'"
    if isinstance(db, str) and db.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(db) as pg:
            row = pg.execute(sql).fetchone()
            return int(row[0]) if row else 0
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        (done,) = conn.execute(sql).fetchone()
    return int(done)


def wait_delivered(db: Path | str, count: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if delivered_count(db) >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"fewer than {count} events delivered")


# --- the command line ---------------------------------------------------------------------


def test_parse_since_accepts_durations_and_event_ids() -> None:
    assert parse_since("30s").seconds == 30
    assert parse_since("10m").seconds == 600
    assert parse_since("1h30m").seconds == 5400
    assert parse_since("2d").seconds == 172800
    assert parse_since("42").cursor == 42
    event_id = "0b7c3a52-2d4f-4f44-9b8e-7e2f6d1f0c11"
    assert parse_since(event_id.upper()).cursor == event_id


@pytest.mark.parametrize("text", ["", "10x", "m", "yesterday", "-5m", "1h 30m", "5 m"])
def test_parse_since_rejects_anything_else(text: str) -> None:
    with pytest.raises(TailError, match="--since takes a duration"):
        parse_since(text)


def test_parse_event_names_takes_full_and_short_names() -> None:
    assert parse_event_names(["assigned", "lead.status.updated"]) == {
        "lead.assigned",
        "lead.status.updated",
    }
    with pytest.raises(TailError, match="unknown event 'lead.deleted'"):
        parse_event_names(["lead.deleted"])


def test_parse_pusher_url_builds_a_protocol_7_url() -> None:
    target = parse_pusher_url("wss://ws-eu.pusher.com/app/abc123")
    assert target.key == "abc123"
    assert target.url.startswith("wss://ws-eu.pusher.com:443/app/abc123?protocol=7")
    assert parse_pusher_url("ws://127.0.0.1:6001/app/k").url.startswith("ws://127.0.0.1:6001/")
    with pytest.raises(TailError, match="--pusher takes"):
        parse_pusher_url("127.0.0.1:6001")


def test_tail_help_documents_since_and_output() -> None:
    assert tail_command.__doc__ and "--json" in tail_command.__doc__
    result = subprocess.run(
        [sys.executable, "-m", "leadrelay", "tail", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "120"},
        timeout=15,
    )
    assert result.returncode == 0
    for text in ("--provider", "--event", "--lead", "--since", "10m", "event_id", "--server"):
        assert text in result.stdout


def test_remembered_forgets_the_oldest() -> None:
    seen = Remembered(2)
    assert seen.add("a") and seen.add("b") and not seen.add("a")
    assert seen.add("c") and "a" not in seen and "c" in seen


def test_format_latency_stays_short() -> None:
    assert [format_latency(s) for s in (0.004, 1.23, 38, 200, 7300)] == [
        "+4ms",
        "+1.2s",
        "+38s",
        "+3m",
        "+2h",
    ]


def status_change(lead: dict[str, Any], old: str, new: str, ago: float) -> dict[str, Any]:
    occurred = datetime.now(UTC) - timedelta(seconds=ago)
    return {
        "type": "lead.status.updated",
        "seq": 2,
        "occurred_at": occurred.isoformat(),
        "lead": lead,
        "old_status": old,
        "new_status": new,
        "changed_by": {"role": "provider", "provider_id": lead["provider_id"]},
    }


@pytest.mark.parametrize("width", [80, 100])
def test_rich_output_fits_the_terminal(width: int) -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, force_terminal=True, color_system=None)
    output = RichOutput(["private-provider.3"], console)
    name = "Bartholomew Fitzgerald-Montgomery"
    lead = {"id": 12, "name": name, "provider_id": 3}
    now, channel = datetime.now(UTC), "private-provider.3"
    for old, new, ago in (("new", "contacted", 0.04), ("contacted", "qualified", 12)):
        change = status_change(lead, old, new, ago)
        output.event(Shown(channel, "lead.status.updated", change, now, Origin.LIVE))
    assigned = {"type": "lead.assigned", "seq": 1, "occurred_at": now.isoformat(), "lead": lead}
    output.event(Shown(channel, "lead.assigned", assigned, now, Origin.STORED))
    lines = buffer.getvalue().splitlines()
    assert all(len(line) <= width for line in lines), lines
    rows = [n for n, line in enumerate(lines) if line[:2].isdigit()]
    assert len(rows) == 3
    first, second, third = (lines[n].rstrip() for n in rows)
    assert " provider.3 status.updated #12 Bartholomew " in first
    assert "new → contacted by " in first and first.endswith("+40ms")
    # too long for 80 columns beside the name: the provider shrinks to `p3`
    who = "p3" if width == 80 else "provider 3"
    assert f"contacted → qualified by {who}" in second and second.endswith("+12s")
    assert "new lead → provider 3" in third and third.endswith("stored")
    # the name is never cut: what does not fit folds inside its column, under itself
    column = first.index("#12")
    folded = "".join(line[column:].strip() for line in lines[rows[0] + 1 : rows[1]])
    assert (first[column:].split("  ")[0] + folded).replace(" ", "") == f"#12{name}".replace(
        " ", ""
    )


@pytest.mark.anyio
@pytest.mark.both_backends
async def test_history_sources_agree_on_cursors(settings: Settings) -> None:
    async with running_app(settings) as app:
        for name in ("a", "b", "c"):
            await app.create_lead(name=name)
        await asyncio.sleep(0.05)
        boundary = time.time()
        await asyncio.sleep(0.05)
        for name in ("d", "e"):
            await app.create_lead(name=name)
        app.client.headers.update(app.auth())
        sources: list[History] = [
            StoreHistory(app.store, None),
            ApiHistory(app.client, "/api/admin/events"),
        ]
        for source in sources:
            # bisecting the API's ids finds what the database finds by time
            assert await source.cursor_at(boundary) == 3
            assert await source.cursor_at(boundary - 60) == 0
            assert await source.cursor_at(time.time() + 60) == 5
            first, _ = await source.page(0, lead_id=None, limit=2)
            after, next_after = await source.page(first[1]["event_id"], lead_id=None, limit=9)
            assert [e["id"] for e in after] == [3, 4, 5] and next_after == 5
            with pytest.raises(TailError, match="event"):
                await source.page(str(uuid.uuid4()), lead_id=None, limit=1)


# --- against soketi and the daemon --------------------------------------------------------


@pytest.mark.both_backends
def test_tail_admin_sees_every_event_once(daemon: Daemon, tails: list[TailProcess]) -> None:
    tail = start_tail(tails, daemon.db, "--json")
    first = daemon.lead("Ada", provider=1)
    daemon.lead("Grace", provider=2)
    daemon.lead("Nobody")
    daemon.status(first["id"], "contacted")
    events = [json.loads(line) for line in tail.wait_lines(4)]
    time.sleep(0.5)  # anything extra would have come by now
    tail.stop()
    assert tail.events == events
    assert all(set(e) == {"channel", "event", "data", "received_at"} for e in events)
    assert {e["channel"] for e in events} == {"admin"}
    assert [e["event"] for e in events] == ["lead.assigned"] * 3 + ["lead.status.updated"]
    assert [e["data"]["lead"]["name"] for e in events] == ["Ada", "Grace", "Nobody", "Ada"]
    assert events[3]["data"]["new_status"] == "contacted"


@pytest.mark.both_backends
def test_tail_provider_sees_only_its_leads(daemon: Daemon, tails: list[TailProcess]) -> None:
    local = start_tail(tails, daemon.db, "--json", "--provider", "1")
    remote = start_tail(
        tails,
        daemon.db,
        "--json",
        *("--provider", "1", "--server", daemon.serve.url, "--token", daemon.tokens[1]),
        *("--pusher", daemon.pusher_url),
    )
    # without --pusher: the socket's address comes from the daemon's /broadcasting/config
    discovered = start_tail(
        tails,
        daemon.db,
        "--json",
        *("--provider", "1", "--server", daemon.serve.url, "--token", daemon.tokens[1]),
    )
    mine = daemon.lead("Mine", provider=1)
    daemon.lead("Theirs", provider=2)
    daemon.status(mine["id"], "qualified")
    for tail in (local, remote, discovered):
        tail.wait_lines(2)
    time.sleep(0.5)
    for tail in (local, remote, discovered):
        tail.stop()
        assert {e["channel"] for e in tail.events} == {"private-provider.1"}
        assert [(e["event"], e["data"]["lead"]["name"]) for e in tail.events] == [
            ("lead.assigned", "Mine"),
            ("lead.status.updated", "Mine"),
        ]


@pytest.mark.both_backends
def test_tail_filters_by_event_and_lead(daemon: Daemon, tails: list[TailProcess]) -> None:
    watched = daemon.lead("Watched")
    tail = start_tail(
        tails, daemon.db, "--json", "--event", "status.updated", "--lead", str(watched["id"])
    )
    other = daemon.lead("Other")
    daemon.status(other["id"], "lost")
    daemon.status(watched["id"], "contacted")
    daemon.status(watched["id"], "converted")
    tail.wait_lines(2)
    time.sleep(0.5)
    tail.stop()
    assert [(e["data"]["lead"]["id"], e["data"]["new_status"]) for e in tail.events] == [
        (watched["id"], "contacted"),
        (watched["id"], "converted"),
    ]


@pytest.mark.both_backends
def test_tail_fetches_an_event_its_socket_missed(daemon: Daemon, tails: list[TailProcess]) -> None:
    tail = start_tail(tails, daemon.db, "--json")
    lead = daemon.lead("Gap")
    tail.wait_lines(1)
    # X-Socket-ID (Laravel's toOthers) keeps this event from tail's socket: a real hole
    daemon.status(lead["id"], "contacted", headers={"X-Socket-ID": tail.socket_id()})
    daemon.status(lead["id"], "qualified")
    events = [json.loads(line) for line in tail.wait_lines(3)]
    err = tail.stop()
    assert [e["data"]["seq"] for e in events] == [1, 2, 3]
    assert [e["data"].get("new_status") for e in events] == [None, "contacted", "qualified"]
    assert f"lead {lead['id']}: seq 2 never arrived live; fetched from the database" in err


@pytest.mark.both_backends
def test_tail_since_shows_stored_then_live_without_duplicates(
    soketi: Soketi, db: Path | str, tails: list[TailProcess]
) -> None:
    # Relaying is off at first: the early events wait in the outbox, tail reads them from
    # history, and when relaying starts they arrive live too; each must still show once.
    daemon = Daemon(db, soketi, enable=False)
    try:
        early = daemon.lead("Early", provider=1)
        daemon.status(early["id"], "contacted")
        local = start_tail(tails, daemon.db, "--json", "--since", "10m")
        remote = start_tail(
            tails,
            daemon.db,
            *("--json", "--since", "1h", "--server", daemon.serve.url),
            *("--token", str(daemon.serve.admin_token)),
        )
        for tail in (local, remote):
            tail.wait_stderr("2 stored events since")
        cli(daemon.db, "pusher", "enable")
        wait_delivered(daemon.db, 2)
        daemon.lead("Late", provider=2)
        daemon.status(early["id"], "qualified")
        for tail in (local, remote):
            tail.wait_lines(4)
        time.sleep(0.5)
        stored = ids(daemon.stored_events())
        for tail in (local, remote):
            tail.stop()
            assert ids(tail.events) == stored and len(stored) == 4
        human = TailProcess(daemon.db, "--since", "0", "--provider", "1")
        tails.append(human)
        human.wait_lines(3)
        human.stop()
        # a pipe: whole lines, nothing cut to fit 80 columns
        assert all("#1 Early " in line and "…" not in line for line in human.lines), human.lines
        assert "new → contacted by admin" in human.lines[1]
        assert "contacted → qualified by admin" in human.lines[2]
    finally:
        daemon.close()


@pytest.fixture(scope="module")
def own_soketi() -> Iterator[Soketi]:
    with Soketi() as server:
        yield server


@pytest.fixture(scope="module")
def outage(own_soketi: Soketi, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """A daemon on a soketi of its own, which the tests below stop and freeze."""
    running = Daemon(tmp_path_factory.mktemp("outage") / "leadrelay.db", own_soketi)
    yield running
    running.close()


def test_tail_survives_a_soketi_restart(outage: Daemon, tails: list[TailProcess]) -> None:
    tail = start_tail(tails, outage.db, "--json")
    outage.lead("Before")
    tail.wait_lines(1)
    outage.soketi.stop()
    outage.lead("During")  # only history has it until soketi is back
    outage.soketi.start()
    tail.wait_stderr("resubscribed", timeout=15)
    outage.lead("After")
    tail.wait_lines(3)
    time.sleep(0.5)
    err = tail.stop()
    assert [e["data"]["lead"]["name"] for e in tail.events] == ["Before", "During", "After"]
    assert "reconnecting" in err


def test_tail_notices_a_silent_connection(outage: Daemon, tails: list[TailProcess]) -> None:
    tail = start_tail(tails, outage.db, "--json", "--activity-timeout", "0.5")
    outage.soketi.pause()
    try:
        tail.wait_stderr("no pong within", timeout=10)
    finally:
        outage.soketi.resume()
    tail.wait_stderr("resubscribed", timeout=15)
    outage.lead("Awake")
    tail.wait_lines(1)
    tail.stop()
    assert [e["data"]["lead"]["name"] for e in tail.events] == ["Awake"]


# --- what ends a tail ---------------------------------------------------------------------


def make_db(path: Path, soketi: Soketi, secret: str) -> Path:
    async def setup() -> None:
        store = await Store.open(path)
        try:
            settings = {"app_id": soketi.app_id, "key": soketi.key, "secret": secret}
            address = {"host": soketi.host, "port": soketi.port, "scheme": "http"}
            await pusher_config.update(store, {**settings, **address, "enabled": True})
        finally:
            await store.close()

    asyncio.run(setup())
    return path


def run_tail(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "leadrelay", "tail", *args, "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=20,
    )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def test_tail_ends_on_a_wrong_key(soketi: Soketi, tmp_path: Path) -> None:
    db = make_db(tmp_path / "x.db", soketi, soketi.secret)
    result = run_tail(db, "--pusher", f"ws://{soketi.host}:{soketi.port}/app/no-such-key")
    assert result.returncode == 14
    assert "refused app key 'no-such-key' (code 4001)" in one_error_line(result)


def test_tail_ends_on_a_wrong_secret(soketi: Soketi, tmp_path: Path) -> None:
    db = make_db(tmp_path / "x.db", soketi, "not-the-secret")
    result = run_tail(db, "--provider", "1")
    assert result.returncode == 14
    assert "check the Pusher secret" in one_error_line(result)


def test_tail_ends_when_nothing_listens(soketi: Soketi, tmp_path: Path) -> None:
    db = make_db(tmp_path / "x.db", soketi, soketi.secret)
    result = run_tail(db, "--pusher", f"ws://127.0.0.1:{free_port()}/app/{soketi.key}")
    assert result.returncode == 11
    assert "connection refused" in one_error_line(result)
    down = run_tail(db, "--server", f"http://127.0.0.1:{free_port()}", "--token", "lr_x")
    assert down.returncode == 1
    assert "is 'leadrelay serve' running?" in one_error_line(down)
