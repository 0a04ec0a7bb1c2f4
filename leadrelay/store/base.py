"""What the use cases, the relay and the web see of a store, whichever backend runs it.

`Store` is an open database (SQLite in sqlite/, PostgreSQL in postgres/); `Tx` is what a
write job sees inside one group-commit transaction.  Both are Protocols: the backends are
plain classes that happen to fit them, and every call site types against these.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any, Protocol, TypeVar

Row = dict[str, Any]
T = TypeVar("T")

# Row ids are 64-bit signed integers on both backends; the API refuses larger.
MAX_ID = 2**63 - 1
# The settings row in which the running relay records its state (read by doctor, /readyz
# and `outbox status`).
RELAY_STATE_KEY = "relay_state"
# The settings row holding the random id the relay's wake socket is named after (relay/wake.py;
# made by a migration).
WAKE_ID_KEY = "wake_id"
# The settings row where pruning records how far it has deleted (the events API's 410).
RETENTION_KEY = "retention"

# The outbox's counters (outbox_counts, kept by triggers): events by state, and "retrying"
# (pending, failed at least once); then the same over the events apps triggered through
# Pusher's HTTP API alone (api_*)
OUTBOX_STATES = ("pending", "delivered", "dead", "retrying")
OUTBOX_COUNTERS = OUTBOX_STATES + tuple(f"api_{name}" for name in OUTBOX_STATES)

LEAD_COLUMNS = (
    "id, name, email, phone, status, provider_id, source, notes, external_id, "
    "created_at, updated_at, last_seq, erased_at, crm_changed_at"
)


def key_row(row: Row) -> tuple[int, Row | None]:
    """An idempotency key's row as (lead id, the outcome stored with it)."""
    outcome = row["outcome"]
    return int(row["lead_id"]), None if outcome is None else json.loads(outcome)


EVENT_COLUMNS = (
    "id, event_id, lead_id, seq, type, channels, provider_id, payload, socket_id, state, "
    "attempts, next_attempt_at, last_error, created_at, delivered_at, channel_id"
)


class Fetch:
    """The two raw reads the shared reads (reads.py and its mixins) are written against; a
    backend's Store provides them (`?` marks a parameter on every backend)."""

    async def fetch_one(self, sql: str, params: Iterable[Any] = ()) -> Row | None:
        raise NotImplementedError

    async def fetch_all(self, sql: str, params: Iterable[Any] = ()) -> list[Row]:
        raise NotImplementedError


class Tx(Protocol):
    """One transaction of a group commit.  Its methods are the write side's SQL."""

    now: float
    now_iso: str
    events_written: int

    # leads
    def insert_lead(self, lead: Row, *, last_seq: int = 0) -> int: ...
    def get_lead(self, lead_id: int) -> Row | None: ...
    def lead_for_update(self, lead_id: int) -> Row | None:
        """The lead, locked until the commit (FOR UPDATE on PostgreSQL; SQLite's write
        transaction locks everything): every read-modify-write of a lead starts here."""
        ...

    def lead_by_external_id(self, external_id: str) -> Row | None: ...
    def lead_by_external_id_for_update(self, external_id: str) -> Row | None: ...
    def update_lead(self, lead_id: int, changes: Row) -> None: ...
    def next_seq(self, lead_id: int) -> int: ...
    def claim_idempotency_key(self, key: str, lead_id: int, outcome: Row | None = None) -> bool: ...
    def lead_for_key(self, key: str) -> int | None: ...
    def key_outcome(self, key: str) -> tuple[int, Row | None] | None: ...
    def erase_lead(self, lead_id: int, fields: tuple[str, ...]) -> int: ...

    # events
    def insert_event(self, event: Row) -> None: ...
    def insert_channel_event(self, event: Row) -> None:
        """An app's Pusher API event on its one channel (no lead): numbered in its channel's
        order at the end of the transaction (store/transaction.py)."""
        ...

    # a relay passes its name as `owner`: with claims per event, the mark changes only the
    # events still claimed by it (another relay's claim fences a late one out)
    def mark_delivered(self, ids: list[int], owner: str | None = None) -> None: ...
    def mark_retry(
        self, ids: list[int], next_attempt_at: float, error: str, owner: str | None = None
    ) -> None: ...
    def mark_dead(self, ids: list[int], error: str, owner: str | None = None) -> None: ...
    def renew_claims(self, owner: str, ids: list[int], claim_seconds: float) -> list[int]:
        """Extend `owner`'s claims on `ids` (claims per event); the ids still its own."""
        ...

    def retry_dead(self, event_id: int | None) -> int: ...

    # providers, tokens, settings
    def insert_provider(self, name: str, provider_id: int | None, created_at: str) -> int: ...
    def provider_exists(self, provider_id: int) -> bool: ...
    def set_presence(self, provider_id: int, watching: bool, at_ms: int, at_iso: str) -> bool: ...
    def sync_presence(self, occupied: set[int], at_ms: int, at_iso: str) -> int: ...
    def insert_token(
        self, token_hash: str, prefix: str, role: str, provider_id: int | None, created_at: str
    ) -> int: ...
    def revoke_token(self, prefix: str, revoked_at: str) -> int: ...
    def count_admin_tokens(self) -> int: ...
    def take_lease(self, name: str, owner: str, info: Row, ttl: float) -> bool: ...
    def release_lease(self, name: str, owner: str) -> bool: ...
    def get_setting(self, key: str) -> Any: ...
    def put_setting(self, key: str, value: Any, updated_at: str) -> None: ...


