"""Accepted Pusher API events into the outbox: one event a channel, all of a request in one
transaction (web/pusher_api.py answers `200 {}` once it is durable).

A trigger on several channels becomes one stored event per channel, in the order the
channels were sent, and a batch one per item: each is ordered on its own channel
(store/ordering.py's ORDER_KEY), so a channel Pusher refuses holds up only itself, no stored
event carries a list-valued ordering key, and Pusher counts a message per channel anyway.
The row keeps what the app sent: the event name as `type`, the data string untouched as
`payload` (an SDK's `private-encrypted-` ciphertext stays ciphertext), the `socket_id`; it
has no lead and no provider.  `info` is not stored: nothing could answer it later.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from leadrelay.events import uuid7
from leadrelay.pusher.api_events import PusherApiEvent
from leadrelay.store.base import Store, Tx

# an event as the daemon hands it to the lead writer: [channels, name, data, socket_id]
Wire = list[Any]


def to_wire(events: Sequence[PusherApiEvent]) -> list[Wire]:
    return [[list(e.channels), e.name, e.data, e.socket_id] for e in events]


def from_wire(wire: list[Wire]) -> list[PusherApiEvent]:
    return [PusherApiEvent(tuple(channels), name, data, sid) for channels, name, data, sid in wire]


def write_events(events: Sequence[PusherApiEvent]) -> Callable[[Tx], int]:
    """The write of one request: its events, one a channel; returns how many were stored."""
    rows = [
        {
            "type": event.name,
            "channels": [channel],
            "provider_id": None,
            "payload": event.data,
            "socket_id": event.socket_id,
        }
        for event in events
        for channel in event.channels
    ]

    def write(tx: Tx) -> int:
        for row in rows:
            tx.insert_channel_event({**row, "event_id": uuid7()})
        return len(rows)

    return write


async def store_events(store: Store, events: Sequence[PusherApiEvent]) -> int:
    """Write them on `store` (outside `serve`, whose lead writer process does it)."""
    return await store.write(write_events(events))
