"""The PostgreSQL backend's own promises: chosen by a URL, migrated once by however many
daemons start at once, its failures said in words without the password."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from leadrelay import leads
from leadrelay.config import Settings, describe_db, load_settings
from leadrelay.errors import Unavailable
from leadrelay.store import open_store
from leadrelay.store.base import Row
from leadrelay.store.postgres import connection as pg_connection
from leadrelay.store.postgres import store as pg_store
from leadrelay.store.postgres.schema import MIGRATIONS
from support.postgres import Server

pytestmark = pytest.mark.anyio


def test_a_url_selects_postgres_and_a_path_stays_a_path(tmp_path: Path) -> None:
    url = "postgresql://lr@db.internal:5432/leads"
    assert load_settings({"db": url}, env={}).db == url
    assert load_settings(env={"LEADRELAY_DB": url}).db == url
    config = tmp_path / "leadrelay.toml"
    config.write_text(f'[leadrelay]\ndb = "{url}"\n')
    assert load_settings(config_file=config, env={}).db == url  # not made relative to the file
    config.write_text('[leadrelay]\ndb = "data/lr.db"\n')
    assert load_settings(config_file=config, env={}).db == tmp_path / "data" / "lr.db"
    assert load_settings({"db": "pg/lr.db"}, env={}).db == Path("pg/lr.db").absolute()


def test_a_claim_must_outlast_a_send() -> None:
    from leadrelay.errors import ConfigError

    with pytest.raises(ConfigError, match="relay_claim_seconds"):
        load_settings({"relay_claim_seconds": 5, "relay_timeout_seconds": 5}, env={})


def test_a_password_in_the_url_is_never_shown() -> None:
    shown = describe_db("postgresql://lr:s3cret-pw@db:5432/leads")
    assert "s3cret-pw" not in shown and shown == "postgresql://lr:***@db:5432/leads"


@pytest.mark.postgres
async def test_daemons_starting_at_once_migrate_exactly_once(pg_url: str) -> None:
    stores = await asyncio.gather(*(open_store(pg_url) for _ in range(5)))
    try:
        rows = await stores[0].fetch_all("SELECT version FROM migrations ORDER BY version")
        assert [row["version"] for row in rows] == [v for v, _ in MIGRATIONS]
        assert all(store.backend == "postgresql" for store in stores)
    finally:
        await asyncio.gather(*(store.close() for store in stores))


@pytest.mark.postgres
async def test_a_migration_yields_to_a_writer_in_its_way(pg_url: str) -> None:
    """A transaction has touched the events (as a prune does) when a daemon starts and
    migration 7 takes the leads table, then waits for the events; the transaction goes on
    to a lead.  They would deadlock, and PostgreSQL would abort one: the migration gives
    way, and both end well."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE migrations (version INTEGER PRIMARY KEY, applied_at FLOAT)")
        for version, sql in MIGRATIONS[:6]:
            conn.execute(sql)
            conn.execute("INSERT INTO migrations VALUES (%s, 0)", (version,))
        conn.execute(
            "INSERT INTO leads (id, name, status, created_at, updated_at) "
            "VALUES (1, 'A', 'new', '', '')"
        )
    with psycopg.connect(pg_url) as writer:
        writer.execute("SELECT 1 FROM events FOR UPDATE")  # the events' RowShare lock
        writer.execute("UPDATE events SET attempts = 1")  # and RowExclusive, held
        migrating = asyncio.create_task(open_store(pg_url))
        with psycopg.connect(pg_url, autocommit=True) as watch:
            while not migrating.done():  # until the migration waits for the events
                waiting = watch.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND query LIKE '%search_pending%'"
                ).fetchone()
                if waiting and waiting[0]:
                    break
                await asyncio.sleep(0.01)
        writer.execute("UPDATE leads SET last_seq = 1 WHERE id = 1")  # now the leads
        writer.commit()
    store = await asyncio.wait_for(migrating, timeout=60)
    try:
        rows = await store.fetch_all("SELECT version FROM migrations ORDER BY version")
        assert [row["version"] for row in rows] == [v for v, _ in MIGRATIONS]
    finally:
        await store.close()


def _new_lead(n: int) -> object:
    fields = {"name": f"Lead {n}", "email": None, "phone": None, "source": None}
    fields |= {"notes": None, "external_id": None, "provider_id": None}
    return leads.new_lead(fields, "new", None, None)


