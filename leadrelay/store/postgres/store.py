"""The PostgreSQL store: the same interface as SQLite's, for several daemons on one database.

Writes are group-committed as on SQLite (batching.py's queue and writer task): every write
function waiting is run in one transaction on the writer's connection (psycopg 3, on a
thread of its own, where the job functions, which are plain functions of a `Tx`, run),
committed once with `synchronous_commit = on`, and only then is each caller answered.
Concurrent requests share the transaction's round trip and WAL flush. A commit that wrote
events also sends `NOTIFY leadrelay_events` (delivered with the commit) so the relays of
every daemon wake. Reads go through a small pool of async connections. All of this
backend's own SQL is here and beside it, in transaction.py (writes), schema.py (migrations)
and retention.py; store/reads.py holds the reads whose SQL both backends share.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from leadrelay.config import mask_secrets
from leadrelay.errors import CommitUnknown, Conflict, Unavailable
from leadrelay.store.base import EVENT_COLUMNS, OUTBOX_COUNTERS, Row
from leadrelay.store.batching import GroupCommit, Job
from leadrelay.store.ordering import due_ids, due_params, next_due_sql
from leadrelay.store.postgres.connection import (
    CONNECT_TIMEOUT,
    LEAD_WRITER_APPLICATION,
    LISTEN_APPLICATION,
    READERS,
    RECONNECT_SECONDS,
    UNREACHABLE_WAIT_SECONDS,
    WRITER_APPLICATION,
    connect,
    dropped,
    migrate_url,
    translate,
)
from leadrelay.store.postgres.transaction import Tx
from leadrelay.store.reads import Reads

log = logging.getLogger("leadrelay.store")

NOTIFY_CHANNEL = "leadrelay_events"
# The lead writer's commit_delay (see Store._linger_seconds): a batch of fewer than
# LINGER_BELOW jobs waits LINGER_SECONDS for more (one tick of the loop's timer)
LINGER_SECONDS = 0.001
LINGER_BELOW = 16
SIBLINGS_SECONDS = 1.0  # how often the lead writer counts the others and its arrival rate
SPARE_IDS_SECONDS = 1.0  # how long a batch's reserved lead ids wait for the next batch


def _qmark(sql: str) -> str:
    """The raw reads take SQLite's `?` placeholders on every backend."""
    return sql.replace("%", "%%").replace("?", "%s")


