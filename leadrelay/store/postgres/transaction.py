"""The write side's SQL on PostgreSQL: a `Tx` is one group-commit transaction (psycopg 3)."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable
from typing import Any

import orjson
import psycopg

from leadrelay.events import iso_time
from leadrelay.store import reads
from leadrelay.store.base import EVENT_COLUMNS, LEAD_COLUMNS, Row, key_row
from leadrelay.store.rows import (
    EVENT_INSERT_COLUMNS,
    LEAD_INSERT_COLUMNS,
    event_params,
    lead_params,
)

# the lead that owns an external_id (reads.py's, with psycopg's placeholder)
BY_EXTERNAL_ID = reads.BY_EXTERNAL_ID.replace("?", "%s")

_BLANK = {"name": "''"}  # what an erased field holds in the leads row; the others NULL


# A batch's new leads, and then its events, go in as one multi-row INSERT each, so that
# the outbox counters' statement-level triggers fire once a batch, not once a row as with
# an executemany.  Measured on batches of 64 (CPU a row, client + server): executemany
# 24 + 45 µs, INSERT ... SELECT FROM unnest(arrays) 48 + 28 µs (psycopg dumps the arrays
# element by element), this 9 + 28 µs.
_LEAD_COLUMNS = f"id, {LEAD_INSERT_COLUMNS}"  # the id reserved beforehand, then the row
_MAX_PARAMETERS = 65535  # a statement's, in PostgreSQL's protocol


_LEAD_WIDTH = _LEAD_COLUMNS.count(",") + 1
_EVENT_WIDTH = EVENT_INSERT_COLUMNS.count(",") + 1
_NEXT_LEAD_ID = "nextval(pg_get_serial_sequence('leads', 'id'))"
_RESERVE_IDS = f"SELECT {_NEXT_LEAD_ID} AS id FROM generate_series(1, %s)"


def _values(rows: int, width: int, first: int = 1) -> str:
    """`rows` rows of `width` of the server's own $n placeholders, from $first (a raw
    cursor: psycopg would otherwise parse a long statement's %s marks on every batch)."""
    return ", ".join(
        "(" + ", ".join(f"${first + row * width + n}" for n in range(width)) + ")"
        for row in range(rows)
    )


@functools.lru_cache(maxsize=64)
def _insert_sql(table: str, columns: str, rows: int) -> str:
    """INSERT of `rows` rows."""
    return f"INSERT INTO {table} ({columns}) VALUES {_values(rows, columns.count(',') + 1)}"


@functools.lru_cache(maxsize=256)
def _last_sql(leads: int, events: int, notify: str | None) -> str:
    """The batch's last statement: its buffered leads and events (data-modifying WITHs, run
    to completion whether read or not), the NOTIFY when it wrote events, and as many lead
    ids reserved for the next batch as the last parameter says."""
    inserts = []
    if leads:
        values = _values(leads, _LEAD_WIDTH)
        inserts.append(f"l AS (INSERT INTO leads ({_LEAD_COLUMNS}) VALUES {values})")
    if events:
        values = _values(events, _EVENT_WIDTH, 1 + leads * _LEAD_WIDTH)
        inserts.append(f"e AS (INSERT INTO events ({EVENT_INSERT_COLUMNS}) VALUES {values})")
    count = 1 + leads * _LEAD_WIDTH + events * _EVENT_WIDTH
    select = f"SELECT ARRAY(SELECT {_NEXT_LEAD_ID} FROM generate_series(1, ${count}::int)) AS ids"
    if notify is not None:
        select += f", pg_notify('{notify}', '') AS notified"
    return f"WITH {', '.join(inserts)} {select}" if inserts else select


def _insert_rows(conn: psycopg.Connection[Row], table: str, columns: str, rows: list[Any]) -> None:
    """`rows` (tuples of `columns`) into `table`, in as few statements as the protocol allows."""
    step = _MAX_PARAMETERS // (columns.count(",") + 1)
    cursor = psycopg.RawCursor(conn)
    for start in range(0, len(rows), step):
        chunk = rows[start : start + step]
        cursor.execute(
            _insert_sql(table, columns, len(chunk)), [value for row in chunk for value in row]
        )