@pytest.mark.postgres
async def test_a_lead_writer_lingers_only_beside_another_and_under_load(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lead writer's commit_delay (Store._linger_seconds): a small batch waits for more
    only while another daemon's lead writer shares the database and leads arrive fast."""
    monkeypatch.setattr(pg_store, "SIBLINGS_SECONDS", 0.05)
    window = 0.06

    async def busy(store: Any) -> None:
        """Leads as fast as the store takes them, for three counting windows."""
        until = time.monotonic() + 3 * window
        while time.monotonic() < until:
            await asyncio.gather(*(store.write(_new_lead(n)) for n in range(50)))

    async def trickle(store: Any) -> None:
        """A lead a window: 1/window a second."""
        for n in range(3):
            await asyncio.sleep(window)
            await store.write(_new_lead(n))

    # as the lead writer process opens it; and serve's own store (or the CLI's), which is not
    first: Any = await open_store(pg_url, on_loop=True)
    other: Any = await open_store(pg_url)
    try:
        await busy(first)
        assert first._rate > 1000 and first._siblings == 0
        assert first._linger_seconds() == 0  # alone: never
        second = await open_store(pg_url, on_loop=True)
        try:
            await busy(first)
            assert first._rate > 1000 and first._siblings == 1
            assert first._linger_seconds() == pg_store.LINGER_SECONDS
            await trickle(first)
            assert first._rate < 100 and first._siblings == 1
            assert first._linger_seconds() == 0
            await busy(other)
            assert other._siblings == 0 and other._linger_seconds() == 0
        finally:
            await second.close()
    finally:
        await asyncio.gather(first.close(), other.close())


@pytest.mark.postgres
async def test_commits_are_synchronous_on_the_writer(pg_url: str) -> None:
    store = await open_store(pg_url)
    try:
        # the writer's own session setting, read inside a write job
        def setting(tx: object) -> str:
            conn = getattr(tx, "conn")  # noqa: B009 - the PostgreSQL Tx's connection
            row = conn.execute("SHOW synchronous_commit").fetchone()
            return str(row["synchronous_commit"])

        assert await store.write(setting) == "on"
    finally:
        await store.close()


@pytest.mark.postgres
async def test_an_unreachable_server_is_a_clear_error_without_the_password(
    pg_server: Server,
) -> None:
    import psycopg

    with psycopg.connect(pg_server.url) as conn:
        port = conn.info.port
    url = f"postgresql://postgres:s3cret-pw@127.0.0.1:{port}/no_such_database"
    with pytest.raises(Unavailable) as failed:
        await open_store(url)
    message = str(failed.value)
    assert "no_such_database" in message and "s3cret-pw" not in message


@pytest.mark.postgres
def test_the_operator_commands_on_postgres(pg_url: str) -> None:
    from support.serve import cli

    assert "admin token" in cli(pg_url, "init").stdout
    doctor = cli(pg_url, "doctor", check=False)
    assert "ok  database: intact and writable" in doctor.stdout
    assert "every serve on this PostgreSQL database relays" in doctor.stdout
    assert "ok  outbox ledger" in doctor.stdout
    assert "claims per event" in cli(pg_url, "outbox", "status").stdout
    assert "would remove 0 delivered events" in cli(pg_url, "db", "prune", "--dry-run").stdout
    backup = cli(pg_url, "db", "backup", "/nonexistent/copy.db", check=False)
    assert backup.returncode == 2 and "use pg_dump" in backup.stderr


async def _paused_write(store: Any, job: Any, started: Any, release: Any) -> Any:
    """Run `job` in `store`'s next batch, holding the batch open (on its writer thread)
    until `release` is set; `started` is set once the job has run."""

    def paused(tx: Any) -> Any:
        result = job(tx)
        tx.get_setting("pause")  # one more statement, as a batch's later job would make
        started.set()
        assert release.wait(20), "never released"
        return result

    return await store.write(paused)


@pytest.mark.postgres
async def test_two_daemons_changing_one_lead_take_turns(pg_url: str) -> None:
    """A lead changed by two daemons at once: the second reads it after the first's commit
    (FOR UPDATE), so its event's old_status is the first's new status, and seq has no gap."""
    import threading

    from leadrelay import crm_status

    first, second = await open_store(pg_url), await open_store(pg_url)
    try:
        created = await leads.create_lead(
            first, leads.parse_new_lead({"name": "Ada", "external_id": "crm-1"}), status="new"
        )
        lead_id = created.lead["id"]
        change = crm_status.StatusChange(None, "crm-1", {"status": "contacted"}, None)
        other = crm_status.StatusChange(lead_id, None, {"status": "qualified"}, None)
        started, release = threading.Event(), threading.Event()
        held = asyncio.create_task(
            _paused_write(first, crm_status.change_status(change, None, None), started, release)
        )
        await asyncio.to_thread(started.wait, 20)
        racing = asyncio.create_task(second.write(crm_status.change_status(other, None, None)))
        await asyncio.sleep(0.3)  # the second is now waiting for the first's row lock
        assert not racing.done(), "the second change did not wait for the first"
        release.set()
        await held
        await racing
        rows = await first.fetch_all(
            "SELECT seq, payload FROM events WHERE lead_id = ? ORDER BY seq", (lead_id,)
        )
        import json

        chain = [json.loads(row["payload"]) for row in rows]
        assert [event["seq"] for event in chain] == [1, 2, 3]
        assert [(e["old_status"], e["new_status"]) for e in chain[1:]] == [
            ("new", "contacted"),
            ("contacted", "qualified"),
        ]
        assert (await first.get_lead(lead_id) or {})["status"] == "qualified"
    finally:
        release.set()
        await asyncio.gather(first.close(), second.close())


@pytest.mark.postgres
async def test_event_ids_follow_commit_order_across_daemons(pg_url: str) -> None:
    """A transaction that wrote an event and is still open does not hold an id below one
    that another daemon commits meanwhile: ids are taken at the commit, so a reader that
    saw id N never sees an id below N appear later (the events API's cursor)."""
    import threading

    first, second = await open_store(pg_url), await open_store(pg_url)
    try:
        created = await leads.create_lead(
            first, leads.parse_new_lead({"name": "Ada"}), status="new"
        )
        started, release = threading.Event(), threading.Event()
        change = {"status": "contacted"}

        def slow_change(tx: Any) -> Any:
            before = tx.lead_for_update(created.lead["id"])
            return leads.apply_change(tx, before, change, None, socket_id=None)

        held = asyncio.create_task(_paused_write(first, slow_change, started, release))
        await asyncio.to_thread(started.wait, 20)
        later = await leads.create_lead(second, leads.parse_new_lead({"name": "Bo"}), status="new")
        seen = await second.fetch_all("SELECT id, lead_id FROM events ORDER BY id")
        release.set()
        await held
        after = await second.fetch_all("SELECT id, lead_id FROM events ORDER BY id")
        newest_seen = max(row["id"] for row in seen)
        appeared = [row for row in after if row not in seen]
        assert [row["lead_id"] for row in appeared] == [created.lead["id"]]
        assert all(row["id"] > newest_seen for row in appeared), (seen, after, later)
    finally:
        release.set()
        await asyncio.gather(first.close(), second.close())


@pytest.mark.postgres
async def test_a_relay_whose_claim_ran_out_marks_nothing(pg_url: str) -> None:
    """A relay that stalled past its claim: another relay claimed the event, so the late
    one's marks (delivered, retry, dead) and its renewal change nothing; the new claimant's
    mark stands."""
    store = await open_store(pg_url)
    try:
        await leads.create_lead(store, leads.parse_new_lead({"name": "Ada"}), status="new")
        late = await store.claim_due("late:1", time.time(), 10, (), 0.05)
        assert [row["id"] for row in late] == [1]
        await asyncio.sleep(0.1)  # the claim runs out
        taken = await store.claim_due("other:2", time.time(), 10, (), 15)
        assert [row["id"] for row in taken] == [1]
        assert await store.write(lambda tx: tx.renew_claims("late:1", [1], 15)) == []
        await store.write(lambda tx: tx.mark_dead([1], "HTTP 400", "late:1"))
        await store.write(lambda tx: tx.mark_retry([1], time.time() + 60, "x", "late:1"))
        await store.write(lambda tx: tx.mark_delivered([1], "late:1"))
        row = await store.fetch_one("SELECT state, attempts, lease_owner FROM events")
        assert row == {"state": "pending", "attempts": 0, "lease_owner": "other:2"}
        await store.write(lambda tx: tx.mark_delivered([1], "other:2"))
        row = await store.fetch_one("SELECT state, attempts, lease_owner FROM events")
        assert row == {"state": "delivered", "attempts": 1, "lease_owner": None}
    finally:
        await store.close()


@pytest.mark.postgres
async def test_a_commit_lost_on_the_wire_is_commit_unknown(pg_url: str) -> None:
    """The writer's connection is cut right after its COMMIT left (a proxy at the network
    edge forwards it, then hangs up): the server committed, the writer cannot know, so its
    callers hear commit_unknown (send it again with the same key), not "nothing written";
    the next batch goes on a new connection."""
    from urllib.parse import urlsplit, urlunsplit

    from leadrelay.errors import CommitUnknown
    from support.cut_proxy import CutProxy

    await (await open_store(pg_url)).close()  # migrated directly
    parts = urlsplit(pg_url)
    with CutProxy(parts.hostname or "127.0.0.1", parts.port or 5432) as proxy:
        netloc = parts.netloc.rsplit(":", 1)[0] + f":{proxy.port}"
        store = await open_store(urlunsplit(parts._replace(netloc=netloc)))
        try:
            proxy.cut_after(b"COMMIT")
            with pytest.raises(CommitUnknown) as caught:
                await store.write(lambda tx: tx.put_setting("cut", True, ""))
            assert proxy.cuts == 1
            assert caught.value.status == 503 and caught.value.code == "commit_unknown"
            # it was committed after all, by the cut session's backend, which runs on its
            # own time: the writer heard the cut at once and may read before that backend
            # has reached the COMMIT (seen under load in CI), so wait for it, bounded
            deadline = time.monotonic() + 15
            while (cut := await store.get_setting("cut")) is None and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            assert cut is True
            fields = leads.parse_new_lead({"name": "Ada"})
            created = await leads.create_lead(store, fields, status="new")
            assert created.created
        finally:
            await store.close()


@pytest.mark.parametrize(
    ("error", "unknown"),
    [
        (psycopg.errors.AdminShutdown("terminating connection"), True),  # pg_terminate_backend
        (psycopg.errors.ConnectionFailure("connection failure"), True),  # class 08
        (psycopg.OperationalError("the connection is lost"), True),  # the client's own
        (psycopg.errors.DeadlockDetected("deadlock detected"), False),  # rolled back
        (psycopg.errors.QueryCanceled("statement timeout"), False),  # class 57, rolled back
        (psycopg.errors.PipelineAborted("pipeline aborted"), False),  # an earlier statement
    ],
)
def test_an_error_at_commit_is_unknown_only_when_the_line_went(
    error: psycopg.Error, unknown: bool
) -> None:
    """The server's FATAL for a terminated session can reach psycopg before the socket's
    close does: the connection still looks up, and the COMMIT may have been applied."""
    from types import SimpleNamespace

    from leadrelay.errors import CommitUnknown

    up = SimpleNamespace(closed=False, broken=False)
    tx: Any = SimpleNamespace(committing=True)
    if unknown:
        with pytest.raises(CommitUnknown):
            pg_store._outcome_known(up, tx, error)  # type: ignore[arg-type]
    else:
        pg_store._outcome_known(up, tx, error)  # type: ignore[arg-type]
    pg_store._outcome_known(up, SimpleNamespace(committing=False), error)  # type: ignore[arg-type]


@pytest.mark.postgres
async def test_a_writer_cancelled_mid_batch_finishes_it_and_stops(pg_url: str) -> None:
    """Cancelling the writer task (the store closing, the loop ending) while a batch runs:
    the batch's transaction finishes and its caller gets the real answer, and then the
    task ends instead of swallowing the cancel and writing on."""
    import threading

    store = await open_store(pg_url)
    started, release = threading.Event(), threading.Event()

    def slow(tx: Any) -> str:
        tx.put_setting("slow", True, "")
        started.set()
        assert release.wait(20)
        return "written"

    try:
        write = asyncio.create_task(store.write(slow))
        await asyncio.to_thread(started.wait, 20)
        task = store._task
        assert task is not None
        task.cancel()
        release.set()
        assert await write == "written"
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 10)
        assert await store.get_setting("slow") is True
    finally:
        release.set()
        store._task = None  # already ended: close() has no writer left to stop
        await store.close()


