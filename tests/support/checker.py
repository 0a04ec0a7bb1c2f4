"""The invariants leadrelay promises under concurrency, checked on a whole history (history.py)
and on what the database holds at the end, as Jepsen's and Elle's checkers check theirs.

    result = check(history, read_stored(db), arrivals=arrivals_of(history, subscriber))
    assert result.valid, result.report()

What is checked (CONTRACT §1, §5), and where:
- lead_checks.py: every acknowledged write is stored (an ok create's lead with its fields,
  one lead however often its key was sent; an ok change's answer is a state an event of the
  lead records; an ok erase leaves no personal field); a `fail` stored nothing; each lead's
  seq 1…last_seq once each and known to someone; the status and provider chain of its
  events (`old_status` is the status before; the lead ends where its chain does);
- known.py: an event id is handed out once;
- crm.py: a stale CRM change never wins;
- feeds.py: every cursor follower saw every event of its scope once, in cursor order, none
  skipped; a Pusher subscriber got every event, copies only around a fault.

On a failure `report()` prints each anomaly with the slice of the history around it: the
operations on its lead, the follower's reads that passed it, the faults of that moment, and
the lead's events.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from leadrelay.config import DEFAULT_STATUSES
from support.crm import check_crm
from support.feeds import Arrival, check_followers, check_pusher
from support.history import NEMESIS, OK, Event, History, Op
from support.known import Anomaly, Known, Stored, read_stored
from support.lead_checks import check_chains, check_writes
from support.subscriber import Received

__all__ = ["Result", "arrivals_of", "check", "read_stored"]

SLICE = 40  # operations printed around one anomaly at most
PER_KIND = 3  # anomalies printed in full of each kind


def arrivals_of(history: History, received: Iterable[Received]) -> list[Arrival]:
    """A subscriber's events on the history's clock."""
    arrivals = []
    for r in list(received):
        data = r.data
        if isinstance(data, dict) and "event_id" in data and "lead" in data:
            event = Event(0, data["event_id"], data["lead"]["id"], data["seq"], data["type"], data)
            arrivals.append(Arrival(r.channel, event, history.wall(r.at)))
    return arrivals


def check(
    history: History,
    stored: Stored,
    *,
    arrivals: list[Arrival] | None = None,
    channels: list[str] | None = None,
    statuses: tuple[str, ...] = DEFAULT_STATUSES,
    grace: float = 10.0,
) -> Result:
    """Every invariant on the history; `channels` are those the subscriber listened on, and a
    copy on one is allowed up to `grace` seconds after a fault ends."""
    arrivals = arrivals or []
    known = Known(history, stored, [a.event for a in arrivals])
    anomalies = list(known.anomalies)
    anomalies += check_chains(known, stored, statuses)
    anomalies += check_writes(history, known, stored)
    anomalies += check_crm(history, known, stored)
    anomalies += check_followers(history, known, stored)
    copies: dict[str, int] = {}
    if channels:
        found, copies = check_pusher(history, known, stored, arrivals, channels, grace=grace)
        anomalies += found
    counts = Counter(f"{op.f}:{op.type}" for op in history.completions())
    counts["events known"] = len(known.events)
    counts["events stored"] = len(stored.events)
    counts["leads stored"] = len(stored.leads)
    counts["faults"] = len(history.faults())
    counts.update({f"copies on {channel}": n for channel, n in copies.items()})
    return Result(history, known, anomalies, dict(sorted(counts.items())))


@dataclass
class Result:
    history: History
    known: Known
    anomalies: list[Anomaly]
    counts: dict[str, int]
    logs: dict[str, list[str]] = field(default_factory=dict)  # what the servers said

    @property
    def valid(self) -> bool:
        return not self.anomalies

    def kinds(self) -> Counter[str]:
        return Counter(a.kind for a in self.anomalies)

    def summary(self) -> str:
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(self.kinds().items())) or "none"
        shown = ", ".join(f"{k} {n}" for k, n in self.counts.items())
        return f"anomalies: {kinds}\n  counts: {shown}"

    def report(self) -> str:
        """Each kind's first anomalies, each with its slice of the history."""
        lines = [self.summary()]
        printed: Counter[str] = Counter()
        for anomaly in self.anomalies:
            printed[anomaly.kind] += 1
            if printed[anomaly.kind] <= PER_KIND:
                lines += self.explain(anomaly)
        for kind, n in printed.items():
            if n > PER_KIND:
                lines.append(f"… and {n - PER_KIND} more {kind}")
        for name, said in self.logs.items():
            lines += ["", f"== {name}'s last warnings and errors:", *(f"   {x}" for x in said)]
        return "\n".join(lines)

    def explain(self, anomaly: Anomaly) -> list[str]:
        lines = ["", f"== {anomaly.kind}: {anomaly.message}"]
        for event in anomaly.events[:10]:
            lines.append(f"   {event}")
        ops = self._slice(anomaly)
        if ops:
            lines.append("   history (index, time, process, type, f, value):")
            lines += [("-> " if op.index in anomaly.ops else "   ") + str(op) for op in ops]
        if anomaly.lead is not None:
            chain = self.known.by_lead.get(anomaly.lead, [])
            if chain:
                lines.append(f"   lead {anomaly.lead}'s events, by seq:")
                lines += [f"     {event}" for event in chain[-15:]]
        return lines

    def _slice(self, anomaly: Anomaly) -> list[Op]:
        ops = self.history.ops
        chosen = {i for i in anomaly.ops}
        if anomaly.lead is not None:
            chosen |= {op.index for op in ops if self._lead_of(op) == anomaly.lead}
        if not chosen:
            return []
        times = [ops[i].time for i in chosen]
        low, high = min(times) - 1.0, max(times) + 1.0
        chosen |= {op.index for op in ops if op.process == NEMESIS and low <= op.time <= high}
        if len(chosen) > SLICE:  # keep the anomaly's own ops and those nearest them in time
            own = set(anomaly.ops)
            near = sorted(
                chosen - own,
                key=lambda i: min(abs(ops[i].time - ops[j].time) for j in own or chosen),
            )
            chosen = own | set(near[: max(0, SLICE - len(own))])
        return [ops[i] for i in sorted(chosen)]

    def _lead_of(self, op: Op) -> Any:
        if "lead" in op.value:
            return op.value["lead"]
        if op.f == "create":
            done = op if op.type != "invoke" else self._completion(op)
            if done is not None and done.type == OK:
                return done.value["body"].get("id")
        return None

    def _completion(self, invoke: Op) -> Op | None:
        if not hasattr(self, "_completions"):
            self._completions = {
                op.invoked: op for op in self.history.ops if op.invoked is not None
            }
        return self._completions.get(invoke.index)
