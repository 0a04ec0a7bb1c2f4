"""SQLite's side of the write SQL: a `Tx` is one group-commit transaction on the writer
connection (the SQL both backends share is store/transaction.py's)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

from leadrelay.store.base import Row
from leadrelay.store.rows import (
    EVENT_INSERT_COLUMNS,
    LEAD_INSERT_COLUMNS,
    lead_params,
)
from leadrelay.store.transaction import SharedTx


def _insert(table: str, columns: str) -> str:
    return f"INSERT INTO {table} ({columns}) VALUES ({','.join('?' * (columns.count(',') + 1))})"


_INSERT_LEAD = _insert("leads", LEAD_INSERT_COLUMNS)
_INSERT_EVENT = _insert("events", f"id, {EVENT_INSERT_COLUMNS}")


class Tx(SharedTx):
    """One transaction on the writer connection.  SQLite has one writer at a time: the
    write transaction (BEGIN IMMEDIATE) is every row's lock."""

    def __init__(self, conn: sqlite3.Connection, now: float) -> None:
        super().__init__(now)
        self.conn = conn

    def _savepoint(self, sql: str) -> None:
        self.conn.execute(sql)

    def _one(self, sql: str, params: Iterable[Any] = ()) -> Row | None:
        row = self.conn.execute(sql, tuple(params)).fetchone()
        return dict(row) if row is not None else None

    def _all(self, sql: str, params: Iterable[Any] = ()) -> list[Row]:
        return [dict(row) for row in self.conn.execute(sql, tuple(params)).fetchall()]

    def _change(self, sql: str, params: Iterable[Any] = ()) -> int:
        self.writes += 1
        return self.conn.execute(sql, tuple(params)).rowcount

    def _send(self, sql: str, params: Iterable[Any] = ()) -> None:
        self.writes += 1
        self.conn.execute(sql, tuple(params))

    # leads -------------------------------------------------------------------
    def insert_lead(self, lead: Row, *, last_seq: int = 0) -> int:
        self.writes += 1
        cur = self.conn.execute(_INSERT_LEAD, lead_params(lead, last_seq))
        assert cur.lastrowid is not None
        return cur.lastrowid

    # events ------------------------------------------------------------------
    def write_events(self) -> None:
        """The transaction's new events, under ids from the `event_ids` counter (never one
        handed out before, pruned or not; never below a row inserted without it)."""
        if not self.events:
            return
        self.take_channel_seqs()
        rows, self.events = self.events, []
        top = self._one(
            "UPDATE event_ids SET n = max(n, coalesce((SELECT max(id) FROM events), 0)) + ? "
            "RETURNING n",
            (len(rows),),
        )
        assert top is not None
        first = int(top["n"]) - len(rows) + 1
        self.conn.executemany(_INSERT_EVENT, [(first + n, *row) for n, row in enumerate(rows)])

    # one relay holds the relay lease at a time (relay/lease.py): its marks need no claim
    def mark_delivered(self, ids: list[int], owner: str | None = None) -> None:
        marks = ",".join("?" * len(ids))
        self._send(
            "UPDATE events SET state = 'delivered', delivered_at = ?, attempts = attempts + 1, "
            f"last_error = NULL WHERE id IN ({marks}) AND state = 'pending'",
            (self.now, *ids),
        )

    def mark_retry(
        self, ids: list[int], next_attempt_at: float, error: str, owner: str | None = None
    ) -> None:
        self.writes += 1
        self.conn.executemany(
            "UPDATE events SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? "
            "WHERE id = ? AND state = 'pending'",
            [(next_attempt_at, error, event_id) for event_id in ids],
        )

    def mark_dead(self, ids: list[int], error: str, owner: str | None = None) -> None:
        self.writes += 1
        self.conn.executemany(
            "UPDATE events SET state = 'dead', attempts = attempts + 1, last_error = ? "
            "WHERE id = ? AND state = 'pending'",
            [(error, event_id) for event_id in ids],
        )

    def renew_claims(self, owner: str, ids: list[int], claim_seconds: float) -> list[int]:
        return ids  # claims live in the relay's memory (claims_per_event is False)

    # providers ---------------------------------------------------------------
    def insert_provider(self, name: str, provider_id: int | None, created_at: str) -> int:
        self.writes += 1
        cur = self.conn.execute(
            "INSERT INTO providers (id, name, created_at) VALUES (?, ?, ?)",
            (provider_id, name, created_at),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def sync_presence(self, occupied: set[int], at_ms: int, at_iso: str) -> int:
        """Pusher's own list of occupied provider channels, as of `at_ms`: correct the
        providers it disagrees with (a webhook lost while the daemon was down); a webhook
        newer than `at_ms` stands. Returns how many changed."""
        rows = self._all("SELECT id, watching FROM providers WHERE presence_ms <= ?", (at_ms,))
        changed = 0
        for row in rows:
            now = row["id"] in occupied
            if bool(row["watching"]) != now:
                self._send(
                    "UPDATE providers SET watching = ?, last_seen = ?, presence_ms = ? "
                    "WHERE id = ?",
                    (int(now), at_iso, at_ms, row["id"]),
                )
                changed += 1
        return changed