@pytest.mark.postgres
async def test_two_relays_racing_never_claim_a_delivered_event(pg_url: str) -> None:
    """Two relays claim and mark one outbox at once: a claim never returns an event the
    other has marked delivered meanwhile (its claim re-checks the row it locks: a delivered
    event's cleared claim must not read as free), so nothing is sent twice."""
    first, second = await open_store(pg_url), await open_store(pg_url)
    try:
        fields = leads.parse_new_lead({"name": "Ada"})
        for _ in range(300):
            await leads.create_lead(first, fields, status="new")
        stale: list[Row] = []

        async def relay(store: Any, owner: str) -> None:
            while True:
                rows = await store.claim_due(owner, time.time(), 5, (), 15)
                if not rows:
                    pending = await store.fetch_one(
                        "SELECT count(*) AS n FROM events WHERE state = 'pending'"
                    )
                    if pending and pending["n"] == 0:
                        return
                    continue
                stale.extend(row for row in rows if row["state"] != "pending")
                ids = [row["id"] for row in rows]
                await store.write(lambda tx, ids=ids: tx.mark_delivered(ids, owner))

        await asyncio.wait_for(asyncio.gather(relay(first, "a:1"), relay(second, "b:2")), 60)
        assert stale == [], f"{len(stale)} delivered events claimed again"
    finally:
        await asyncio.gather(first.close(), second.close())


