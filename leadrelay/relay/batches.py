"""How outbox events become Pusher batches, and how long a failed batch waits.

A batch holds at most MAX_ITEMS channel items (Pusher's limit counts channels, not events),
one lead's events stay in one batch in order, and a retry waits an exponential backoff with
jitter.
"""

from __future__ import annotations

import json
import random
from typing import Any

from leadrelay.events import Broadcast
from leadrelay.pusher.http import AS_SENT
from leadrelay.store.base import Row

MAX_ITEMS = 10  # Pusher's batch limit counts channels, not events
BASE_BACKOFF = 0.5
DEFAULT_MODE = Broadcast()


def backoff(attempts: int, ceiling: float) -> float:
    """Exponential backoff with full jitter over the upper half: 0.5 s, 1 s, 2 s … ceiling."""
    delay = min(ceiling, BASE_BACKOFF * 2.0 ** max(0, attempts))
    return delay * random.uniform(0.5, 1.0)


def pack_batches(events: list[Row], max_events: int) -> list[list[Row]]:
    """Group events so no batch holds more than MAX_ITEMS channel items or max_events events."""
    batches: list[list[Row]] = []
    current: list[Row] = []
    items = 0
    for event in events:
        size = len(json.loads(event["channels"]))
        if current and (items + size > MAX_ITEMS or len(current) >= max_events):
            batches.append(current)
            current, items = [], 0
        current.append(event)
        items += size
    if current:
        batches.append(current)
    return batches


def events_text(count: int) -> str:
    return f"{count} event" if count == 1 else f"{count} events"


def batch_items(events: list[Row], mode: Broadcast = DEFAULT_MODE) -> list[dict[str, Any]]:
    """One item per channel, each event's in order, on the channels of `mode` and with the
    data it sends (so one lead's events still go in one batch, in order, encrypted or not).

    An app's Pusher API event (no lead) goes as it came: its channel, name, data string and
    socket_id untouched, whatever the mode, and marked AS_SENT so that the client does not
    seal it (an SDK already sealed a private-encrypted- one with the app's own key)."""
    items = []
    for event in events:
        if event["lead_id"] is None:
            item = {"channel": json.loads(event["channels"])[0], "name": event["type"]}
            item.update(data=event["payload"], **{AS_SENT: True})
            if event["socket_id"]:
                item["socket_id"] = event["socket_id"]
            items.append(item)
            continue
        data = mode.payload(event["payload"])
        for channel in mode.channels(json.loads(event["channels"])):
            item = {"channel": channel, "name": event["type"], "data": data}
            if event["socket_id"]:
                item["socket_id"] = event["socket_id"]
            items.append(item)
    return items
