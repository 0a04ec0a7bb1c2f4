"""The feeds in a history: cursor followers of the events APIs and a Pusher subscriber.

A follower (`read` operations of one process, each recording `scope`, `after`, the `events`
and `next_after`; a `jump` where a 410 `cursor_expired` sent it on) must see every event of
its scope up to where it stopped, once, in cursor order, and each lead's in seq order.  A
`jump` excuses only what pruning removed.

A subscriber's arrivals (channel, the event, when) must hold every event of the channel that
was not dead-lettered; the first copy of each in per-lead seq order; further copies only
while a fault lasted or within `grace` seconds after it (at least once, and a fault is what
makes a second copy).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from support.history import OK, Event, History, Op
from support.known import Anomaly, Known, Stored

ADMIN = "admin"
PROVIDER_CHANNEL = "private-provider."


def in_scope(event: Event, scope: Any) -> bool:
    """`admin` sees every event; a provider those of its leads (the lead's provider then)."""
    return scope == ADMIN or event.provider_id == scope


@dataclass(frozen=True)
class Arrival:
    channel: str
    event: Event
    at: float  # on the history's clock


def channel_scope(channel: str) -> Any:
    if channel.startswith(PROVIDER_CHANNEL):
        return int(channel.removeprefix(PROVIDER_CHANNEL))
    return ADMIN


def check_followers(history: History, known: Known, stored: Stored) -> list[Anomaly]:
    reads: dict[str, list[Op]] = defaultdict(list)
    for op in history.completions("read", "jump"):
        reads[op.process].append(op)
    found: list[Anomaly] = []
    for process, ops in sorted(reads.items()):
        found += _follower(process, ops, known, stored)
    return found


def _follower(process: str, ops: list[Op], known: Known, stored: Stored) -> list[Anomaly]:
    found: list[Anomaly] = []
    scope = ops[0].value["scope"]
    seen: list[tuple[Event, Op]] = []
    excused: list[tuple[int, int]] = []
    cursor = 0
    for op in ops:
        if op.f == "jump":
            excused.append((op.value["after"], op.value["to"]))
            cursor = max(cursor, op.value["to"])
        elif op.type == OK:
            seen += [(event, op) for event in op.value["events"]]
            cursor = max(cursor, op.value["next_after"])

    def bad(kind: str, message: str, op_list: list[Op], *events: Event) -> None:
        ops = [op.index for op in op_list]
        lead = events[-1].lead_id
        found.append(Anomaly(kind, f"{process}: {message}", lead, ops, list(events), process))

    last: tuple[Event, Op] | None = None
    last_seq: dict[int, int] = {}
    ids: set[str] = set()
    for event, op in seen:
        if last is not None and event.id <= last[0].id:
            said = f"id {event.id} came after id {last[0].id}"
            bad("follower_order", said, [last[1], op], last[0], event)
        if event.event_id in ids:
            bad("follower_repeat", f"saw {event.event_id} twice", [op], event)
        before = last_seq.get(event.lead_id, 0)
        if event.seq <= before:
            said = f"lead {event.lead_id} seq {event.seq} after {before}"
            bad("follower_seq_order", said, [op], event)
        if not in_scope(event, scope):
            bad("follower_foreign", f"got an event of provider {event.provider_id}", [op], event)
        ids.add(event.event_id)
        last_seq[event.lead_id] = max(event.seq, before)
        last = (event, op)

    for event in sorted(known.events.values(), key=lambda e: e.id):
        if not event.id or event.id > cursor or event.event_id in ids:
            continue
        if not in_scope(event, scope):
            continue
        pruned = event.event_id not in known.stored
        if pruned and any(a < event.id <= b for a, b in excused):
            continue
        passed = [
            op
            for op in ops
            if op.f == "read"
            and op.type == OK
            and op.value["after"] < event.id <= op.value["next_after"]
        ]
        said = (
            f"never saw id {event.id} (lead {event.lead_id} seq {event.seq}); its cursor passed it"
        )
        bad("follower_missed", said, passed[:3], event)
    if not excused:  # a jump may have passed what only the subscriber saw: no id to tell
        for event in known.pusher_only:
            if in_scope(event, scope) and event.event_id not in ids:
                said = (
                    f"never saw lead {event.lead_id} seq {event.seq}, which only the subscriber got"
                )
                bad("follower_missed", said + " before it was pruned", [], event)
    return found


def check_pusher(
    history: History,
    known: Known,
    stored: Stored,
    arrivals: list[Arrival],
    channels: list[str],
    *,
    grace: float,
) -> tuple[list[Anomaly], dict[str, int]]:
    """Anomalies, and the copies counted per channel."""
    found: list[Anomaly] = []
    copies: dict[str, int] = {}
    windows = history.faults()
    for channel in channels:
        mine = [a for a in arrivals if a.channel == channel]
        anomalies, copies[channel] = _channel(channel, mine, known, stored, windows, grace)
        found += anomalies
    return found, copies


def _channel(
    channel: str,
    arrivals: list[Arrival],
    known: Known,
    stored: Stored,
    windows: list[tuple[str, float, float]],
    grace: float,
) -> tuple[list[Anomaly], int]:
    found: list[Anomaly] = []

    def bad(kind: str, message: str, event: Event) -> None:
        found.append(Anomaly(kind, f"{channel}: {message}", event.lead_id, [], [event], channel))

    first: dict[str, Arrival] = {}
    copies: list[Arrival] = []
    for arrival in arrivals:
        if arrival.event.event_id in first:
            copies.append(arrival)
        else:
            first[arrival.event.event_id] = arrival
    faults = [(name, round(start, 3), round(end, 3)) for name, start, end in windows]
    for copy in copies:
        if not any(start - 0.5 <= copy.at <= end + grace for _, start, end in windows):
            bad(
                "pusher_copy_outside_fault",
                f"a copy at {copy.at:.3f}s, outside {faults}",
                copy.event,
            )
    order: dict[int, int] = {}
    for arrival in first.values():
        event, before = arrival.event, order.get(arrival.event.lead_id, 0)
        if event.seq <= before:
            bad("pusher_order", f"lead {event.lead_id} seq {event.seq} after {before}", event)
        order[event.lead_id] = max(before, event.seq)
    scope = channel_scope(channel)
    for event in sorted(known.events.values(), key=lambda e: e.id):
        state = stored.states.get(event.event_id, "delivered")  # pruned: delivered
        if in_scope(event, scope) and event.event_id not in first and state != "dead":
            bad("pusher_missed", f"{event.event_id} never arrived ({state})", event)
    return found, len(copies)
