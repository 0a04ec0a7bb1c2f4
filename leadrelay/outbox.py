"""The outbox as an operator sees it: backlog, dead letters, retries (CLI and admin API alike)."""

from __future__ import annotations

import json
import time
from typing import Any

from leadrelay.errors import NotFound
from leadrelay.events import Broadcast, event_item, iso_time
from leadrelay.pusher import config as pusher_config
from leadrelay.store.base import OUTBOX_STATES, RELAY_STATE_KEY, Row, Store

# the lease the relay that sends holds (relay/lease.py)
RELAY_LEASE = "relay"

# a lead's events shown at most (a lead has a handful; a CRM that flips one all day, more)
TIMELINE_LIMIT = 1000

# what an operator needs to know of an event; the payload (personal data) stays out
EVENT_FIELDS = ("id", "event_id", "type", "lead_id", "seq", "provider_id", "state", "attempts")


async def status(store: Store) -> dict[str, Any]:
    """The backlog, its oldest event's age, failures, and what the relay last said of itself."""
    counts = await store.outbox_counts()
    relay = await store.get_setting(RELAY_STATE_KEY) or {}
    config = await pusher_config.load(store)
    lease = await relay_lease(store)
    oldest = counts.pop("oldest_pending")
    at = relay.get("at")
    # the events apps triggered through Pusher's HTTP API, counted apart (and in the totals)
    api = {name: counts.pop(f"api_{name}") for name in OUTBOX_STATES}
    api["total"] = api["pending"] + api["dead"] + api["delivered"]
    return {
        **counts,
        "pusher_api": api,
        "oldest_pending_age_seconds": round(time.time() - oldest, 1) if oldest else None,
        "pusher_enabled": config.enabled,
        "relay_paused_reason": relay.get("paused_reason"),
        # the daemon whose relay holds the lease: the one relaying this database
        "relay_holder": lease["holder"] if lease["held"] else None,
        "relay_lease": lease,
        "relay_reported_at": iso_time(at) if isinstance(at, int | float) else None,
    }


def event_view(row: Row) -> dict[str, Any]:
    """An outbox row as `outbox failed` and the console show it."""
    view = {name: row.get(name) for name in EVENT_FIELDS}
    view["channels"] = json.loads(row["channels"]) if row.get("channels") else []
    # a lead's event, or one an app triggered through Pusher's API (no lead: its channel)
    view["kind"] = "lead" if row.get("lead_id") is not None else "pusher_api"
    view["last_error"] = row.get("last_error")
    view["created_at"] = iso_time(row["created_at"]) if row.get("created_at") else None
    next_at = row.get("next_attempt_at")
    pending = row.get("state") == "pending"
    view["next_attempt_at"] = iso_time(next_at) if next_at and pending else None
    return view


def delivery(row: Row) -> dict[str, Any]:
    """Where one event is on its way to Pusher: delivered (and when), pending, retrying (has
    failed before: the last error, the next try) or dead (the reason)."""
    state = row["state"]
    if state == "pending" and row.get("attempts"):
        state = "retrying"
    next_at = row.get("next_attempt_at")
    return {
        "state": state,
        "delivered_at": iso_time(row["delivered_at"]) if row.get("delivered_at") else None,
        "attempts": row.get("attempts", 0),
        "last_error": row.get("last_error") if state != "delivered" else None,
        "next_attempt_at": iso_time(next_at)
        if next_at and state in ("pending", "retrying")
        else None,
    }


async def lead_timeline(store: Store, lead_id: int, mode: Broadcast) -> list[dict[str, Any]]:
    """A lead's stored events, oldest first, as the events API shows them, each with its
    `delivery` (the console's proof of delivery)."""
    rows = await store.events_after(0, provider_id=None, lead_id=lead_id, limit=TIMELINE_LIMIT)
    return [{**event_item(row, None, mode), "delivery": delivery(row)} for row in rows]


async def failed(store: Store, limit: int = 100) -> dict[str, list[dict[str, Any]]]:
    """Dead-lettered events with their reason, and pending events that have failed before."""
    return {
        "dead": [event_view(row) for row in await store.dead_events(limit)],
        "retrying": [event_view(row) for row in await store.recent_errors(limit)],
    }


async def retry(store: Store, event_id: int | None) -> int:
    """Make one dead-lettered event (or, with None, every one) pending again; how many.

    Retrying one that is not dead-lettered is a NotFound, so a caller can say so, and
    whether the event does not exist or is there in another state."""
    count = await store.write(lambda tx: tx.retry_dead(event_id))
    if count == 0 and event_id is not None:
        state = await store.event_state(event_id)
        if state is None:
            raise NotFound(
                f"there is no event {event_id} (see `leadrelay outbox failed` for the ids)",
                code="event_not_found",
            )
        raise NotFound(
            f"event {event_id} is {state}, not dead-lettered: nothing to retry",
            code="event_not_dead",
        )
    return count


def describe_lease(row: dict[str, Any] | None, now: float | None = None) -> dict[str, Any]:
    """The lease as `outbox status`, `doctor` and /readyz show it."""
    now = time.time() if now is None else now
    if row is None:
        return {"holder": None, "held": False, "host": None, "serve_pid": None}
    info = row["info"]
    held = row["expires_at"] > now
    return {
        "holder": f"serve pid {info.get('serve_pid')} on {info.get('host')}",
        "held": held,
        "host": info.get("host"),
        "serve_pid": info.get("serve_pid"),
        "relay_pid": info.get("relay_pid"),
        "since": row["acquired_at"],
        "renewed_seconds_ago": round(now - row["renewed_at"], 1),
        "expires_in_seconds": round(row["expires_at"] - now, 1),
    }


async def relay_lease(store: Store) -> dict[str, Any]:
    """Who holds the relay lease (relay/lease.py): the one daemon relaying this database."""
    if store.claims_per_event:  # PostgreSQL: no one holder; every serve relays
        return {**describe_lease(None), "claims_per_event": True}
    return describe_lease(await store.lease(RELAY_LEASE))
