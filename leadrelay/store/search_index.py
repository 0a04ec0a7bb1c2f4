"""The search indexer: it writes the keys (leadrelay/search.py) of the leads marked pending.

A new lead costs the intake nothing more than its `search_pending` mark: its keys are written
later, many leads a transaction, sorted, on a connection and a thread of the daemon's own
(as retention's walk is).  Keys written a lead at a time, as an index on the leads table
would be, cost SQLite a page written to its WAL per key and lead, at every commit: measured
here at 1M leads that doubled the lead writer's CPU a lead.  A batch lands in the one bucket
the newest leads fill (search.BUCKET_BITS), a few hundred pages however many keys it holds.

Until its keys are written a lead is found all the same: a search matches the pending leads
in Python (reads.Reads.search_leads).  Erasure deletes a lead's keys in its own transaction
(the search_keys_forget trigger) and marks it pending again.

The daemon's indexer leaves a burst to the intake: while leads arrive faster than
BURST_PER_SECOND it waits (unless MAX_WAITING wait), and indexes them once it is over; an
intake at full speed keeps both cores busy, and the keys can wait where a lead cannot.

Each batch is one short transaction: on SQLite it holds the write lock for a few
milliseconds and then pauses, busy a quarter of the time at most, so that the intake's
writer waits little; on PostgreSQL it locks the pending leads it takes (SKIP LOCKED), so
several daemons index at once without doing the same work.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Protocol

from leadrelay.config import is_postgres
from leadrelay.errors import ApiError
from leadrelay.search import bucket, lead_keys
from leadrelay.store.base import Row

log = logging.getLogger("leadrelay.search")

BATCH = 500  # leads a transaction
BUSY_SHARE = 0.25  # the indexer is busy at most this share of the time
MAX_PAUSE_SECONDS = 1.0
# a burst: while leads arrive faster than this (a second), the daemon's indexer waits (search
# matches what waits one by one), unless more than MAX_WAITING wait: then it catches up
BURST_PER_SECOND = 200
MAX_WAITING = 100_000

_PENDING = (
    "SELECT id, name, email, phone, external_id FROM leads WHERE search_pending = 1 "
    "ORDER BY id LIMIT ?"
)
_KEY = "INSERT INTO search_keys (bucket, key, lead_id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"
# PostgreSQL: a batch's keys in one statement (executemany took 6 times as long a lead)
_KEYS_PG = (
    "INSERT INTO search_keys (bucket, key, lead_id) "
    "SELECT * FROM unnest(%s::bigint[], %s::text[], %s::bigint[]) ON CONFLICT DO NOTHING"
)


def index_pending(
    db: Path | str,
    *,
    batch: int = BATCH,
    busy_share: float = BUSY_SHARE,
    stop: threading.Event | None = None,
) -> int:
    """Write the keys of every lead pending, batch by batch, until none is (leads marked
    meanwhile too); return how many leads were indexed."""
    with _connection(db) as conn:
        return _walk(conn, batch, busy_share, stop)


def keep_indexed(db: Path | str, stop: threading.Event, interval: float) -> None:
    """The daemon's indexer: index what is pending every `interval` seconds, on one
    connection, until `stop` is set (a database error: a new connection a little later).
    It leaves a burst of new leads to the intake (Burst) and indexes them after it."""
    while not stop.is_set():
        try:
            with _connection(db) as conn:
                burst = Burst()
                while not stop.is_set():
                    if not burst.on(conn):
                        _walk(conn, BATCH, BUSY_SHARE, stop)
                    stop.wait(interval)
        except ApiError as exc:
            log.warning("search indexing failed: %s", exc, extra={"cause": exc.code})
            stop.wait(max(interval, 5.0))


class Connection(Protocol):
    """What the walk needs of a connection: reads (`?` marks, rows as dicts), a batch's keys
    written, and a transaction."""

    postgres: bool

    def rows(self, sql: str, params: Iterable[Any] = ()) -> list[Row]: ...
    def run(self, sql: str, params: Iterable[Any] = ()) -> None: ...
    def insert_keys(self, keys: list[tuple[int, str, int]]) -> None: ...
    def transaction(self) -> AbstractContextManager[Any]: ...


class Burst:
    """Whether leads arrive in a burst: faster than BURST_PER_SECOND since the last look
    (the highest lead id, read from the primary key's end), with not too many waiting."""

    def __init__(self) -> None:
        self.seen: tuple[float, int] | None = None

    def on(self, conn: Connection) -> bool:
        high, now = (
            int(conn.rows("SELECT max(id) AS high FROM leads")[0]["high"] or 0),
            time.monotonic(),
        )
        before, self.seen = self.seen, (now, high)
        if before is None or now <= before[0]:
            return False
        if (high - before[1]) / (now - before[0]) <= BURST_PER_SECOND:
            return False
        waiting = conn.rows(
            "SELECT count(*) AS n FROM (SELECT 1 FROM leads WHERE search_pending = 1 LIMIT ?) w",
            (MAX_WAITING,),
        )
        return int(waiting[0]["n"]) < MAX_WAITING


def _walk(conn: Connection, batch: int, busy_share: float, stop: threading.Event | None) -> int:
    total = 0
    while stop is None or not stop.is_set():
        started = time.monotonic()
        with conn.transaction():
            done = _index_batch(conn, batch)
        total += done
        if done < batch:
            break
        busy = time.monotonic() - started
        if busy_share < 1:
            time.sleep(min(MAX_PAUSE_SECONDS, busy * (1 - busy_share) / busy_share))
    return total


def _index_batch(conn: Connection, batch: int) -> int:
    rows = conn.rows(_PENDING + (" FOR UPDATE SKIP LOCKED" if conn.postgres else ""), (batch,))
    if not rows:
        return 0
    keys = sorted((bucket(row["id"]), key, row["id"]) for row in rows for key in lead_keys(row))
    if keys:
        conn.insert_keys(keys)
    ids = [row["id"] for row in rows]
    conn.run(f"UPDATE leads SET search_pending = 0 WHERE id IN ({','.join('?' * len(ids))})", ids)
    return len(rows)


@contextmanager
def _connection(db: Path | str) -> Iterator[Connection]:
    """A new connection to `db`; a database error leaves as the store's Unavailable."""
    if is_postgres(db):
        with _postgres(str(db)) as pg:
            yield pg
    else:
        with _sqlite(Path(db)) as lite:
            yield lite


class _Postgres:
    postgres = True

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def rows(self, sql: str, params: Iterable[Any] = ()) -> list[Row]:
        return list(self.conn.execute(sql.replace("?", "%s"), tuple(params)).fetchall())

    def run(self, sql: str, params: Iterable[Any] = ()) -> None:
        self.conn.execute(sql.replace("?", "%s"), tuple(params))

    def insert_keys(self, keys: list[tuple[int, str, int]]) -> None:
        buckets, texts, leads = (list(column) for column in zip(*keys, strict=True))
        self.conn.execute(_KEYS_PG, (buckets, texts, leads))

    def transaction(self) -> AbstractContextManager[Any]:
        return self.conn.transaction()  # type: ignore[no-any-return]


@contextmanager
def _postgres(url: str) -> Iterator[_Postgres]:
    import psycopg
    from psycopg.rows import dict_row

    from leadrelay.store.postgres.connection import CONNECT_TIMEOUT, translate

    try:
        with psycopg.connect(
            url, row_factory=dict_row, autocommit=True, connect_timeout=CONNECT_TIMEOUT
        ) as conn:
            yield _Postgres(conn)
    except psycopg.Error as exc:
        raise translate(exc) from None


class _Sqlite:
    postgres = False

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def rows(self, sql: str, params: Iterable[Any] = ()) -> list[Row]:
        return [dict(row) for row in self.conn.execute(sql, tuple(params)).fetchall()]

    def run(self, sql: str, params: Iterable[Any] = ()) -> None:
        self.conn.execute(sql, tuple(params))

    def insert_keys(self, keys: list[tuple[int, str, int]]) -> None:
        self.conn.executemany(_KEY, keys)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")


@contextmanager
def _sqlite(path: Path) -> Iterator[_Sqlite]:
    from leadrelay.store.sqlite.connection import connect, translate

    try:
        conn = connect(path, durable=True)
        # what a batch moves or frees is zeroed: an erased lead's keys leave no copies
        conn.execute("PRAGMA secure_delete = ON")
    except sqlite3.Error as exc:
        raise translate(exc) from None
    try:
        yield _Sqlite(conn)
    except sqlite3.Error as exc:
        raise translate(exc) from None
    finally:
        conn.close()