@dataclass
class Store(GroupCommit[Tx], Reads):
    """An open PostgreSQL database: one writer connection, a pool of readers.  The reads
    both backends share are in reads.py; here are those whose SQL is PostgreSQL's own."""

    url: str
    _writer: psycopg.Connection[Row]
    _pool: AsyncConnectionPool[Any]
    _executor: ThreadPoolExecutor
    durable: bool = True
    on_loop: bool = False
    backend: str = "postgresql"
    claims_per_event: bool = True
    left_behind: str = (
        "the tables were vacuumed, but PostgreSQL may keep the old values in its table files' "
        "free space until new rows overwrite them, and in its WAL, archives, replicas and "
        "backups until they expire (see docs/operations.md, Erasure)"
    )
    _waiting: list[Job] = field(default_factory=list)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _idle: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None
    commit_listeners: list[Callable[[int], None]] = field(default_factory=list)
    _name: str = WRITER_APPLICATION  # the writer connection's application_name
    _siblings: int = 0  # other daemons' lead writers on this database, counted lately
    _rate: float = 0.0  # jobs a second, lately
    _counted_at: float = 0.0
    _jobs_since: int = 0
    _spare_ids: list[int] = field(default_factory=list)  # see _run_batch
    _spare_until: float = 0.0
    unreachable: bool = False  # the last connection to the server failed
    transactions: int = 0

    @classmethod
    async def open(cls, url: str, *, durable: bool = True, on_loop: bool = False) -> Store:
        """Connect and migrate.  `durable=False` commits with synchronous_commit = off (the
        relay's delivery marks, which at-least-once may lose) and bounds each statement
        (connection.py's RELAY_STATEMENT_SECONDS).  `on_loop`: a batch runs on the loop's
        own thread, with no hop to the writer's (the lead writer and relay processes: what
        arrives meanwhile waits in its socket), so a statement waiting on a lock holds up
        the whole loop, as long as RELAY_STATEMENT_SECONDS at most in the relay's."""
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="leadrelay-pg-writer")
        loop = asyncio.get_running_loop()
        try:
            name = LEAD_WRITER_APPLICATION if durable and on_loop else WRITER_APPLICATION
            writer = await loop.run_in_executor(executor, connect, url, durable, name)
            await loop.run_in_executor(executor, migrate_url, url)
            pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
                url,
                min_size=1,
                max_size=READERS,
                kwargs={"autocommit": True, "row_factory": dict_row},
                open=False,
                timeout=CONNECT_TIMEOUT,
                reconnect_timeout=RECONNECT_SECONDS,
            )
            await pool.open(wait=True, timeout=CONNECT_TIMEOUT)
        except psycopg.Error as exc:
            executor.shutdown(wait=False)
            raise translate(exc) from None
        except Exception as exc:  # the pool's timeout, say
            executor.shutdown(wait=False)
            raise Unavailable(
                f"cannot open the PostgreSQL database: {mask_secrets(str(exc))}",
                code="database_unavailable",
            ) from None
        store = cls(url, writer, pool, executor, durable=durable, on_loop=on_loop, _name=name)
        store._start_writing("leadrelay-pg-writer")
        return store

    async def close(self) -> None:
        await self._stop_writing()
        await self._pool.close()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._writer.close)
        self._executor.shutdown(wait=True)

    # writes ------------------------------------------------------------------
    async def _commit_batch(self, jobs: list[Job]) -> int:
        if self.on_loop:
            return self._run_batch(jobs)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._run_batch, jobs)

    def _run_batch(self, jobs: list[Job]) -> int:
        """On the writer's thread: the jobs in one transaction, one COMMIT."""
        if dropped(self._writer):  # the server restarted, say
            self._writer.close()
            try:
                self._writer = connect(self.url, self.durable, self._name)
            except psycopg.Error as exc:
                self.unreachable = True
                raise translate(exc) from None
        conn = self._writer
        # lead ids the previous batch reserved: still good after a failed attempt (no row
        # kept them), but not kept long, so that lead ids follow commit order across daemons
        spare = self._spare_ids if time.monotonic() < self._spare_until else []
        self._spare_ids = []
        try:
            tx = Tx(conn, time.time(), list(spare))
            tx.reserve_hint = len(jobs)
            if not self._commit_pipelined(jobs, tx):
                # a job failed after writing (or a statement aborted the transaction, which
                # its COMMIT then rolled back): the batch is run again, one savepoint a job
                conn.rollback()
                tx = Tx(conn, time.time(), list(spare))
                tx.reserve_hint = len(jobs)
                tx.begin()
                tx.run_jobs(jobs, isolate=True, wrap=_wrap)
                try:
                    self._commit(tx)
                except psycopg.Error as exc:
                    _outcome_known(conn, tx, exc)
                    raise
            self._spare_ids, self._spare_until = tx.ids, time.monotonic() + SPARE_IDS_SECONDS
        except psycopg.Error as exc:
            if not conn.closed:
                try:
                    conn.rollback()
                except psycopg.Error:
                    pass
            raise translate(exc) from None
        if self._name == LEAD_WRITER_APPLICATION:
            self._count(len(jobs))
        return tx.events_written

    def _linger_seconds(self) -> float:
        """PostgreSQL's own commit_delay with commit_siblings, one level up: while another
        daemon's lead writer shares the database and leads arrive at least one a
        LINGER_SECONDS, a batch of fewer than LINGER_BELOW waits LINGER_SECONDS for more.

        The daemons' commits then come fewer and larger.  Each commit costs the writer and
        the server ~0.6 ms of CPU whatever its size, and two daemons, each with half the
        load, make batches half the size (docs/dev/performance.md).  A daemon alone never
        waits, nor does one at a trickle, and the wait is in the lead writer process,
        whose loop has nothing else to do meanwhile."""
        if (
            self._siblings
            and self._rate * LINGER_SECONDS >= 1
            and len(self._waiting) < LINGER_BELOW
        ):
            return LINGER_SECONDS
        return 0.0

    def _count(self, jobs: int) -> None:
        """The lead writer's arrival rate, and (once a SIBLINGS_SECONDS) the other lead
        writers on this database, for _linger_seconds."""
        self._jobs_since += jobs
        now = time.monotonic()
        if now - self._counted_at < SIBLINGS_SECONDS:
            return
        self._rate = self._jobs_since / (now - self._counted_at)
        self._counted_at, self._jobs_since = now, 0
        try:
            row = self._writer.execute(
                "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = %s "
                "AND datname = current_database() AND pid <> pg_backend_pid()",
                (LEAD_WRITER_APPLICATION,),
            ).fetchone()
            self._siblings = int(row["n"]) if row else 0
        except psycopg.Error:
            pass  # the next batch finds the connection lost

    def _commit_pipelined(self, jobs: list[Job], tx: Tx) -> bool:
        """The jobs in pipeline mode, committed; False (nothing committed) when one failed
        after writing, or a statement failed: its error may surface in a later job's
        statement, or at the COMMIT, which the server then turns into a rollback.

        What no job reads the answer of (the new leads and events, the NOTIFY, the
        COMMIT) goes out in one round trip: a batch costs the server one wake-up, not one
        a statement, which is what two daemons on two cores pay for most (docs/dev/performance.md).
        """
        try:
            with ExitStack() as stack:
                tx.open_pipeline = lambda: stack.enter_context(self._writer.pipeline())
                if not tx.run_jobs(jobs, isolate=False, wrap=_wrap):
                    return False
                self._commit(tx)  # in the pipeline: COMMIT, then its one sync
        except psycopg.Error as exc:
            _outcome_known(self._writer, tx, exc)
            return False
        finally:
            tx.pipeline = tx.open_pipeline = None
        return True

    def _commit(self, tx: Tx) -> None:
        """The batch's last statement (its new leads and events, the NOTIFY that wakes
        every daemon's relay when it wrote events), and the COMMIT if it began one."""
        tx.send_last(NOTIFY_CHANNEL)
        if tx.began:
            tx.commit()
        tx.collect_ids()

    # reads -------------------------------------------------------------------
    async def fetch_one(self, sql: str, params: Iterable[Any] = ()) -> Row | None:
        rows = await self.fetch_all(sql, params)
        return rows[0] if rows else None

    async def fetch_all(self, sql: str, params: Iterable[Any] = ()) -> list[Row]:
        return await self._read(_qmark(sql), tuple(params))

    async def _read(
        self, sql: str, params: tuple[Any, ...] = (), *, replan: bool = False
    ) -> list[Row]:
        """`replan`: a read over the outbox's order, planned at each run (transaction.py's
        REPLAN)."""
        wait = UNREACHABLE_WAIT_SECONDS if self.unreachable else CONNECT_TIMEOUT
        prepare = False if replan else None
        for _ in range(READERS + 1):  # every pooled connection dropped, then a new one
            conn = None
            try:
                async with self._pool.connection(timeout=wait) as conn:
                    if not dropped(conn):
                        cur = await conn.execute(sql, params, prepare=prepare)
                        rows: list[Row] = await cur.fetchall() if cur.description else []
                        self.unreachable = False
                        return rows
                    # the server hung up on it (a restart): the pool replaces it, and the
                    # read takes another, or answers 503 soon if the server is away
                    await conn.close()
                    wait = UNREACHABLE_WAIT_SECONDS
            except psycopg.Error as exc:
                # no connection in time, or the one it had was lost: the server is away
                if isinstance(exc, PoolTimeout) or conn is None or conn.broken:
                    self.unreachable = True
                raise translate(exc) from None
        self.unreachable = True
        raise Unavailable(
            "the PostgreSQL database keeps closing connections; check the server",
            code="database_unavailable",
        )

    async def _read_one(
        self, sql: str, params: tuple[Any, ...] = (), *, replan: bool = False
    ) -> Row | None:
        rows = await self._read(sql, params, replan=replan)
        return rows[0] if rows else None

    async def due_events(self, now: float, limit: int, skip: Iterable[int] = ()) -> list[Row]:
        where = "next_attempt_at <= ? AND NOT (id = ANY(?))"
        sql = f"SELECT {EVENT_COLUMNS} FROM events WHERE id IN ({due_ids(where)}) ORDER BY id"
        return await self._read(_qmark(sql), due_params((now, list(skip)), limit), replan=True)

    async def claim_due(
        self, owner: str, now: float, limit: int, skip: Iterable[int], claim_seconds: float
    ) -> list[Row]:
        ids = list(skip)
        return await self.write(lambda tx: tx.claim_due(owner, limit, ids, claim_seconds))

    async def release_claims(self, owner: str, ids: Iterable[int] | None = None) -> None:
        chosen = None if ids is None else list(ids)
        await self.write(lambda tx: tx.release_claims(owner, chosen))

    async def claim_followers(
        self, owner: str, heads: list[Row], per_channel: int, claim_seconds: float
    ) -> list[Row]:
        if not heads or per_channel < 1:
            return []
        return await self.write(
            lambda tx: tx.claim_followers(owner, heads, per_channel, claim_seconds)
        )

    async def follow_commits(self, on_commit: Callable[[], None]) -> None:
        """LISTEN on a connection of its own; when it drops, connect again (polling covers
        the gap, and a look right after reconnecting catches what it missed)."""
        delay = 0.5
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.url,
                    autocommit=True,
                    connect_timeout=CONNECT_TIMEOUT,
                    application_name=LISTEN_APPLICATION,
                ) as conn:
                    await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    on_commit()
                    delay = 0.5
                    async for _ in conn.notifies():
                        on_commit()
            except psycopg.Error as exc:
                log.warning("the LISTEN connection failed (%s); polling until it is back", exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)

    async def next_due_time(self) -> float | None:
        """Another relay's claim defers an event until the claim runs out."""
        row = await self._read_one(
            next_due_sql("GREATEST(e.next_attempt_at, coalesce(e.lease_until, 0))"), replan=True
        )
        return None if row is None or row["t"] is None else float(row["t"])

    async def pending_count(self) -> int:
        """Events still to deliver (the sum of the counters the triggers keep)."""
        row = await self._read_one("SELECT sum(pending)::bigint AS n FROM outbox_counts")
        return int(row["n"]) if row is not None and row["n"] is not None else 0

    async def outbox_counts(self) -> Row:
        """The outbox's counts from the counters the triggers keep (schema.py's
        migration 2), summed over their slots, and the oldest pending event from the head
        of its partial index: a few rows read, however many events are stored."""
        row = await self._read_one(
            "SELECT sum(pending)::bigint AS pending, sum(dead)::bigint AS dead, "
            "sum(delivered)::bigint AS delivered, sum(retrying)::bigint AS retrying, "
            "sum(api_pending)::bigint AS api_pending, sum(api_dead)::bigint AS api_dead, "
            "sum(api_delivered)::bigint AS api_delivered, "
            "sum(api_retrying)::bigint AS api_retrying, "
            "(SELECT created_at FROM events WHERE state = 'pending' ORDER BY id LIMIT 1) "
            "AS oldest_pending FROM outbox_counts"
        )
        assert row is not None
        for name in OUTBOX_COUNTERS:  # outbox_counts' columns, summed over the slots
            row[name] = int(row[name] or 0)
        row["total"] = row["pending"] + row["dead"] + row["delivered"]
        return row

    async def counted_outbox(self) -> Row:
        """The same counts by one pass over the events (for doctor, which checks the
        counters by it)."""
        row = await self._read_one(
            "SELECT "
            "count(*) FILTER (WHERE state = 'pending') AS pending, "
            "count(*) FILTER (WHERE state = 'dead') AS dead, "
            "count(*) FILTER (WHERE state = 'delivered') AS delivered, "
            "count(*) FILTER (WHERE state = 'pending' AND attempts > 0) AS retrying, "
            "count(*) FILTER (WHERE state = 'pending' AND lead_id IS NULL) AS api_pending, "
            "count(*) FILTER (WHERE state = 'dead' AND lead_id IS NULL) AS api_dead, "
            "count(*) FILTER (WHERE state = 'delivered' AND lead_id IS NULL) AS api_delivered, "
            "count(*) FILTER (WHERE state = 'pending' AND attempts > 0 AND lead_id IS NULL) "
            "AS api_retrying, "
            "min(created_at) FILTER (WHERE state = 'pending') AS oldest_pending, "
            "count(*) AS total FROM events"
        )
        assert row is not None
        return row

    async def integrity_problem(self) -> str | None:
        row = await self._read_one("SELECT max(version) AS v FROM migrations")
        return None if row is not None and row["v"] is not None else "no migrations applied"

    async def scrub_freed(self) -> bool:
        """VACUUM the two tables an erasure rewrites, so that no row version, live or dead,
        holds the old values (the server writes the pages at its next checkpoint); answer
        False all the same: VACUUM does not overwrite the space it frees in a page, and the
        WAL, its archives, replicas and backups are the server's (`left_behind`).  Cheap:
        the visibility map spares it the pages nothing changed (about 50 ms beside a
        million leads and events here)."""
        try:
            async with self._pool.connection() as conn:
                await conn.execute("VACUUM leads, events")
        except psycopg.Error as exc:
            raise translate(exc) from None
        return False