class Tx:
    """One transaction on the writer's connection.  Its methods are the write-side SQL."""

    def __init__(self, conn: psycopg.Connection[Row], now: float, ids: list[int]) -> None:
        self.conn = conn  # in autocommit mode: the transaction begins at its first statement
        self.now = now
        self.now_iso = iso_time(now)
        self.events_written = 0
        self.writes = 0  # statements that changed something: a failed job after one aborts
        # set while the batch runs in pipeline mode: statements whose result nobody reads
        # go out without waiting for it, so a lead costs one round trip, not two.  Entered
        # with the transaction's first statement (open_pipeline, set by the store): a
        # batch of new leads only, which runs none before its last, needs neither
        self.pipeline: psycopg.Pipeline | None = None
        self.open_pipeline: Callable[[], psycopg.Pipeline] | None = None
        self.began = False  # BEGIN sent: the batch commits with a COMMIT of its own
        # new leads and events wait here and go in one statement each (flush): before
        # any other statement, so that every statement sees them, and before the commit
        self.reserve_hint = 1  # lead ids to reserve at once: the batch's job count
        # lead ids reserved from the identity, unused: the previous batch's reservation
        # for this one (send_last), and what this one leaves for the next
        self.ids = ids
        self._leads_inserted = 0
        self._last: psycopg.Cursor[Row] | None = None
        self._leads: list[tuple[Any, ...]] = []
        self._events: list[tuple[Any, ...]] = []

    def begin(self) -> None:
        """Before the transaction's first statement (the pipeline's, if there is one)."""
        if not self.began:
            if self.pipeline is None and self.open_pipeline is not None:
                self.pipeline = self.open_pipeline()
            self.conn.execute("BEGIN")
            self.began = True

    def commit(self) -> None:
        """COMMIT what begin began, and (in pipeline mode) sync: an earlier statement's
        error is raised here.  Sent as a statement: in autocommit mode, psycopg's commit()
        trusts a transaction status that pipeline mode reports only at a sync."""
        cur = self.conn.execute("COMMIT")
        if self.pipeline is not None:
            self.pipeline.sync()
        elif cur.statusmessage != "COMMIT":  # the server rolled back an aborted transaction
            raise psycopg.errors.InFailedSqlTransaction("the transaction was rolled back")

    def flush(self) -> None:
        """Write the buffered leads, then their events (in the transaction begun)."""
        if self._leads:
            rows, self._leads = self._leads, []
            _insert_rows(self.conn, "leads", _LEAD_COLUMNS, rows)
        if self._events:
            rows, self._events = self._events, []
            _insert_rows(self.conn, "events", EVENT_INSERT_COLUMNS, rows)

    def discard(self) -> None:
        """Drop what a failed job buffered (its savepoint undid the rest)."""
        self._leads.clear()
        self._events.clear()

    def _execute(self, sql: str, params: Iterable[Any] = ()) -> psycopg.Cursor[Row]:
        self.begin()
        self.flush()
        return self.conn.execute(sql, tuple(params))

    def _one(self, sql: str, params: Iterable[Any] = ()) -> Row | None:
        return self._execute(sql, params).fetchone()

    def _change(self, sql: str, params: Iterable[Any] = ()) -> int:
        """A write whose row count the caller reads (in pipeline mode: after a sync)."""
        self.writes += 1
        cur = self._execute(sql, params)
        if self.pipeline is not None:
            self.pipeline.sync()
        return cur.rowcount

    def _send(self, sql: str, params: Iterable[Any] = ()) -> None:
        """A write whose outcome nobody reads: in pipeline mode it does not wait."""
        self.writes += 1
        self._execute(sql, params)

    def _returning_id(self, sql: str, params: Iterable[Any]) -> int:
        self.writes += 1
        row = self._execute(sql, params).fetchone()
        assert row is not None
        return int(row["id"])

    def _follow_sequence(self, table: str) -> None:
        """After a row with an explicit id: the identity continues past the largest id."""
        self._execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
        )

    # leads -------------------------------------------------------------------
    def insert_lead(self, lead: Row, *, last_seq: int = 0) -> int:
        """Buffered (see flush) under an id reserved from the identity beforehand."""
        if not self.ids:
            # nextval is outside transactions: no BEGIN needed (in autocommit mode)
            rows = self.conn.execute(_RESERVE_IDS, (max(1, self.reserve_hint),)).fetchall()
            self.ids = [int(row["id"]) for row in rows]
        lead_id = self.ids.pop(0)
        self.writes += 1
        self._leads_inserted += 1
        self._leads.append((lead_id, *lead_params(lead, last_seq)))
        return lead_id

    def send_last(self, notify: str) -> None:
        """The batch's last statement, before its COMMIT (when it began one; otherwise the
        statement is the transaction, committed as it runs): the leads and events still
        buffered, the NOTIFY on channel `notify` when the batch wrote events, and as many
        lead ids as this batch took, reserved for the next, which then needs no round trip
        of its own for them (collect_ids).  A batch of new leads is one statement and one
        round trip."""
        leads, events = self._leads, self._events
        params = [value for row in leads for value in row]
        params += [value for row in events for value in row]
        if len(params) >= _MAX_PARAMETERS:  # more than one statement can carry
            self.begin()
            self.flush()
            leads, events, params = [], [], []
        self._leads, self._events = [], []
        want = max(0, self._leads_inserted - len(self.ids))
        if not (leads or events or want or self.events_written):
            return  # nothing left to send: a batch of reads, or of claims
        params.append(want)
        sql = _last_sql(len(leads), len(events), notify if self.events_written else None)
        self._last = psycopg.RawCursor(self.conn).execute(sql, params)

    def collect_ids(self) -> None:
        """After the COMMIT: what follows it must not fail the committed batch."""
        if self._last is not None:
            try:
                row = self._last.fetchone()
                self.ids.extend(int(n) for n in (row["ids"] if row else ()))
            except psycopg.Error:
                pass  # the next batch reserves its own
            self._last = None

    def get_lead(self, lead_id: int) -> Row | None:
        return self._one(f"SELECT {LEAD_COLUMNS} FROM leads WHERE id = %s", (lead_id,))

    def lead_by_external_id(self, external_id: str) -> Row | None:
        return self._one(BY_EXTERNAL_ID, (external_id,))

    def update_lead(self, lead_id: int, changes: Row) -> None:
        columns = ", ".join(f"{name} = %s" for name in changes)
        self._send(f"UPDATE leads SET {columns} WHERE id = %s", (*changes.values(), lead_id))

    def next_seq(self, lead_id: int) -> int:
        self.writes += 1
        row = self._one(
            "UPDATE leads SET last_seq = last_seq + 1 WHERE id = %s RETURNING last_seq",
            (lead_id,),
        )
        assert row is not None
        return int(row["last_seq"])

    def claim_idempotency_key(self, key: str, lead_id: int, outcome: Row | None = None) -> bool:
        """Record key → lead (and what a status change answered); False when the key was
        there first (the primary key decides, across daemons too: the second insert waits
        for the first's commit)."""
        return (
            self._change(
                "INSERT INTO idempotency_keys (key, lead_id, created_at, outcome) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT (key) DO NOTHING",
                (key, lead_id, self.now, None if outcome is None else json.dumps(outcome)),
            )
            == 1
        )

    def key_outcome(self, key: str) -> tuple[int, Row | None] | None:
        row = self._one("SELECT lead_id, outcome FROM idempotency_keys WHERE key = %s", (key,))
        return None if row is None else key_row(row)

    def lead_for_key(self, key: str) -> int | None:
        row = self._one("SELECT lead_id FROM idempotency_keys WHERE key = %s", (key,))
        return None if row is None else int(row["lead_id"])

    def erase_lead(self, lead_id: int, fields: tuple[str, ...]) -> int:
        """Blank the lead's personal `fields` in its row and in every stored event payload,
        and delete its idempotency keys (a CRM may use the e-mail as its key); return how
        many events were rewritten (the name becomes "", the others NULL)."""
        blanks = ", ".join(f"{name} = {_BLANK.get(name, 'NULL')}" for name in fields)
        self._change(
            f"UPDATE leads SET {blanks}, erased_at = coalesce(erased_at, %s), updated_at = %s "
            "WHERE id = %s",
            (self.now_iso, self.now_iso, lead_id),
        )
        self._change("DELETE FROM idempotency_keys WHERE lead_id = %s", (lead_id,))
        rows = self._execute(
            "SELECT id, payload FROM events WHERE lead_id = %s", (lead_id,)
        ).fetchall()
        for row in rows:
            data = orjson.loads(row["payload"])
            lead = data.get("lead")
            if isinstance(lead, dict):
                for name in fields:
                    if name in lead:
                        lead[name] = "" if name == "name" else None
            self._change(
                "UPDATE events SET payload = %s WHERE id = %s",
                (orjson.dumps(data).decode(), row["id"]),
            )
        return len(rows)

    # events ------------------------------------------------------------------
    def insert_event(self, event: Row) -> None:
        """Buffered (see flush)."""
        self.writes += 1
        self._events.append(event_params(event, self.now))
        self.events_written += 1

    def claim_due(self, owner: str, limit: int, skip: list[int], claim_seconds: float) -> list[Row]:
        """Claim for `owner` the due events no earlier event of their lead blocks (a lead's
        earlier event that is pending, claimed or not, blocks it: per-lead order across
        daemons) and no other relay holds; rows another transaction has locked are skipped,
        not waited for.  Oldest first."""
        self.writes += 1
        rows = self._execute(
            f"UPDATE events SET lease_owner = %s, lease_until = %s WHERE id IN ("
            "SELECT id FROM events e WHERE state = 'pending' AND next_attempt_at <= %s "
            "AND (lease_until IS NULL OR lease_until < %s OR lease_owner = %s) "
            "AND NOT (id = ANY(%s)) "
            "AND NOT EXISTS (SELECT 1 FROM events p WHERE p.lead_id = e.lead_id "
            "AND p.seq < e.seq AND p.state = 'pending') "
            "ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED) "
            f"RETURNING {EVENT_COLUMNS}",
            (owner, self.now + claim_seconds, self.now, self.now, owner, skip, limit),
        ).fetchall()
        return sorted(rows, key=lambda row: int(row["id"]))

    def release_claims(self, owner: str, ids: list[int] | None) -> None:
        sql = "UPDATE events SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = %s"
        params: tuple[Any, ...] = (owner,)
        if ids is not None:
            sql += " AND id = ANY(%s)"
            params += (ids,)
        self._send(sql + " AND state = 'pending'", params)

    def mark_delivered(self, ids: list[int]) -> None:
        self._send(
            "UPDATE events SET state = 'delivered', delivered_at = %s, attempts = attempts + 1, "
            "last_error = NULL, lease_owner = NULL, lease_until = NULL "
            "WHERE id = ANY(%s) AND state = 'pending'",
            (self.now, ids),
        )

    def mark_retry(self, ids: list[int], next_attempt_at: float, error: str) -> None:
        self._send(
            "UPDATE events SET attempts = attempts + 1, next_attempt_at = %s, last_error = %s, "
            "lease_owner = NULL, lease_until = NULL WHERE id = ANY(%s) AND state = 'pending'",
            (next_attempt_at, error, ids),
        )

    def mark_dead(self, ids: list[int], error: str) -> None:
        self._send(
            "UPDATE events SET state = 'dead', attempts = attempts + 1, last_error = %s, "
            "lease_owner = NULL, lease_until = NULL WHERE id = ANY(%s) AND state = 'pending'",
            (error, ids),
        )

    def retry_dead(self, event_id: int | None) -> int:
        sql = "UPDATE events SET state = 'pending', next_attempt_at = %s WHERE state = 'dead'"
        params: tuple[Any, ...] = (self.now,)
        if event_id is not None:
            sql += " AND id = %s"
            params += (event_id,)
        return self._change(sql, params)

    # providers, tokens, settings ---------------------------------------------
    def insert_provider(self, name: str, provider_id: int | None, created_at: str) -> int:
        if provider_id is None:
            return self._returning_id(
                "INSERT INTO providers (name, created_at) VALUES (%s, %s) RETURNING id",
                (name, created_at),
            )
        new_id = self._returning_id(
            "INSERT INTO providers (id, name, created_at) VALUES (%s, %s, %s) RETURNING id",
            (provider_id, name, created_at),
        )
        self._follow_sequence("providers")
        return new_id

    def set_presence(self, provider_id: int, watching: bool, at_ms: int, at_iso: str) -> bool:
        return (
            self._change(
                "UPDATE providers SET watching = %s, last_seen = %s, presence_ms = %s "
                "WHERE id = %s AND presence_ms <= %s",
                (int(watching), at_iso, at_ms, provider_id, at_ms),
            )
            > 0
        )

    def sync_presence(self, occupied: set[int], at_ms: int, at_iso: str) -> int:
        """Pusher's own list of occupied provider channels, as of `at_ms`: correct the
        providers it disagrees with; a webhook newer than `at_ms` stands."""
        return self._change(
            "UPDATE providers SET watching = CASE WHEN id = ANY(%s) THEN 1 ELSE 0 END, "
            "last_seen = %s, presence_ms = %s WHERE presence_ms <= %s "
            "AND watching != CASE WHEN id = ANY(%s) THEN 1 ELSE 0 END",
            (list(occupied), at_iso, at_ms, at_ms, list(occupied)),
        )

    def provider_exists(self, provider_id: int) -> bool:
        return self._one("SELECT 1 FROM providers WHERE id = %s", (provider_id,)) is not None

    def insert_token(
        self, token_hash: str, prefix: str, role: str, provider_id: int | None, created_at: str
    ) -> int:
        return self._returning_id(
            "INSERT INTO tokens (token_hash, prefix, role, provider_id, created_at) "
            "VALUES (%s, %s, %s, %s, %s) RETURNING id",
            (token_hash, prefix, role, provider_id, created_at),
        )

    def revoke_token(self, prefix: str, revoked_at: str) -> int:
        return self._change(
            "UPDATE tokens SET revoked_at = %s WHERE prefix = %s AND revoked_at IS NULL",
            (revoked_at, prefix),
        )

    def count_admin_tokens(self) -> int:
        row = self._one(
            "SELECT count(*) AS n FROM tokens WHERE role = 'admin' AND revoked_at IS NULL"
        )
        return int(row["n"]) if row else 0

    def take_lease(self, name: str, owner: str, info: Row, ttl: float) -> bool:
        """Take or renew the lease `name` for `owner` until now + `ttl`: granted when nobody
        holds it, when `owner` already does, or when the holder's has expired.  One
        statement: the row's lock decides between daemons asking at once."""
        row = self._one(
            "INSERT INTO leases (name, owner, info, acquired_at, renewed_at, expires_at) "
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (name) DO UPDATE SET "
            "owner = excluded.owner, info = excluded.info, "
            "acquired_at = CASE WHEN leases.owner = excluded.owner THEN leases.acquired_at "
            "ELSE excluded.acquired_at END, "
            "renewed_at = excluded.renewed_at, expires_at = excluded.expires_at "
            "WHERE leases.owner = excluded.owner OR leases.expires_at <= excluded.renewed_at "
            "RETURNING owner",
            (name, owner, json.dumps(info), self.now, self.now, self.now + ttl),
        )
        self.writes += 1
        return row is not None

    def release_lease(self, name: str, owner: str) -> bool:
        return self._change("DELETE FROM leases WHERE name = %s AND owner = %s", (name, owner)) > 0

    def get_setting(self, key: str) -> Any:
        row = self._one("SELECT value FROM settings WHERE key = %s", (key,))
        return None if row is None else json.loads(row["value"])

    def put_setting(self, key: str, value: Any, updated_at: str) -> None:
        self._send(
            "INSERT INTO settings (key, value, updated_at) VALUES (%s, %s, %s) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
            "updated_at = excluded.updated_at",
            (key, json.dumps(value), updated_at),
        )
