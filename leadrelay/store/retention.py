"""Retention: delivered events past `events_retention_days` and expired idempotency keys go.

This is the policy, shared by both backends; each backend's walk deletes in small batches
on a connection of its own, pausing between them (sqlite/retention.py: ranges of ids under
SQLite's write lock; postgres/retention.py: row locks, several daemons at once).

The highest event id deleted is recorded in the settings row `retention`; the events API
answers a cursor below it with 410 `cursor_expired` (`check_cursor`).
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from leadrelay.config import is_postgres
from leadrelay.errors import CursorExpired
from leadrelay.store.base import RETENTION_KEY

if TYPE_CHECKING:
    from leadrelay.config import Settings
    from leadrelay.store.base import Store

BATCH = 500  # rows a transaction: a few milliseconds of holding the write lock
PAUSE_SECONDS = 0.1  # at least this between two batches


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
    if is_postgres(path):
        from leadrelay.store.postgres.retention import prune as prune_in
    else:
        from leadrelay.store.sqlite.retention import prune as prune_in
    return prune_in(
        path, policy, Pruned(), now=now, dry_run=dry_run, pause=pause, batch=batch, stop=stop
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
