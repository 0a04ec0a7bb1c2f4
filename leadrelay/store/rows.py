"""How a new lead and a new event become the parameters of their INSERT, on either backend
(each backend's Tx writes them with its own placeholders: one row at a time on SQLite, a
batch's rows in one statement on PostgreSQL)."""

from __future__ import annotations

from typing import Any

import orjson

from leadrelay.store.base import Row

# the columns lead_params and event_params fill, in their order
LEAD_INSERT_COLUMNS = (
    "name, email, phone, status, provider_id, source, notes, external_id, created_at, "
    "updated_at, last_seq"
)
EVENT_INSERT_COLUMNS = (
    "event_id, lead_id, seq, type, channels, provider_id, payload, socket_id, "
    "next_attempt_at, created_at, channel_id"
)


def lead_params(lead: Row, last_seq: int) -> tuple[Any, ...]:
    """A new lead's row (without its id): the fields it was given, the others NULL."""
    return (
        lead["name"],
        lead.get("email"),
        lead.get("phone"),
        lead["status"],
        lead.get("provider_id"),
        lead.get("source"),
        lead.get("notes"),
        lead.get("external_id"),
        lead["created_at"],
        lead["updated_at"],
        last_seq,
    )


def event_params(event: Row, now: float) -> tuple[Any, ...]:
    """A new event's row, due at once and created `now` (the transaction's time)."""
    return (
        event["event_id"],
        event["lead_id"],
        event["seq"],
        event["type"],
        orjson.dumps(event["channels"]).decode(),
        event["provider_id"],
        event["payload"],
        event.get("socket_id"),
        now,
        now,
        event.get("channel_id"),
    )