def _outcome_known(conn: psycopg.Connection[Any], tx: Tx, exc: psycopg.Error) -> None:
    """After a failed batch: raise CommitUnknown when the connection was lost once its
    COMMIT was sent, since the server may have committed it before the line went.  Lost:
    the connection is closed or broken, or the error is one of losing it (no SQLSTATE: the
    client's own; class 08, a connection exception; class 57, a server shutting the session
    down, as pg_terminate_backend does, whose FATAL can come after the COMMIT's own answer
    and before psycopg sees the socket close).  Any other error is the server's answer:
    it rolled the batch back (a deadlock, a constraint, a statement timeout: class 57's
    query_canceled), and the batch can run again."""
    if isinstance(exc, (psycopg.errors.PipelineAborted, psycopg.errors.QueryCanceled)):
        return  # an earlier statement failed, or one was cancelled: the server rolled back
    lost = exc.sqlstate is None or exc.sqlstate[:2] in ("08", "57")
    if tx.committing and (conn.closed or conn.broken or lost):
        raise CommitUnknown() from None


def _wrap(exc: Exception) -> Exception:
    if isinstance(exc, psycopg.IntegrityError):
        what = mask_secrets(str(exc))
        return Conflict(f"that conflicts with what is stored: {what}", code="conflict")
    if isinstance(exc, psycopg.Error):
        return translate(exc)
    return exc
