"""PostgreSQL's side of the write SQL: a `Tx` is one group-commit transaction (psycopg 3;
the SQL both backends share is store/transaction.py's)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any

import psycopg

from leadrelay.store.base import EVENT_COLUMNS, Row
from leadrelay.store.ordering import due_ids, due_params, followers_params, followers_sql
from leadrelay.store.rows import EVENT_INSERT_COLUMNS, LEAD_INSERT_COLUMNS, lead_params
from leadrelay.store.transaction import SharedTx

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
_NEXT_EVENT_ID = "nextval(pg_get_serial_sequence('events', 'id'))"
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


def _events_ctes(events: int, first: int = 1) -> str:
    """`events` new events from $first on, in two data-modifying WITHs: the first locks the
    `event_ids` row until the commit and, holding it, takes the events' ids from the
    identity, so that ids follow commit order across daemons (store/transaction.py)."""
    rows = ", ".join(
        f"((SELECT ids[{row + 1}] FROM c), "
        + ", ".join(f"${first + row * _EVENT_WIDTH + n}" for n in range(_EVENT_WIDTH))
        + ")"
        for row in range(events)
    )
    return (
        "c AS (UPDATE event_ids SET n = n + 1 RETURNING ARRAY(SELECT "
        f"{_NEXT_EVENT_ID} FROM generate_series(1, {events})) AS ids), "
        f"e AS (INSERT INTO events (id, {EVENT_INSERT_COLUMNS}) VALUES {rows})"
    )


@functools.lru_cache(maxsize=64)
def _insert_events_sql(events: int) -> str:
    return f"WITH {_events_ctes(events)} SELECT 1"


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
        inserts.append(_events_ctes(events, 1 + leads * _LEAD_WIDTH))
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
        sql = (
            _insert_events_sql(len(chunk))
            if table == "events"
            else _insert_sql(table, columns, len(chunk))
        )
        cursor.execute(sql, [value for row in chunk for value in row])


_FENCE = " AND lease_owner = ?"  # a relay's mark: only while the event is its claim

# REPLAN: the statements over the outbox's order (store/ordering.py) are planned at each run,
# never prepared.  psycopg prepares a statement at its fifth run, and PostgreSQL then keeps one
# generic plan for the session once that costs no more than a custom one.  Made while the
# outbox was nearly empty (a relay's first claims), that plan checked each pending event
# against every other, for each candidate: a claim over 1,500 pending events then took
# 10-27 s here, not ~30 ms, and held the rows it had locked all along (docs/faults.md, "A
# killed relay's claim").  Planning anew costs about 1 ms a claim.
#
# PINNED: and a claim is planned as the walk store/ordering.py describes (pending events in
# id order down their partial index, each checked by an index probe, stopping at the limit),
# whatever the statistics say.  PostgreSQL takes that walk only while they say that many
# events are pending, and they seldom do: most of the time almost every event is delivered,
# a backlog (an outage's, a burst's) comes faster than ANALYZE sees it, and a new table has
# none.  Planned for "few pending", a claim over 100,000 pending events read and sorted
# them all (130-150 ms a claim), and one over 2,000 checked each against every other (5 s).
# So the claim's SQL leaves the planner no join to choose (ordering.py's planner_proof:
# the order check a sub-query, the candidates an array looked up by id), and for each claim
# the transaction turns off the scans that read every pending event (sequential, bitmap)
# and JIT (which their penalised costs would switch on: 20 ms a claim), and turns them back
# after: 7-15 ms a claim over 2,000 or 100,000 pending events, with statistics or without.
_PLAN_SETTINGS = "name IN ('enable_seqscan', 'enable_bitmapscan', 'jit')"
_PIN = f"SELECT set_config(name, 'off', true) FROM pg_settings WHERE {_PLAN_SETTINGS}"
_UNPIN = f"SELECT set_config(name, reset_val, true) FROM pg_settings WHERE {_PLAN_SETTINGS}"


def _owner(owner: str | None) -> tuple[str, ...]:
    return () if owner is None else (owner,)


@functools.lru_cache(maxsize=512)
def _placeholders(sql: str) -> str:
    """The shared SQL's `?` placeholders as psycopg's `%s`."""
    return sql.replace("%", "%%").replace("?", "%s")


class Tx(SharedTx):
    """One transaction on the writer's connection, its statements sent as the jobs run, in
    pipeline mode where nobody waits for their answers."""

    FOR_UPDATE = " FOR UPDATE"

    def __init__(self, conn: psycopg.Connection[Row], now: float, ids: list[int]) -> None:
        super().__init__(now)
        self.conn = conn  # in autocommit mode: the transaction begins at its first statement
        # set while the batch runs in pipeline mode: statements whose result nobody reads
        # go out without waiting for it, so a lead costs one round trip, not two.  Entered
        # with the transaction's first statement (open_pipeline, set by the store): a
        # batch of new leads only, which runs none before its last, needs neither
        self.pipeline: psycopg.Pipeline | None = None
        self.open_pipeline: Callable[[], psycopg.Pipeline] | None = None
        self.began = False  # BEGIN sent: the batch commits with a COMMIT of its own
        # the COMMIT (or the autocommit last statement, which is one) was handed to the
        # connection: lost on the wire from here on, the batch may or may not be stored
        self.committing = False
        # new leads and events wait here and go in one statement each (flush): before
        # any other statement, so that every statement sees them, and before the commit
        self.reserve_hint = 1  # lead ids to reserve at once: the batch's job count
        # lead ids reserved from the identity, unused: the previous batch's reservation
        # for this one (send_last), and what this one leaves for the next
        self.ids = ids
        self._leads_inserted = 0
        self._last: psycopg.Cursor[Row] | None = None
        self._leads: list[tuple[Any, ...]] = []

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
        self.committing = True
        cur = self.conn.execute("COMMIT")
        if self.pipeline is not None:
            self.pipeline.sync()
        elif cur.statusmessage != "COMMIT":  # the server rolled back an aborted transaction
            raise psycopg.errors.InFailedSqlTransaction("the transaction was rolled back")

    def flush(self) -> None:
        """Write the buffered leads (in the transaction begun), so that the next statement
        sees them.  Events wait for the last statement (send_last)."""
        if self._leads:
            rows, self._leads = self._leads, []
            _insert_rows(self.conn, "leads", _LEAD_COLUMNS, rows)

    def discard(self, events: int) -> None:
        """Drop what a failed job buffered (its savepoint undid the rest): its leads (a job
        in a savepoint flushes the leads it buffers), and its events."""
        self._leads.clear()
        del self.events[events:]

    def _aborts(self, exc: Exception) -> bool:
        return isinstance(exc, psycopg.Error)

    def _savepoint(self, sql: str) -> None:
        self.conn.execute(sql)

    def _execute(self, sql: str, params: Iterable[Any] = ()) -> psycopg.Cursor[Row]:
        self.begin()
        self.flush()
        return self.conn.execute(_placeholders(sql), tuple(params))

    def _claim(self, sql: str, params: Iterable[Any]) -> list[Row]:
        """A claim: a statement over the outbox's order, planned at its run (REPLAN) for the
        walk it was written for (PINNED)."""
        self.writes += 1
        self.begin()
        self.flush()
        self.conn.execute(_PIN)
        rows = self.conn.execute(_placeholders(sql), tuple(params), prepare=False).fetchall()
        self.conn.execute(_UNPIN)
        return rows

    def _one(self, sql: str, params: Iterable[Any] = ()) -> Row | None:
        return self._execute(sql, params).fetchone()

    def _all(self, sql: str, params: Iterable[Any] = ()) -> list[Row]:
        return self._execute(sql, params).fetchall()

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

    def provider_exists(self, provider_id: int) -> bool:
        """Read without writing the buffered leads first (whether a provider exists does not
        depend on them): otherwise each lead with a provider became an INSERT of its own,
        and the statement-level triggers (outbox and stats counters) fired for each, which
        cost a third of such a lead's CPU (scripts/counters_cost.py)."""
        self.begin()
        sql = _placeholders("SELECT 1 AS one FROM providers WHERE id = ?")
        return self.conn.execute(sql, (provider_id,)).fetchone() is not None

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
        self.take_channel_seqs()  # a round trip of its own, only when there are some
        leads, events = self._leads, self.events
        params = [value for row in leads for value in row]
        params += [value for row in events for value in row]
        if len(params) >= _MAX_PARAMETERS:  # more than one statement can carry
            self.begin()
            self.flush()
            _insert_rows(self.conn, "events", EVENT_INSERT_COLUMNS, events)
            leads, events, params = [], [], []
        self._leads, self.events = [], []
        want = max(0, self._leads_inserted - len(self.ids))
        if not (leads or events or want or self.events_written):
            return  # nothing left to send: a batch of reads, or of claims
        params.append(want)
        sql = _last_sql(len(leads), len(events), notify if self.events_written else None)
        self.committing = not self.began  # in autocommit mode the statement is the commit
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

    # events ------------------------------------------------------------------
    def claim_due(self, owner: str, limit: int, skip: list[int], claim_seconds: float) -> list[Row]:
        """Claim for `owner` the due events no earlier event of their key holds back (an
        earlier pending event of its lead or channel, claimed or not: per-key order across
        daemons: store/ordering.py) and no other relay holds; rows another transaction has
        locked are skipped, not waited for.  Oldest first."""
        # the outer query locks each row and re-checks this on its newest version (READ
        # COMMITTED): state must be in it, or an event another relay marked delivered since
        # the inner query ran (its claim cleared) reads as free and is claimed and sent again
        where = (
            "state = 'pending' AND next_attempt_at <= ? AND (lease_until IS NULL "
            "OR lease_until < ? OR lease_owner = ?) AND NOT (id = ANY(?))"
        )
        rows = self._claim(
            "UPDATE events SET lease_owner = ?, lease_until = ? "
            f"WHERE id IN ({due_ids(where, planner_proof=True)} FOR UPDATE SKIP LOCKED) "
            f"RETURNING {EVENT_COLUMNS}",
            (
                owner,
                self.now + claim_seconds,
                *due_params((self.now, self.now, owner, skip), limit),
            ),
        )
        return sorted(rows, key=lambda row: int(row["id"]))

    def claim_followers(
        self, owner: str, heads: list[Row], per_channel: int, claim_seconds: float
    ) -> list[Row]:
        """Claim for `owner` the pending events after these channel heads, which `owner`
        holds: no other relay claims them while their head is pending, so they are
        claimed only to fence a late mark, as a head is."""
        rows = self._claim(
            "UPDATE events SET lease_owner = ?, lease_until = ? "
            f"WHERE id IN ({followers_sql(len(heads))}) AND state = 'pending' "
            "AND (lease_until IS NULL OR lease_until < ? OR lease_owner = ?) "
            f"RETURNING {EVENT_COLUMNS}",
            (
                owner,
                self.now + claim_seconds,
                *followers_params(heads, per_channel),
                self.now,
                owner,
            ),
        )
        return sorted(rows, key=lambda row: (int(row["channel_id"]), int(row["seq"])))

    def release_claims(self, owner: str, ids: list[int] | None) -> None:
        sql = "UPDATE events SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = ?"
        params: tuple[Any, ...] = (owner,)
        if ids is not None:
            sql += " AND id = ANY(?)"
            params += (ids,)
        self._send(sql + " AND state = 'pending'", params)

    def renew_claims(self, owner: str, ids: list[int], claim_seconds: float) -> list[int]:
        """Extend `owner`'s claims on `ids` for another send; the ids still its own."""
        self.writes += 1
        rows = self._all(
            "UPDATE events SET lease_until = ? WHERE id = ANY(?) AND lease_owner = ? "
            "AND state = 'pending' RETURNING id",
            (self.now + claim_seconds, ids, owner),
        )
        return [int(row["id"]) for row in rows]

    # A relay's marks are fenced by its claim: once another relay claimed an event (this
    # one's claim ran out: a stall, a send slower than relay_claim_seconds), the late
    # relay's mark changes nothing, and the event's fate is the new claimant's.
    def mark_delivered(self, ids: list[int], owner: str | None = None) -> None:
        self._send(
            "UPDATE events SET state = 'delivered', delivered_at = ?, attempts = attempts + 1, "
            "last_error = NULL, lease_owner = NULL, lease_until = NULL "
            f"WHERE id = ANY(?) AND state = 'pending'{_FENCE if owner else ''}",
            (self.now, ids, *_owner(owner)),
        )

    def mark_retry(
        self, ids: list[int], next_attempt_at: float, error: str, owner: str | None = None
    ) -> None:
        self._send(
            "UPDATE events SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?, "
            "lease_owner = NULL, lease_until = NULL "
            f"WHERE id = ANY(?) AND state = 'pending'{_FENCE if owner else ''}",
            (next_attempt_at, error, ids, *_owner(owner)),
        )

    def mark_dead(self, ids: list[int], error: str, owner: str | None = None) -> None:
        self._send(
            "UPDATE events SET state = 'dead', attempts = attempts + 1, last_error = ?, "
            "lease_owner = NULL, lease_until = NULL "
            f"WHERE id = ANY(?) AND state = 'pending'{_FENCE if owner else ''}",
            (error, ids, *_owner(owner)),
        )

    # providers, tokens, settings ---------------------------------------------
    def insert_provider(self, name: str, provider_id: int | None, created_at: str) -> int:
        if provider_id is None:
            return self._returning_id(
                "INSERT INTO providers (name, created_at) VALUES (?, ?) RETURNING id",
                (name, created_at),
            )
        new_id = self._returning_id(
            "INSERT INTO providers (id, name, created_at) VALUES (?, ?, ?) RETURNING id",
            (provider_id, name, created_at),
        )
        self._follow_sequence("providers")
        return new_id

    def sync_presence(self, occupied: set[int], at_ms: int, at_iso: str) -> int:
        """Pusher's own list of occupied provider channels, as of `at_ms`: correct the
        providers it disagrees with; a webhook newer than `at_ms` stands."""
        return self._change(
            "UPDATE providers SET watching = CASE WHEN id = ANY(?) THEN 1 ELSE 0 END, "
            "last_seen = ?, presence_ms = ? WHERE presence_ms <= ? "
            "AND watching != CASE WHEN id = ANY(?) THEN 1 ELSE 0 END",
            (list(occupied), at_iso, at_ms, at_ms, list(occupied)),
        )