class Store(Protocol):
    """An open database: group-committed writes, and the reads everyone needs."""

    # called with the number of events each commit wrote (wakes the relay)
    commit_listeners: list[Callable[[int], None]]
    # how relays share the outbox: True, every relay claims the events it sends in the
    # database (a lease per event, claim_due); False, one relay at a time holds the relay
    # lease and claims live in its memory (claim_due only reads)
    claims_per_event: bool
    transactions: int  # group commits so far
    backend: str  # "sqlite" or "postgresql"
    # where an erased lead's old values may still be when scrub_freed answered False, in
    # words for the operator (erasure's log line, `leads erase`)
    left_behind: str

    async def close(self) -> None: ...

    async def write(self, fn: Callable[[Tx], T]) -> T:
        """Run `fn` in the next group commit; return once its transaction is durable."""
        ...

    def submit(
        self, fn: Callable[[Tx], T], done: Callable[[T | None, BaseException | None], None]
    ) -> None:
        """`write` for a caller that is not a coroutine."""
        ...

    # raw reads (tests and diagnostics); `?` marks a parameter on every backend
    async def fetch_one(self, sql: str, params: Iterable[Any] = ()) -> Row | None: ...
    async def fetch_all(self, sql: str, params: Iterable[Any] = ()) -> list[Row]: ...

    async def get_lead(self, lead_id: int) -> Row | None: ...
    async def lead_by_external_id(self, external_id: str) -> Row | None: ...
    async def list_leads(
        self,
        *,
        status: str | None,
        provider_id: int | None,
        after: int,
        limit: int,
        external_id: str | None = None,
        newest_first: bool = False,
    ) -> list[Row]: ...
    async def search_leads(
        self,
        terms: list[str],
        *,
        equal: dict[str, Any],
        after: int,
        limit: int,
        newest_first: bool,
    ) -> tuple[list[Row], bool]: ...
    async def lead_counts(self, provider_id: int | None = None) -> list[Row]: ...
    async def oldest_unassigned(self, statuses: Iterable[str]) -> Row | None: ...
    async def lead_hours(self, since_hour: str, provider_id: int | None = None) -> list[Row]: ...
    async def contact_times(self, since_day: str, provider_id: int | None = None) -> list[Row]: ...
    async def list_providers(self) -> list[Row]: ...
    async def count_watching(self) -> int: ...
    async def principal_for(self, token_hash: str) -> Row | None: ...
    async def list_tokens(self) -> list[Row]: ...
    async def lead_for_key(self, key: str) -> int | None: ...
    async def key_outcome(self, key: str) -> tuple[int, Row | None] | None: ...
    async def external_id_duplicates(self, limit: int) -> list[Row]: ...
    async def get_setting(self, key: str) -> Any: ...
    async def setting_version(self, key: str) -> str | None: ...
    async def event_row_id(self, event_id: str) -> int | None: ...
    async def events_after(
        self, after: int, *, provider_id: int | None, lead_id: int | None, limit: int
    ) -> list[Row]: ...
    async def channel_events_after(
        self, after: int, channels: list[str], limit: int
    ) -> list[Row]: ...
    async def event_state(self, event_id: int) -> str | None: ...
    async def events_since_time(self, since: float) -> int: ...
    async def due_events(self, now: float, limit: int, skip: Iterable[int] = ()) -> list[Row]: ...
    async def claim_due(
        self, owner: str, now: float, limit: int, skip: Iterable[int], claim_seconds: float
    ) -> list[Row]:
        """Due events, oldest first, that no earlier event of their lead blocks (pending or
        claimed), less `skip`; with claims_per_event they are claimed for `owner` until
        now + claim_seconds, and no other relay is given them meanwhile."""
        ...

    async def release_claims(self, owner: str, ids: Iterable[int] | None = None) -> None:
        """Give back claims not sent (all of `owner`'s when ids is None)."""
        ...

    async def claim_followers(
        self, owner: str, heads: list[Row], per_channel: int, claim_seconds: float
    ) -> list[Row]:
        """The pending events after each of these channel heads (claimed by `owner`), at
        most `per_channel` a channel, oldest first (store/ordering.py)."""
        ...

    async def follow_commits(self, on_commit: Callable[[], None]) -> None:
        """Call `on_commit` when another process commits events, until cancelled (a backend
        without such notifications returns at once: the wake socket and polling serve)."""
        ...

    async def next_due_time(self) -> float | None: ...
    async def pending_count(self) -> int: ...
    async def lease(self, name: str) -> Row | None:
        """Who holds the lease `name` (see Tx.take_lease), expired or not."""
        ...

    async def outbox_counts(self) -> Row: ...
    async def counted_outbox(self) -> Row:
        """The same counts by scanning the events (doctor checks outbox_counts by it)."""
        ...

    async def dead_events(self, limit: int) -> list[Row]: ...
    async def recent_errors(self, limit: int) -> list[Row]: ...
    async def ledger_problems(self) -> list[Row]: ...
    async def integrity_problem(self) -> str | None:
        """None when the database checks out, else what is wrong, in words."""
        ...

    async def check_writable(self) -> None: ...

    async def scrub_freed(self) -> bool:
        """Make what transactions overwrote leave the database's files (erasure): True when
        the old values are gone from them (SQLite, once its WAL is emptied); False when they
        may remain (`left_behind` says where; always so on PostgreSQL)."""
        ...
