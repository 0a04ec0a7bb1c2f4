"""Retention on SQLite: the walk that deletes what the policy (store/retention.py) no longer
keeps, on a connection of its own, one small range a transaction.

Pruning runs in a thread (sqlite3 lets go of the GIL while a statement runs), one small batch
a transaction, so that the intake's writers never wait longer than one batch for the write
lock, with pauses that keep it busy a tenth of the time at most: 500 rows per 0.1 s at best
(5,000 a second); on two cores loaded by other work it measured 300 to 2,500 a second. That
keeps up with any steady intake short of saturation; a large first backlog takes hours to
clear.  Rows are walked from the oldest id: ids grow with time, so the walk stops at the
first row young enough to keep, and a pass costs what it deletes plus the old rows it keeps
(pending or dead-lettered).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from leadrelay.store.base import RETENTION_KEY
from leadrelay.store.sqlite.connection import connect, translate

if TYPE_CHECKING:
    from leadrelay.store.retention import Policy, Pruned

BUSY_SHARE = 0.1  # pruning is busy at most this share of the time
MAX_PAUSE_SECONDS = 1.0


def prune(
    db: Path | str,
    policy: Policy,
    pruned: Pruned,
    *,
    now: float,
    dry_run: bool,
    pause: float,
    batch: int,
    stop: threading.Event | None,
) -> Pruned:
    try:
        conn = connect(Path(db), durable=True)
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
