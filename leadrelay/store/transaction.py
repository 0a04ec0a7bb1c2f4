"""The write side's SQL both backends share: `SharedTx`, the base of each backend's `Tx`.

A job of a group commit sees one `Tx`: one transaction on the writer's connection.  Its
statements are written once here with `?` placeholders (translated once a statement for
PostgreSQL) over four primitives each backend provides: `_one` and `_all` read, `_change`
writes and returns the row count, `_send` writes and wants no answer (PostgreSQL then does
not wait for it in pipeline mode).

Two rules every backend keeps, because the events API and the relay rely on them:

- **Locking.** A change of a lead reads it with `lead_for_update` (or
  `lead_by_external_id_for_update`): the write lock on SQLite, `SELECT … FOR UPDATE` on
  PostgreSQL, so that two daemons changing one lead at once take turns, and each change
  starts from what the other wrote (READ COMMITTED alone would let both read the same
  status, and the second write its event's `old_status` from a stale read).
- **Event ids in commit order, never handed out twice.**  New events wait in the `Tx`
  (`insert_event`) and go in at the end of the transaction (`_event_rows`), with ids taken
  from the `event_ids` counter row.  Updating that row locks it until the commit, so on
  PostgreSQL two daemons' transactions that write events take their ids in the order they
  commit: a reader that has seen id N has seen every id below it, and the events API's
  cursor never passes an event that becomes visible later.  The counter only grows, so a
  pruned id is never given again (SQLite's rowid would reuse the largest).  Nothing locks
  the counter earlier than the end of a transaction, so waiting for it never closes a
  cycle with the row locks above.
- **A channel's seq, as a lead's.**  An event an app triggered through Pusher's API
  (`insert_channel_event`) is ordered by its channel: its seq comes from the channel's
  `pusher_channels` row, locked until the commit, so that a channel's seqs follow commit
  order across daemons.  The channels are locked at the end of the transaction, just
  before the counter, all of a transaction's at once and in name order
  (`take_channel_seqs`): two transactions that share channels take them in the same order,
  and nothing is locked after them but the counter, so no wait closes a cycle.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from leadrelay.errors import ApiError
from leadrelay.events import iso_time
from leadrelay.store.base import LEAD_COLUMNS, Row, key_row
from leadrelay.store.batching import Job
from leadrelay.store.reads import BY_EXTERNAL_ID
from leadrelay.store.rows import event_params

# what an erased field holds in the leads row; the others NULL
_BLANK = {"name": "''"}
# where event_params puts the lead id, the seq, the channels, the payload, the channel id
_EVENT_LEAD, _EVENT_SEQ, _EVENT_CHANNELS, _EVENT_PAYLOAD, _EVENT_CHANNEL = 1, 2, 4, 6, 10


def scrub_payload(payload: str, fields: tuple[str, ...]) -> str:
    """An event's payload with the lead's `fields` erased ("" for the name, else null)."""
    data = orjson.loads(payload)
    lead = data.get("lead")
    if isinstance(lead, dict):
        for name in fields:
            if name in lead:
                lead[name] = "" if name == "name" else None
    return orjson.dumps(data).decode()


class SharedTx:
    """One group-commit transaction: the SQL both backends run alike."""

    # `SELECT … FOR UPDATE` where the backend locks rows ("" where the whole database is
    # the write transaction's already)
    FOR_UPDATE = ""

    def __init__(self, now: float) -> None:
        self.now = now
        self.now_iso = iso_time(now)  # the batch's time, as the contract writes times
        self.events_written = 0
        self.writes = 0  # statements that changed something (a failed job after one aborts)
        # new events, as event_params rows, until the end of the transaction
        self.events: list[tuple[Any, ...]] = []

    # running a batch's jobs ---------------------------------------------------------
    def run_jobs(
        self, jobs: list[Job], *, isolate: bool, wrap: Callable[[Exception], Exception]
    ) -> bool:
        """Run each job; a failing job's error (`wrap`ped, unless it is an ApiError) goes to
        its caller.  Without `isolate`, return False as soon as a job fails after it wrote
        something, or a statement of it failed (which aborts a PostgreSQL transaction):
        the store then undoes the batch and runs it again with `isolate`, a savepoint
        around each job, so that one job's failure undoes that job alone.  Rare: jobs
        check before they write."""
        for job in jobs:
            job.result = job.error = None
            if isolate:
                self._savepoint("SAVEPOINT job")
            writes, written, events = self.writes, self.events_written, len(self.events)
            try:
                job.result = job.fn(self)
                if isolate:
                    self.flush()  # inside the job's savepoint: its own errors are its own
                    self._savepoint("RELEASE SAVEPOINT job")
            except Exception as exc:
                if isolate:
                    self.discard(events)
                    self._savepoint("ROLLBACK TO SAVEPOINT job")
                    self._savepoint("RELEASE SAVEPOINT job")
                elif self.writes != writes or self._aborts(exc):
                    return False
                self.events_written = written
                job.error = exc if isinstance(exc, ApiError) else wrap(exc)
        return True

    def flush(self) -> None:
        """Write what the backend holds back (PostgreSQL's new leads), so that what follows
        sees it."""

    def discard(self, events: int) -> None:
        """Drop what a failed job held back: its events (those after the first `events`)."""
        del self.events[events:]

    def _aborts(self, exc: Exception) -> bool:
        """Whether a job's error left the transaction unusable (a failed statement)."""
        return False

    # the backend's primitives --------------------------------------------------
    def _savepoint(self, sql: str) -> None:
        raise NotImplementedError

    def _one(self, sql: str, params: Iterable[Any] = ()) -> Row | None:
        raise NotImplementedError

    def _all(self, sql: str, params: Iterable[Any] = ()) -> list[Row]:
        raise NotImplementedError

    def _change(self, sql: str, params: Iterable[Any] = ()) -> int:
        raise NotImplementedError

    def _send(self, sql: str, params: Iterable[Any] = ()) -> None:
        raise NotImplementedError

    # leads -------------------------------------------------------------------
    def get_lead(self, lead_id: int) -> Row | None:
        return self._one(f"SELECT {LEAD_COLUMNS} FROM leads WHERE id = ?", (lead_id,))

    def lead_for_update(self, lead_id: int) -> Row | None:
        """The lead, locked until the commit: every read-modify-write of a lead starts here."""
        return self._one(
            f"SELECT {LEAD_COLUMNS} FROM leads WHERE id = ?{self.FOR_UPDATE}", (lead_id,)
        )

    def lead_by_external_id(self, external_id: str) -> Row | None:
        return self._one(BY_EXTERNAL_ID, (external_id,))

    def lead_by_external_id_for_update(self, external_id: str) -> Row | None:
        return self._one(BY_EXTERNAL_ID + self.FOR_UPDATE, (external_id,))

    def update_lead(self, lead_id: int, changes: Row) -> None:
        columns = ", ".join(f"{name} = ?" for name in changes)
        self._send(f"UPDATE leads SET {columns} WHERE id = ?", (*changes.values(), lead_id))

    def next_seq(self, lead_id: int) -> int:
        self.writes += 1
        row = self._one(
            "UPDATE leads SET last_seq = last_seq + 1 WHERE id = ? RETURNING last_seq", (lead_id,)
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
                "VALUES (?, ?, ?, ?) ON CONFLICT (key) DO NOTHING",
                (key, lead_id, self.now, None if outcome is None else json.dumps(outcome)),
            )
            == 1
        )

    def lead_for_key(self, key: str) -> int | None:
        row = self._one("SELECT lead_id FROM idempotency_keys WHERE key = ?", (key,))
        return None if row is None else int(row["lead_id"])

    def key_outcome(self, key: str) -> tuple[int, Row | None] | None:
        """The lead a key names, and the outcome stored with it."""
        row = self._one("SELECT lead_id, outcome FROM idempotency_keys WHERE key = ?", (key,))
        return None if row is None else key_row(row)

    def erase_lead(self, lead_id: int, fields: tuple[str, ...]) -> int:
        """Blank the lead's personal `fields` in its row and in every stored event payload
        (and in those of this transaction not yet written), and delete its idempotency keys
        (a CRM may use the e-mail as its key); return how many events were rewritten.  The
        name becomes "" (it is NOT NULL), the other fields NULL; `erased_at` keeps the first
        erasure's time.  On SQLite the freed bytes are zeroed by secure_delete, on for every
        connection (sqlite/connection.py)."""
        blanks = ", ".join(f"{name} = {_BLANK.get(name, 'NULL')}" for name in fields)
        self._change(
            f"UPDATE leads SET {blanks}, erased_at = coalesce(erased_at, ?), updated_at = ? "
            "WHERE id = ?",
            (self.now_iso, self.now_iso, lead_id),
        )
        self._change("DELETE FROM idempotency_keys WHERE lead_id = ?", (lead_id,))
        rows = self._all("SELECT id, payload FROM events WHERE lead_id = ?", (lead_id,))
        for row in rows:
            self._change(
                "UPDATE events SET payload = ? WHERE id = ?",
                (scrub_payload(row["payload"], fields), row["id"]),
            )
        waiting = 0
        for n, event in enumerate(self.events):
            if event[_EVENT_LEAD] == lead_id:
                scrubbed = scrub_payload(event[_EVENT_PAYLOAD], fields)
                self.events[n] = (*event[:_EVENT_PAYLOAD], scrubbed, *event[_EVENT_PAYLOAD + 1 :])
                waiting += 1
        return len(rows) + waiting

    # events ------------------------------------------------------------------
    def insert_event(self, event: Row) -> None:
        """Kept until the end of the transaction (see the module's docstring)."""
        self.writes += 1
        self.events.append(event_params(event, self.now))
        self.events_written += 1

    def insert_channel_event(self, event: Row) -> None:
        """An event of an app's, on its one channel (`channels`), with no lead: its seq and
        channel id are taken at the end of the transaction (take_channel_seqs)."""
        self.insert_event({**event, "lead_id": None, "seq": 0, "channel_id": None})

    def take_channel_seqs(self) -> None:
        """Number the transaction's channel events: each channel's row is created or locked
        (until the commit) and its last_seq advanced by as many events, in one statement
        that takes the channels in name order (see the module's docstring)."""
        waiting = [n for n, row in enumerate(self.events) if row[_EVENT_LEAD] is None]
        if not waiting:
            return
        names = [orjson.loads(self.events[n][_EVENT_CHANNELS])[0] for n in waiting]
        counts = Counter(names)
        values = ", ".join("(?, ?)" for _ in counts)
        rows = self._all(
            "INSERT INTO pusher_channels (name, last_seq) SELECT column1, column2 FROM "
            f"(VALUES {values}) AS v WHERE true ORDER BY column1 "
            "ON CONFLICT (name) DO UPDATE SET last_seq = pusher_channels.last_seq + "
            "excluded.last_seq RETURNING id, name, last_seq",
            [value for name, count in sorted(counts.items()) for value in (name, count)],
        )
        self.writes += 1
        # each channel's first new seq, then the next, in the order the events came
        following = {
            row["name"]: [int(row["id"]), int(row["last_seq"]) - counts[row["name"]] + 1]
            for row in rows
        }
        for n, name in zip(waiting, names, strict=True):
            channel_id, seq = following[name]
            following[name][1] += 1
            row = list(self.events[n])
            row[_EVENT_SEQ], row[_EVENT_CHANNEL] = seq, channel_id
            self.events[n] = tuple(row)

    def retry_dead(self, event_id: int | None) -> int:
        sql = "UPDATE events SET state = 'pending', next_attempt_at = ? WHERE state = 'dead'"
        params: tuple[Any, ...] = (self.now,)
        if event_id is not None:
            sql += " AND id = ?"
            params += (event_id,)
        return self._change(sql, params)

    # providers, tokens, settings ---------------------------------------------
    def provider_exists(self, provider_id: int) -> bool:
        return self._one("SELECT 1 AS one FROM providers WHERE id = ?", (provider_id,)) is not None

    def set_presence(self, provider_id: int, watching: bool, at_ms: int, at_iso: str) -> bool:
        """Record a provider channel's occupied/vacated webhook unless a newer one was;
        False when there is no such provider or the webhook is older than the last."""
        return (
            self._change(
                "UPDATE providers SET watching = ?, last_seen = ?, presence_ms = ? "
                "WHERE id = ? AND presence_ms <= ?",
                (int(watching), at_iso, at_ms, provider_id, at_ms),
            )
            > 0
        )

    def insert_token(
        self, token_hash: str, prefix: str, role: str, provider_id: int | None, created_at: str
    ) -> int:
        self.writes += 1
        row = self._one(
            "INSERT INTO tokens (token_hash, prefix, role, provider_id, created_at) "
            "VALUES (?, ?, ?, ?, ?) RETURNING id",
            (token_hash, prefix, role, provider_id, created_at),
        )
        assert row is not None
        return int(row["id"])

    def revoke_token(self, prefix: str, revoked_at: str) -> int:
        return self._change(
            "UPDATE tokens SET revoked_at = ? WHERE prefix = ? AND revoked_at IS NULL",
            (revoked_at, prefix),
        )

    def count_admin_tokens(self) -> int:
        row = self._one(
            "SELECT count(*) AS n FROM tokens WHERE role = 'admin' AND revoked_at IS NULL"
        )
        return int(row["n"]) if row else 0

    def take_lease(self, name: str, owner: str, info: Row, ttl: float) -> bool:
        """Take or renew the lease `name` for `owner` until now + `ttl`: granted when nobody
        holds it, when `owner` already does, or when the holder's has expired (it died or
        stalled).  One statement: the row's lock decides between daemons asking at once."""
        self.writes += 1
        row = self._one(
            "INSERT INTO leases (name, owner, info, acquired_at, renewed_at, expires_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
            "owner = excluded.owner, info = excluded.info, "
            "acquired_at = CASE WHEN leases.owner = excluded.owner THEN leases.acquired_at "
            "ELSE excluded.acquired_at END, "
            "renewed_at = excluded.renewed_at, expires_at = excluded.expires_at "
            "WHERE leases.owner = excluded.owner OR leases.expires_at <= excluded.renewed_at "
            "RETURNING owner",
            (name, owner, json.dumps(info), self.now, self.now, self.now + ttl),
        )
        return row is not None

    def release_lease(self, name: str, owner: str) -> bool:
        """Give the lease up at once (a clean stop), if `owner` still holds it."""
        return self._change("DELETE FROM leases WHERE name = ? AND owner = ?", (name, owner)) > 0

    def get_setting(self, key: str) -> Any:
        row = self._one("SELECT value FROM settings WHERE key = ?", (key,))
        return None if row is None else json.loads(row["value"])

    def put_setting(self, key: str, value: Any, updated_at: str) -> None:
        self._send(
            "INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
            "updated_at = excluded.updated_at",
            (key, json.dumps(value), updated_at),
        )