@pytest.mark.postgres
async def test_a_relay_that_began_on_an_empty_outbox_claims_a_backlog_at_once(
    pg_url: str,
) -> None:
    """A relay's first claims run on an empty outbox; then a backlog arrives (a burst of
    leads, the end of a Pusher outage).  Its next claim is as quick as a new relay's: a
    plan kept from the empty outbox checked each pending event against every other, and
    a claim over 1,500 took 10-27 s here, its row locks held all along (transaction.py's
    REPLAN).  The bound is the claim's own point: well inside the time a claim lasts."""
    relay = await open_store(pg_url, durable=False, on_loop=True)  # as the relay opens it
    intake = await open_store(pg_url)
    try:
        for _ in range(12):  # psycopg prepares a statement at its fifth run
            assert await relay.claim_due("relay:1", time.time(), 320, (), 15) == []
            assert await relay.next_due_time() is None
        for start in range(0, 1500, 250):
            await asyncio.gather(*(intake.write(_new_lead(n)) for n in range(start, start + 250)))
        bound = Settings(db=pg_url).relay_claim_seconds / 5
        for owner in ("relay:1", "relay:2"):
            started = time.monotonic()
            claimed = await relay.claim_due(owner, time.time(), 320, (), 15)
            took = time.monotonic() - started
            assert len(claimed) == 320
            assert took < bound, f"a claim over 1,500 pending events took {took:.1f} s"
        started = time.monotonic()
        assert await relay.next_due_time() is not None
        took = time.monotonic() - started
        assert took < bound, f"the next due time over 1,500 pending events took {took:.1f} s"
    finally:
        await asyncio.gather(relay.close(), intake.close())


