"""Retention on PostgreSQL: the walk for the policy in store/retention.py, in small batches.

Each batch is one short transaction on a connection of its own (row locks, not a database
lock: the intake's writers of every daemon go on meanwhile).  Several daemons may prune at
once: a row one deletes the other's DELETE skips.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.rows import dict_row

from leadrelay.store.base import RETENTION_KEY
from leadrelay.store.postgres.connection import CONNECT_TIMEOUT, translate

if TYPE_CHECKING:
    from leadrelay.store.retention import Policy, Pruned

_EVENTS = (
    "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE state = 'delivered' "
    "AND created_at < %s ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING id"
)
_COUNT_EVENTS = "SELECT count(*) AS n FROM events WHERE state = 'delivered' AND created_at < %s"
_KEYS = (
    "DELETE FROM idempotency_keys WHERE key IN (SELECT key FROM idempotency_keys "
    "WHERE created_at < %s LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING key"
)
_COUNT_KEYS = "SELECT count(*) AS n FROM idempotency_keys WHERE created_at < %s"


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
        with psycopg.connect(
            str(db), row_factory=dict_row, autocommit=True, connect_timeout=CONNECT_TIMEOUT
        ) as conn:
            if policy.events_max_age is not None:
                cutoff = now - policy.events_max_age
                pruned.events = _walk(
                    conn, _EVENTS, _COUNT_EVENTS, cutoff, dry_run, pause, batch, stop
                )
            cutoff = now - policy.keys_max_age
            pruned.idempotency_keys = _walk(
                conn, _KEYS, _COUNT_KEYS, cutoff, dry_run, pause, batch, stop
            )
    except psycopg.Error as exc:
        raise translate(exc) from None
    return pruned


def _walk(
    conn: psycopg.Connection[Any],
    delete: str,
    count: str,
    cutoff: float,
    dry_run: bool,
    pause: float,
    batch: int,
    stop: threading.Event | None,
) -> int:
    if dry_run:
        row = conn.execute(count, (cutoff,)).fetchone()
        return int(row["n"]) if row else 0
    total = 0
    while stop is None or not stop.is_set():
        with conn.transaction():
            rows = conn.execute(delete, (cutoff, batch)).fetchall()
            if rows and "id" in rows[0]:
                _record_mark(conn, max(int(row["id"]) for row in rows))
        total += len(rows)
        if len(rows) < batch:
            break
        if pause:
            time.sleep(pause)
    return total


def _record_mark(conn: psycopg.Connection[Any], through: int) -> None:
    row = conn.execute(
        "SELECT value FROM settings WHERE key = %s FOR UPDATE", (RETENTION_KEY,)
    ).fetchone()
    mark = json.loads(row["value"]) if row else {}
    mark["pruned_through"] = max(int(mark.get("pruned_through", 0)), through)
    mark["pruned_at"] = time.time()
    conn.execute(
        "INSERT INTO settings (key, value, updated_at) VALUES (%s, %s, %s) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
        "updated_at = excluded.updated_at",
        (RETENTION_KEY, json.dumps(mark), str(mark["pruned_at"])),
    )
