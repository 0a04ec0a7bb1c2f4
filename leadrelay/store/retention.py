"""Retention: delivered events past `events_retention_days` and expired idempotency keys go.

Pruning runs on a connection of its own, in a thread (sqlite3 lets go of the GIL while a
statement runs), one small batch a transaction, so that the intake's writers never wait
longer than one batch for the write lock, with pauses that keep it busy a tenth of the time
at most: 500 rows per 0.1 s at best (5,000 a second); on two cores loaded by other work it
measured 300 to 2,500 a second. That keeps up with any steady intake short of saturation; a
large first backlog takes hours to clear.  Rows are walked from
the oldest id: ids grow with time, so the walk stops at the first row young enough to keep,
and a pass costs what it deletes plus the old rows it keeps (pending or dead-lettered).

The highest event id deleted is recorded in the settings row `retention`; the events API
answers a cursor below it with 410 `cursor_expired` (`check_cursor`).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from leadrelay.config import is_postgres
from leadrelay.errors import CursorExpired
from leadrelay.store.connection import connect, translate
from leadrelay.store.schema import RETENTION_KEY

if TYPE_CHECKING:
    from leadrelay.config import Settings
    from leadrelay.store.base import Store

BATCH = 500  # rows a transaction: a few milliseconds of holding the write lock
PAUSE_SECONDS = 0.1  # at least this between two batches
BUSY_SHARE = 0.1  # and long enough that pruning is busy at most this share of the time
MAX_PAUSE_SECONDS = 1.0


@dataclass(frozen=True)
class Policy:
    events_max_age: float | None  # seconds; None keeps every event
    keys_max_age: float  # seconds

    @classmethod
    def of(cls, settings: Settings) -> Policy:
        days = settings.events_retention_days
        return cls(
            events_max_age=days * 86400 if days > 0 else None,
            keys_max_age=settings.idempotency_ttl_hours * 3600,
        )


@dataclass
class Pruned:
    events: int = 0
    idempotency_keys: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def prune(
    path: Path | str,
    policy: Policy,
    *,
    now: float | None = None,
    dry_run: bool = False,
    pause: float = PAUSE_SECONDS,
    batch: int = BATCH,
    stop: threading.Event | None = None,
) -> Pruned:
    """Delete (or with `dry_run` only count) what the policy no longer keeps."""
    now = time.time() if now is None else now
    pruned = Pruned()
    if is_postgres(path):
        from leadrelay.store import pg_retention

        return pg_retention.prune(
            str(path),
            policy,
            pruned,
            now=now,
            dry_run=dry_run,
            pause=pause,
            batch=batch,
            stop=stop,
        )
    try:
        conn = connect(Path(path), durable=True)
    except sqlite3.Error as exc:
        raise translate(exc) from None
    try:
        if policy.events_max_age is not None:
            pruned.events = _walk(
                conn,
                _EVENTS,
                now - policy.events_max_age,
                dry_run=dry_run,
                pause=pause,
                batch=batch,
                stop=stop,
            )
        pruned.idempotency_keys = _walk(
            conn,
            _KEYS,
            now - policy.keys_max_age,
            dry_run=dry_run,
            pause=pause,
            batch=batch,
            stop=stop,
        )
    except sqlite3.Error as exc:
        raise translate(exc) from None
    finally:
        conn.close()
    return pruned


@dataclass(frozen=True)
class _Table:
    """One table's statements over a range of its keys (`key > ? AND key <= ?`), so that a
    batch is a handful of statements run in SQLite, with the GIL let go, not rows in Python."""

    bound: str  # the key `batch` rows after a key, or None
    last: str  # the highest key
    first_young: str  # the first key in a range made at or after the cutoff
    doomed: str  # (how many, the highest) of the deletable rows in a range
    delete: str
    records_mark: bool


def _table(name: str, key: str, deletable: str) -> _Table:
    in_range = f"FROM {name} WHERE {key} > ? AND {key} <= ?"
    return _Table(
        bound=f"SELECT {key} FROM {name} WHERE {key} > ? ORDER BY {key} LIMIT 1 OFFSET ?",
        last=f"SELECT max({key}) FROM {name}",
        first_young=f"SELECT min({key}) {in_range} AND created_at >= ?",
        doomed=f"SELECT count(*), max({key}) {in_range}{deletable} AND created_at < ?",
        delete=f"DELETE {in_range}{deletable} AND created_at < ?",
        records_mark=name == "events",
    )


_EVENTS = _table("events", "id", " AND state = 'delivered'")
# keys are inserted in time order, so their rowids grow with created_at
_KEYS = _table("idempotency_keys", "rowid", "")


def _walk(
    conn: sqlite3.Connection,
    table: _Table,
    cutoff: float,
    *,
    dry_run: bool,
    pause: float,
    batch: int,
    stop: threading.Event | None,
) -> int:
    """From the oldest key up: each batch a range of `batch` keys, cut short at the first row
    young enough to keep, which ends the walk."""
    after, total = 0, 0
    while stop is None or not stop.is_set():
        started = time.monotonic()
        row = conn.execute(table.bound, (after, batch - 1)).fetchone()
        last = row is None
        if row is None:  # fewer than a batch left: up to the highest key
            row = conn.execute(table.last).fetchone()
        upper: int | None = row[0]
        if upper is None or upper <= after:
            break
        young = conn.execute(table.first_young, (after, upper, cutoff)).fetchone()[0]
        if young is not None:
            upper, last = young - 1, True
        if dry_run:
            total += conn.execute(table.doomed, (after, upper, cutoff)).fetchone()[0]
        else:
            total += _delete(conn, table, after, upper, cutoff)
        after = upper
        if last:
            break
        if pause and not dry_run:
            # deleting a row costs about what writing it did: on a machine the intake keeps
            # busy, pruning takes a tenth of one core at most, however slow the batch was
            # (capped: a batch that waited long for the lock was not busy all that time)
            took = time.monotonic() - started
            time.sleep(min(MAX_PAUSE_SECONDS, max(pause, took * (1 - BUSY_SHARE) / BUSY_SHARE)))
    return total


def _delete(conn: sqlite3.Connection, table: _Table, after: int, upper: int, cutoff: float) -> int:
    if not conn.execute(table.doomed, (after, upper, cutoff)).fetchone()[0]:
        return 0  # nothing to delete: the write lock is not taken
    conn.execute("BEGIN IMMEDIATE")
    try:
        count, highest = conn.execute(table.doomed, (after, upper, cutoff)).fetchone()
        if count:
            conn.execute(table.delete, (after, upper, cutoff))
            if table.records_mark:
                _record_mark(conn, int(highest))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return int(count)


def _record_mark(conn: sqlite3.Connection, through: int) -> None:
    row = conn.execute("SELECT value FROM settings WHERE key = ?", (RETENTION_KEY,)).fetchone()
    mark = json.loads(row[0]) if row else {}
    mark["pruned_through"] = max(int(mark.get("pruned_through", 0)), through)
    mark["pruned_at"] = time.time()
    conn.execute(
        "INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
        "updated_at = excluded.updated_at",
        (RETENTION_KEY, json.dumps(mark), str(mark["pruned_at"])),
    )


async def pruned_through(store: Store) -> int:
    """The highest event id pruning has deleted (0: none yet)."""
    mark: dict[str, Any] = await store.get_setting(RETENTION_KEY) or {}
    return int(mark.get("pruned_through", 0))


async def check_cursor(store: Store, after: int) -> None:
    """Raise CursorExpired when events after `after` may have been pruned.

    `after=0` means "from the oldest event kept" and is never expired."""
    through = await pruned_through(store)
    if 0 < after < through:
        raise CursorExpired(
            f"events after {after} are no longer kept (delivered events are pruned after "
            f"events_retention_days; every event after {through} is kept): reload the leads "
            f"and continue from after={through}",
            code="cursor_expired",
        )


async def check_missing_event_id(store: Store, event_id: str) -> None:
    """An event_id cursor that is not stored: expired when it names an event older than the
    newest one pruned (its UUIDv7 carries its time), else the caller's 404 stands."""
    through = await pruned_through(store)
    if not through:
        return
    row = await store.fetch_one("SELECT event_id FROM events WHERE id = ?", (through,))
    newest_kept_after = await store.fetch_one(
        "SELECT event_id FROM events WHERE id > ? ORDER BY id LIMIT 1", (through,)
    )
    reference = (row or newest_kept_after or {}).get("event_id")
    if reference is None:
        return
    if _uuid7_ms(event_id) <= _uuid7_ms(str(reference)):
        raise CursorExpired(
            f"the event {event_id} is no longer kept (delivered events are pruned after "
            f"events_retention_days): reload the leads and continue from after={through}",
            code="cursor_expired",
        )


def _uuid7_ms(event_id: str) -> int:
    return uuid.UUID(event_id).int >> 80
