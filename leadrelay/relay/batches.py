"""How outbox events become Pusher batches, and how long a failed batch waits.

A batch holds at most MAX_ITEMS channel items (Pusher's limit counts channels, not events);
a key's events in it (a channel's run: its head and the events after it) stay together and
in order; a retry waits an exponential backoff with jitter.
"""

from __future__ import annotations

import json
import random
from typing import Any

from leadrelay.config import Settings
from leadrelay.events import Broadcast
from leadrelay.pusher.http import AS_SENT
from leadrelay.store.base import Row, Store

MAX_ITEMS = 10  # Pusher's batch limit counts channels, not events
BASE_BACKOFF = 0.5
DEFAULT_MODE = Broadcast()


def backoff(attempts: int, ceiling: float) -> float:
    """Exponential backoff with full jitter over the upper half: 0.5 s, 1 s, 2 s … ceiling."""
    delay = min(ceiling, BASE_BACKOFF * 2.0 ** max(0, attempts))
    return delay * random.uniform(0.5, 1.0)


async def runs_of(
    store: Store, owner: str, due: list[Row], skip: set[int], settings: Settings
) -> tuple[list[list[Row]], list[int]]:
    """The due events as runs: a channel's head and the events after it go in one batch,
    in order, so a busy channel is not held to one event a round trip (chain_runs); the
    followers not taken, to give back."""
    per_channel = min(MAX_ITEMS, settings.relay_batch_size) - 1
    heads = [row for row in due if row["lead_id"] is None]
    followers: list[Row] = []
    if heads and per_channel > 0:
        followers = await store.claim_followers(
            owner, heads, per_channel, settings.relay_claim_seconds
        )
    return chain_runs(due, followers, skip)


def chain_runs(
    due: list[Row], followers: list[Row], skip: set[int]
) -> tuple[list[list[Row]], list[int]]:
    """Each due event as a run of its own, a channel's head followed by the events after it
    as long as their seqs follow on (a gap, a dead event or one not this relay's to send,
    ends the run); the ids of the followers left out, to give back."""
    after: dict[int, list[Row]] = {}
    for row in followers:
        after.setdefault(int(row["channel_id"]), []).append(row)
    runs: list[list[Row]] = []
    left: list[int] = []
    for head in due:
        run = [head]
        rest = after.pop(int(head["channel_id"]), []) if head["lead_id"] is None else []
        rest.sort(key=lambda row: int(row["seq"]))
        for n, row in enumerate(rest):
            if row["seq"] != run[-1]["seq"] + 1 or row["id"] in skip:
                left.extend(later["id"] for later in rest[n:])
                break
            run.append(row)
        runs.append(run)
    left.extend(row["id"] for rows in after.values() for row in rows)
    return runs, left


def pack_batches(runs: list[list[Row]], max_events: int) -> list[list[Row]]:
    """Group runs (a key's events, in order) so that no batch holds more than MAX_ITEMS
    channel items or max_events events; a run is never split (chain_runs keeps it within
    both)."""
    batches: list[list[Row]] = []
    current: list[Row] = []
    items = 0
    for run in runs:
        size = sum(len(json.loads(event["channels"])) for event in run)
        if current and (items + size > MAX_ITEMS or len(current) + len(run) > max_events):
            batches.append(current)
            current, items = [], 0
        current.extend(run)
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
