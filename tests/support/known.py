"""What a checked run knows: every event anyone saw or the database holds, what the database
holds at the end, and the shape of an anomaly (checker.py runs the checks)."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from leadrelay.store.base import LEAD_COLUMNS
from support.database import rows
from support.history import Event, History, Op

STATUS_UPDATED, ASSIGNED = "lead.status.updated", "lead.assigned"
PERSONAL = ("email", "phone", "source")


@dataclass
class Anomaly:
    kind: str
    message: str
    lead: int | None = None
    ops: list[int] = field(default_factory=list)  # history indexes it is about
    events: list[Event] = field(default_factory=list)
    process: str | None = None  # a follower's or the subscriber's name


@dataclass
class Stored:
    """What the database holds at the end, read as another process would."""

    leads: dict[int, dict[str, Any]]
    events: list[Event]  # ids ascending
    states: dict[str, str]  # event_id -> pending | delivered | dead


def read_stored(db: Any) -> Stored:
    leads = {int(r["id"]): r for r in rows(db, f"SELECT {LEAD_COLUMNS} FROM leads")}
    events, states = [], {}
    for r in rows(db, "SELECT id, event_id, lead_id, seq, type, payload, state FROM events"):
        events.append(
            Event(
                r["id"], r["event_id"], r["lead_id"], r["seq"], r["type"], json.loads(r["payload"])
            )
        )
        states[r["event_id"]] = r["state"]
    events.sort(key=lambda e: e.id)
    return Stored(leads, events, states)


def state_of(lead: dict[str, Any]) -> tuple[Any, Any, Any]:
    """What an answer or a snapshot says the lead was: (status, provider_id, updated_at)."""
    return (lead.get("status"), lead.get("provider_id"), lead.get("updated_at"))


class Known:
    """Every event anyone saw or the database holds, by event_id, and what is odd about them."""

    def __init__(self, history: History, stored: Stored, arrivals: list[Event]) -> None:
        self.anomalies: list[Anomaly] = []
        self.events: dict[str, Event] = {}
        self.stored = {e.event_id for e in stored.events}
        by_id: dict[int, set[str]] = defaultdict(set)
        for event in stored.events:
            self._add(event, by_id)
        for op in history.completions("read"):
            for event in op.value.get("events", ()):
                self._add(event, by_id, op)
        self.pusher_only: list[Event] = []
        for event in arrivals:
            if event.event_id not in self.events:
                self.events[event.event_id] = event
                self.pusher_only.append(event)
        for row_id, event_ids in sorted(by_id.items()):
            if len(event_ids) > 1:
                same = [self.events[e] for e in event_ids]
                message = f"event id {row_id} was handed out {len(same)} times"
                self.anomalies.append(Anomaly("id_reused", message, same[0].lead_id, events=same))
        self.by_lead: dict[int, list[Event]] = defaultdict(list)
        for event in self.events.values():
            self.by_lead[event.lead_id].append(event)
        for chain in self.by_lead.values():
            chain.sort(key=lambda e: e.seq)

    def _add(self, event: Event, by_id: dict[int, set[str]], op: Op | None = None) -> None:
        earlier = self.events.get(event.event_id)
        if earlier is None:
            self.events[event.event_id] = event
            by_id[event.id].add(event.event_id)
        elif _identity(earlier) != _identity(event):
            message = f"{event.event_id} seen as two events"
            ops = [op.index] if op else []
            self.anomalies.append(
                Anomaly("event_changed", message, event.lead_id, ops, [earlier, event])
            )

    def states(self, lead_id: int) -> set[tuple[Any, Any, Any]]:
        return {state_of(e.lead) for e in self.by_lead.get(lead_id, [])}


def _identity(event: Event) -> tuple[int, int, int, str]:
    return (event.id, event.lead_id, event.seq, event.type)
