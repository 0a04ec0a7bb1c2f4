"""The SQLite store: the one writer, its own reads, and (in transaction.py) the writes' SQL.

Writes are group-committed (the queue and the writer task are batching.py's, shared with
PostgreSQL): callers hand `Store.write` a function of a `Tx`; one writer task gathers every
function waiting, runs them in one transaction (each in a savepoint, so one failing leaves
the others alone) on a dedicated thread, commits once with synchronous=FULL, and only then
answers each caller. Durability costs one fsync per batch, not per request. The batch runs
in one thread hop because aiosqlite has no public way to run a function on its thread;
reads use aiosqlite. A process whose loop serves only its store (the lead writer, the
relay) opens it `on_loop`: no thread hop at all.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from leadrelay.errors import Conflict, Unavailable
from leadrelay.store.base import EVENT_COLUMNS, Row
from leadrelay.store.batching import GroupCommit
from leadrelay.store.batching import Job as _Job
from leadrelay.store.ordering import (
    due_ids,
    due_params,
    followers_params,
    followers_sql,
    next_due_sql,
)
from leadrelay.store.reads import Reads
from leadrelay.store.sqlite.connection import (
    SECURE_DELETE,
    checkpoint_truncate,
    connect,
    create_private,
    migrate,
    translate,
)
from leadrelay.store.sqlite.transaction import Tx

T = TypeVar("T")

BUSY_TIMEOUT_SECONDS = 5.0


@dataclass
class Store(GroupCommit[Tx], Reads):
    """An open database: one writer thread, one aiosqlite reader.  The reads both backends
    share are in reads.py; here are those whose SQL is SQLite's own."""

    backend = "sqlite"
    claims_per_event = False
    left_behind = "the WAL could not be emptied yet; the next checkpoint will finish it"
    path: Path
    reader: aiosqlite.Connection
    _writer: sqlite3.Connection
    _executor: ThreadPoolExecutor
    durable: bool = True
    on_loop: bool = False
    _waiting: list[_Job] = field(default_factory=list)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)  # a write is waiting
    _idle: asyncio.Event = field(default_factory=asyncio.Event)  # nothing waiting or running
    _task: asyncio.Task[None] | None = None
    commit_listeners: list[Callable[[int], None]] = field(default_factory=list)
    transactions: int = 0  # group commits so far: far fewer than writes under load

    @classmethod
    async def open(cls, path: Path, *, durable: bool = True, on_loop: bool = False) -> Store:
        """Open (creating and migrating) the database.

        `durable=False` commits without an fsync (WAL, synchronous=NORMAL): for the relay
        process, whose writes are delivery marks that at-least-once may lose, and which
        should hold the write lock as briefly as it can beside the intake.

        `on_loop=True` runs every SQLite call, COMMIT and reads too, on the loop's thread: for
        a process whose loop has nothing else to do meanwhile (the lead writer, the relay).
        There a thread hop per commit and per read costs more CPU than it spares: the writes
        that arrive during an fsync wait in the socket and make the next batch.
        """
        path = Path(path)
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="leadrelay-writer")
        loop = asyncio.get_running_loop()
        try:
            if not path.exists():
                create_private(path)
            writer = await loop.run_in_executor(executor, connect, path, durable)
            await loop.run_in_executor(executor, migrate, writer)
            # from here on the writer waits for the lock itself (see _begin)
            writer.execute("PRAGMA busy_timeout = 0")
            reader = await aiosqlite.connect(path, isolation_level=None)
        except sqlite3.Error as exc:
            executor.shutdown(wait=False)
            raise translate(exc) from None
        except OSError as exc:
            executor.shutdown(wait=False)
            hint = "; create its folder first" if not path.parent.exists() else ""
            raise Unavailable(
                f"cannot open the database {path}: {exc.strerror}{hint}",
                code="database_unavailable",
            ) from None
        reader.row_factory = sqlite3.Row
        await reader.execute("PRAGMA busy_timeout = 5000")
        await reader.execute("PRAGMA foreign_keys = ON")
        await reader.execute(SECURE_DELETE)
        store = cls(
            path=path,
            reader=reader,
            _writer=writer,
            _executor=executor,
            durable=durable,
            on_loop=on_loop,
        )
        store._start_writing("leadrelay-writer")
        return store

    async def close(self) -> None:
        await self._stop_writing()
        await self.reader.close()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._writer.close)
        self._executor.shutdown(wait=True)

    # writes ------------------------------------------------------------------
    async def _commit_batch(self, jobs: list[_Job]) -> int:
        """BEGIN and the jobs' statements on the loop's thread, where they need the GIL
        anyway (a GIL hand-off per statement would cost more than the statements); COMMIT,
        which waits for an fsync, on the writer thread unless the store is `on_loop`."""
        loop = asyncio.get_running_loop()
        conn = self._writer
        await self._begin()
        try:
            tx = Tx(conn, time.time())
            if not tx.run_jobs(jobs, isolate=False, wrap=_wrap):
                # a job failed after writing: only a savepoint undoes that job alone, so the
                # batch is undone and run again with a savepoint around each job (rare: jobs
                # check before they write)
                conn.execute("ROLLBACK")
                await self._begin()
                tx = Tx(conn, time.time())
                tx.run_jobs(jobs, isolate=True, wrap=_wrap)
            tx.write_events()
            if self.on_loop:
                self._execute("COMMIT")
            else:
                await loop.run_in_executor(self._executor, self._execute, "COMMIT")
        except BaseException as exc:
            if conn.in_transaction and self.on_loop:
                self._execute("ROLLBACK")
            elif conn.in_transaction:
                await loop.run_in_executor(self._executor, self._execute, "ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise translate(exc) from None
            raise
        return tx.events_written

    async def _begin(self) -> None:
        """BEGIN IMMEDIATE on the loop's thread: instant when no other process writes."""
        await self._when_unlocked(lambda: self._writer.execute("BEGIN IMMEDIATE"))

    async def _when_unlocked(self, call: Callable[[], T]) -> T:
        """`call()` on the loop's thread; while another process holds a lock it needs, try
        again every few milliseconds until the busy timeout (SQLite's own busy handler would
        sleep in steps of up to 100 ms, and block the thread doing it)."""
        deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
        delay = 0.001
        while True:
            try:
                return call()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise translate(exc) from None
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 0.005)

    def _execute(self, sql: str) -> None:
        try:
            self._writer.execute(sql)
        except sqlite3.Error as exc:
            raise translate(exc) from None

    # reads -------------------------------------------------------------------
    async def fetch_one(self, sql: str, params: Iterable[Any] = ()) -> Row | None:
        rows = await self.fetch_all(sql, params)
        return rows[0] if rows else None

    async def fetch_all(self, sql: str, params: Iterable[Any] = ()) -> list[Row]:
        args = tuple(params)
        rows: Iterable[sqlite3.Row]
        try:
            if self.on_loop:  # between batches, the writer's connection is in no transaction
                conn = self._writer
                rows = await self._when_unlocked(lambda: conn.execute(sql, args).fetchall())
            else:
                rows = await self.reader.execute_fetchall(sql, args)
        except sqlite3.Error as exc:
            raise translate(exc) from None
        return [dict(row) for row in rows]

    async def due_events(self, now: float, limit: int, skip: Iterable[int] = ()) -> list[Row]:
        """Pending events whose time has come and that no earlier event of their key
        (their lead, or their channel: store/ordering.py) holds back, less `skip`."""
        where = "next_attempt_at <= ? AND id NOT IN (SELECT value FROM json_each(?))"
        return await self.fetch_all(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE id IN ({due_ids(where)}) ORDER BY id",
            due_params((now, json.dumps(list(skip))), limit),
        )

    async def claim_due(
        self, owner: str, now: float, limit: int, skip: Iterable[int], claim_seconds: float
    ) -> list[Row]:
        """One relay sends (the relay lease): its claims live in its memory."""
        return await self.due_events(now, limit, skip)

    async def release_claims(self, owner: str, ids: Iterable[int] | None = None) -> None:
        return None

    async def claim_followers(
        self, owner: str, heads: list[Row], per_channel: int, claim_seconds: float
    ) -> list[Row]:
        """One relay sends (the relay lease): a read."""
        if not heads or per_channel < 1:
            return []
        return await self.fetch_all(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE id IN ({followers_sql(len(heads))}) "
            "ORDER BY channel_id, seq",
            followers_params(heads, per_channel),
        )

    async def follow_commits(self, on_commit: Callable[[], None]) -> None:
        return None  # the wake socket (relay/wake.py) and polling

    async def next_due_time(self) -> float | None:
        """When the earliest event that no earlier event of its key blocks falls due."""
        row = await self.fetch_one(next_due_sql("e.next_attempt_at"))
        return None if row is None or row["t"] is None else float(row["t"])

    async def pending_count(self) -> int:
        """Events still to deliver (from the counter the triggers keep)."""
        row = await self.fetch_one("SELECT n FROM outbox_counts WHERE name = 'pending'")
        return int(row["n"]) if row else 0

    async def outbox_counts(self) -> Row:
        """The outbox's counts from the counters the triggers keep (migration 2), and the
        oldest pending event from the head of its partial index: a few rows read, however
        many events are stored."""
        row = await self.fetch_one(
            "SELECT "
            "(SELECT n FROM outbox_counts WHERE name = 'pending') AS pending, "
            "(SELECT n FROM outbox_counts WHERE name = 'dead') AS dead, "
            "(SELECT n FROM outbox_counts WHERE name = 'delivered') AS delivered, "
            "(SELECT n FROM outbox_counts WHERE name = 'retrying') AS retrying, "
            "(SELECT n FROM outbox_counts WHERE name = 'api_pending') AS api_pending, "
            "(SELECT n FROM outbox_counts WHERE name = 'api_dead') AS api_dead, "
            "(SELECT n FROM outbox_counts WHERE name = 'api_delivered') AS api_delivered, "
            "(SELECT n FROM outbox_counts WHERE name = 'api_retrying') AS api_retrying, "
            "(SELECT created_at FROM events WHERE state = 'pending' ORDER BY id LIMIT 1) "
            "AS oldest_pending"
        )
        assert row is not None
        row["total"] = row["pending"] + row["dead"] + row["delivered"]
        return row

    async def counted_outbox(self) -> Row:
        """The same counts by scanning the table (for doctor, which checks the counters)."""
        row = await self.fetch_one(
            "SELECT "
            "(SELECT count(*) FROM events WHERE state = 'pending') AS pending, "
            "(SELECT count(*) FROM events WHERE state = 'dead') AS dead, "
            "(SELECT count(*) FROM events WHERE state = 'delivered') AS delivered, "
            "(SELECT count(*) FROM events WHERE state = 'pending' AND attempts > 0) AS retrying, "
            "(SELECT count(*) FROM events WHERE state = 'pending' AND lead_id IS NULL) "
            "AS api_pending, "
            "(SELECT count(*) FROM events WHERE state = 'dead' AND lead_id IS NULL) AS api_dead, "
            "(SELECT count(*) FROM events WHERE state = 'delivered' AND lead_id IS NULL) "
            "AS api_delivered, "
            "(SELECT count(*) FROM events WHERE state = 'pending' AND attempts > 0 "
            "AND lead_id IS NULL) AS api_retrying, "
            "(SELECT min(created_at) FROM events WHERE state = 'pending') AS oldest_pending, "
            "(SELECT count(*) FROM events) AS total"
        )
        assert row is not None
        return row

    async def integrity_problem(self) -> str | None:
        row = await self.fetch_one("PRAGMA quick_check")
        result = None if row is None else next(iter(row.values()))
        return None if result == "ok" else f"integrity check failed: {result}"

    async def scrub_freed(self) -> bool:
        """A TRUNCATE checkpoint empties the WAL (secure_delete zeroed the pages)."""
        return await asyncio.to_thread(checkpoint_truncate, self.path)


def _wrap(exc: Exception) -> Exception:
    """Translate a job's SQLite error; anything else (a bug) goes back to its caller as is."""
    if isinstance(exc, sqlite3.IntegrityError):
        return Conflict(f"that conflicts with what is stored: {exc}", code="conflict")
    if isinstance(exc, sqlite3.Error):
        return translate(exc)
    return exc