@pytest.mark.postgres
async def test_a_relay_statement_in_the_way_of_a_lock_gives_up(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server cancels a statement of the relay's writer past RELAY_STATEMENT_SECONDS: a
    mark waiting on a row another session holds gives up (the event stays pending, and goes
    again) rather than hold up the relay's loop, and the writer goes on once the row is
    free.  Likewise a killed relay's backend, still running a statement, lets go of the rows
    it holds within that bound (docs/faults.md)."""
    monkeypatch.setattr(pg_connection, "RELAY_STATEMENT_SECONDS", 0.3)
    relay = await open_store(pg_url, durable=False, on_loop=True)  # as the relay opens it
    try:
        await leads.create_lead(relay, leads.parse_new_lead({"name": "Ada"}), status="new")
        [claimed] = await relay.claim_due("relay:1", time.time(), 10, (), 15)
        with psycopg.connect(pg_url) as holder:
            holder.execute("SELECT id FROM events FOR UPDATE")  # in a transaction till the end
            started = time.monotonic()
            with pytest.raises(Unavailable, match="statement timeout"):
                await relay.write(lambda tx: tx.mark_delivered([claimed["id"]], "relay:1"))
            assert time.monotonic() - started < 5
        await relay.write(lambda tx: tx.mark_delivered([claimed["id"]], "relay:1"))
        row = await relay.fetch_one("SELECT state FROM events")
        assert row == {"state": "delivered"}
    finally:
        await relay.close()
