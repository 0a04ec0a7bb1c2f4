"""The write side's SQL: a `Tx` is one group-commit transaction on the writer connection."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from typing import Any

import orjson

from leadrelay.events import iso_time
from leadrelay.store.base import EVENT_COLUMNS, LEAD_COLUMNS, Row, key_row
from leadrelay.store.reads import BY_EXTERNAL_ID
from leadrelay.store.rows import (
    EVENT_INSERT_COLUMNS,
    LEAD_INSERT_COLUMNS,
    event_params,
    lead_params,
)

__all__ = ["BY_EXTERNAL_ID", "EVENT_COLUMNS", "LEAD_COLUMNS", "Row", "Tx", "key_row"]


_BLANK = {"name": "''"}  # what an erased field holds in the leads row; the others NULL


def _insert(table: str, columns: str) -> str:
    return f"INSERT INTO {table} ({columns}) VALUES ({','.join('?' * (columns.count(',') + 1))})"


_INSERT_LEAD = _insert("leads", LEAD_INSERT_COLUMNS)
_INSERT_EVENT = _insert("events", EVENT_INSERT_COLUMNS)


class Tx:
    """One transaction on the writer thread.  Its methods are the write-side SQL."""

    def __init__(self, conn: sqlite3.Connection, now: float) -> None:
        self.conn = conn
        self.now = now
        self.now_iso = iso_time(now)  # the batch's time, as the contract writes times
        self.events_written = 0

    def _one(self, sql: str, params: Iterable[Any] = ()) -> Row | None:
        row = self.conn.execute(sql, tuple(params)).fetchone()
        return dict(row) if row is not None else None

    # leads -------------------------------------------------------------------
    def insert_lead(self, lead: Row, *, last_seq: int = 0) -> int:
        cur = self.conn.execute(_INSERT_LEAD, lead_params(lead, last_seq))
        assert cur.lastrowid is not None
        return cur.lastrowid

    def get_lead(self, lead_id: int) -> Row | None:
        return self._one(f"SELECT {LEAD_COLUMNS} FROM leads WHERE id = ?", (lead_id,))

    def lead_by_external_id(self, external_id: str) -> Row | None:
        return self._one(BY_EXTERNAL_ID, (external_id,))

    def update_lead(self, lead_id: int, changes: Row) -> None:
        columns = ", ".join(f"{name} = ?" for name in changes)
        self.conn.execute(f"UPDATE leads SET {columns} WHERE id = ?", (*changes.values(), lead_id))

    def next_seq(self, lead_id: int) -> int:
        row = self._one(
            "UPDATE leads SET last_seq = last_seq + 1 WHERE id = ? RETURNING last_seq", (lead_id,)
        )
        assert row is not None
        return int(row["last_seq"])

    def claim_idempotency_key(self, key: str, lead_id: int, outcome: Row | None = None) -> bool:
        """Record key → lead (and what a status change answered); False when the key was
        there first (the unique key decides)."""
        cur = self.conn.execute(
            "INSERT INTO idempotency_keys (key, lead_id, created_at, outcome) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (key) DO NOTHING",
            (key, lead_id, self.now, None if outcome is None else json.dumps(outcome)),
        )
        return cur.rowcount == 1

    def lead_for_key(self, key: str) -> int | None:
        row = self._one("SELECT lead_id FROM idempotency_keys WHERE key = ?", (key,))
        return None if row is None else int(row["lead_id"])

    def key_outcome(self, key: str) -> tuple[int, Row | None] | None:
        """The lead a key names, and the outcome stored with it."""
        row = self._one("SELECT lead_id, outcome FROM idempotency_keys WHERE key = ?", (key,))
        return None if row is None else key_row(row)

    def erase_lead(self, lead_id: int, fields: tuple[str, ...]) -> int:
        """Blank the lead's personal `fields` in its row and in every stored event payload,
        and delete its idempotency keys (a CRM may use the e-mail as its key); return how
        many events were rewritten.  The lead's name becomes "" (it is NOT NULL), the other
        fields NULL; `erased_at` keeps the first erasure's time.  The freed bytes are
        zeroed by secure_delete, on for every connection (connection.py)."""
        blanks = ", ".join(f"{name} = {_BLANK.get(name, 'NULL')}" for name in fields)
        self.conn.execute(
            f"UPDATE leads SET {blanks}, erased_at = coalesce(erased_at, ?), updated_at = ? "
            "WHERE id = ?",
            (self.now_iso, self.now_iso, lead_id),
        )
        self.conn.execute("DELETE FROM idempotency_keys WHERE lead_id = ?", (lead_id,))
        rows = self.conn.execute(
            "SELECT id, payload FROM events WHERE lead_id = ?", (lead_id,)
        ).fetchall()
        for event_row_id, payload in rows:
            data = orjson.loads(payload)
            lead = data.get("lead")
            if isinstance(lead, dict):
                for name in fields:
                    if name in lead:
                        lead[name] = "" if name == "name" else None
            self.conn.execute(
                "UPDATE events SET payload = ? WHERE id = ?",
                (orjson.dumps(data).decode(), event_row_id),
            )
        return len(rows)

    # events ------------------------------------------------------------------
    def insert_event(self, event: Row) -> None:
        self.conn.execute(_INSERT_EVENT, event_params(event, self.now))
        self.events_written += 1

    def mark_delivered(self, ids: list[int]) -> None:
        marks = ",".join("?" * len(ids))
        self.conn.execute(
            "UPDATE events SET state = 'delivered', delivered_at = ?, attempts = attempts + 1, "
            f"last_error = NULL WHERE id IN ({marks}) AND state = 'pending'",
            (self.now, *ids),
        )

    def mark_retry(self, ids: list[int], next_attempt_at: float, error: str) -> None:
        self.conn.executemany(
            "UPDATE events SET attempts = attempts + 1, next_attempt_at = ?, last_error = ? "
            "WHERE id = ? AND state = 'pending'",
            [(next_attempt_at, error, event_id) for event_id in ids],
        )

    def mark_dead(self, ids: list[int], error: str) -> None:
        self.conn.executemany(
            "UPDATE events SET state = 'dead', attempts = attempts + 1, last_error = ? "
            "WHERE id = ? AND state = 'pending'",
            [(error, event_id) for event_id in ids],
        )

    def retry_dead(self, event_id: int | None) -> int:
        sql = "UPDATE events SET state = 'pending', next_attempt_at = ? WHERE state = 'dead'"
        params: tuple[Any, ...] = (self.now,)
        if event_id is not None:
            sql += " AND id = ?"
            params += (event_id,)
        return self.conn.execute(sql, params).rowcount

    # providers, tokens, settings ---------------------------------------------
    def insert_provider(self, name: str, provider_id: int | None, created_at: str) -> int:
        cur = self.conn.execute(
            "INSERT INTO providers (id, name, created_at) VALUES (?, ?, ?)",
            (provider_id, name, created_at),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def set_presence(self, provider_id: int, watching: bool, at_ms: int, at_iso: str) -> bool:
        """Record a provider channel's occupied/vacated webhook unless a newer one was;
        False when there is no such provider or the webhook is older than the last."""
        cur = self.conn.execute(
            "UPDATE providers SET watching = ?, last_seen = ?, presence_ms = ? "
            "WHERE id = ? AND presence_ms <= ?",
            (int(watching), at_iso, at_ms, provider_id, at_ms),
        )
        return cur.rowcount > 0

    def sync_presence(self, occupied: set[int], at_ms: int, at_iso: str) -> int:
        """Pusher's own list of occupied provider channels, as of `at_ms`: correct the
        providers it disagrees with (a webhook lost while the daemon was down); a webhook
        newer than `at_ms` stands. Returns how many changed."""
        rows = self.conn.execute(
            "SELECT id, watching FROM providers WHERE presence_ms <= ?", (at_ms,)
        ).fetchall()
        changed = 0
        for provider_id, watching in rows:
            now = provider_id in occupied
            if bool(watching) != now:
                self.conn.execute(
                    "UPDATE providers SET watching = ?, last_seen = ?, presence_ms = ? "
                    "WHERE id = ?",
                    (int(now), at_iso, at_ms, provider_id),
                )
                changed += 1
        return changed

    def provider_exists(self, provider_id: int) -> bool:
        return self._one("SELECT 1 FROM providers WHERE id = ?", (provider_id,)) is not None

    def insert_token(
        self, token_hash: str, prefix: str, role: str, provider_id: int | None, created_at: str
    ) -> int:
        cur = self.conn.execute(
            "INSERT INTO tokens (token_hash, prefix, role, provider_id, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (token_hash, prefix, role, provider_id, created_at),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def revoke_token(self, prefix: str, revoked_at: str) -> int:
        return self.conn.execute(
            "UPDATE tokens SET revoked_at = ? WHERE prefix = ? AND revoked_at IS NULL",
            (revoked_at, prefix),
        ).rowcount

    def count_admin_tokens(self) -> int:
        row = self._one(
            "SELECT count(*) AS n FROM tokens WHERE role = 'admin' AND revoked_at IS NULL"
        )
        return int(row["n"]) if row else 0

    def take_lease(self, name: str, owner: str, info: Row, ttl: float) -> bool:
        """Take or renew the lease `name` for `owner` until now + `ttl`: granted when nobody
        holds it, when `owner` already does, or when the holder's lease has expired (it died
        or stalled).  The row's lock is the write transaction's; a backend with row locks
        does the same with SELECT … FOR UPDATE."""
        row = self._one("SELECT owner, expires_at FROM leases WHERE name = ?", (name,))
        if row is not None and row["owner"] != owner and row["expires_at"] > self.now:
            return False
        if row is not None and row["owner"] == owner:
            self.conn.execute(
                "UPDATE leases SET info = ?, renewed_at = ?, expires_at = ? WHERE name = ?",
                (json.dumps(info), self.now, self.now + ttl, name),
            )
            return True
        self.conn.execute(
            "INSERT INTO leases (name, owner, info, acquired_at, renewed_at, expires_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, "
            "info = excluded.info, acquired_at = excluded.acquired_at, "
            "renewed_at = excluded.renewed_at, expires_at = excluded.expires_at",
            (name, owner, json.dumps(info), self.now, self.now, self.now + ttl),
        )
        return True

    def release_lease(self, name: str, owner: str) -> bool:
        """Give the lease up at once (a clean stop), if `owner` still holds it."""
        cursor = self.conn.execute("DELETE FROM leases WHERE name = ? AND owner = ?", (name, owner))
        return cursor.rowcount > 0

    def get_setting(self, key: str) -> Any:
        row = self._one("SELECT value FROM settings WHERE key = ?", (key,))
        return None if row is None else json.loads(row["value"])

    def put_setting(self, key: str, value: Any, updated_at: str) -> None:
        self.conn.execute(
            "INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
            "updated_at = excluded.updated_at",
            (key, json.dumps(value), updated_at),
        )
