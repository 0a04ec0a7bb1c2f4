"""The CRM's status webhooks in a history: a stale change (an older `changed_at` than one the
lead already took) never wins (crm_status.py; CONTRACT §4).

Per lead, over the `crm` operations (each records `lead`, `status` and `changed_at` in
microseconds, as the lead's `crm_changed_at` mark stores it):
- the mark ends at least at the newest change answered as taken (applied or unchanged), and
  at a time some change carried;
- the CRM's events, in seq order, carry non-decreasing `changed_at`;
- a change answered as taken after another with a newer `changed_at` was answered as taken
  is a stale change that won;
- when the lead's last status event is the CRM's, no newer change answered as taken asked
  for another status.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from support.history import INFO, OK, Event, History, Op
from support.known import STATUS_UPDATED, Anomaly, Known, Stored


def taken(op: Op) -> bool:
    """Answered as taken: it moved the lead's mark (applied, or the status was already so)."""
    return op.type == OK and op.value["body"]["reason"] != "stale"


def applied(op: Op) -> bool:
    return op.type == OK and bool(op.value["body"]["applied"])


def matched(ops: list[Op], chain: list[Event]) -> list[tuple[Event, Op]]:
    """The CRM's events of one lead paired with the applied changes that wrote them, in seq
    order: by status and the answer's time.  Changes written in one batch share its time, so
    a (status, time) that more than one change or event has pairs nothing rather than guess."""
    ops_by: dict[tuple[Any, Any], list[Op]] = defaultdict(list)
    for op in ops:
        if applied(op):
            ops_by[(op.value["status"], op.value["body"]["lead"].get("updated_at"))].append(op)
    events_by: dict[tuple[Any, Any], list[Event]] = defaultdict(list)
    for event in chain:
        if event.type == STATUS_UPDATED and event.data.get("changed_by", {}).get("role") == "crm":
            events_by[(event.data.get("new_status"), event.lead.get("updated_at"))].append(event)
    pairs = [
        (events_by[key][0], found[0])
        for key, found in ops_by.items()
        if len(found) == 1 and len(events_by.get(key, [])) == 1
    ]
    return sorted(pairs, key=lambda pair: pair[0].seq)


def check_crm(history: History, known: Known, stored: Stored) -> list[Anomaly]:
    by_lead: dict[int, list[Op]] = defaultdict(list)
    for op in history.completions("crm"):
        by_lead[op.value["lead"]].append(op)
    found: list[Anomaly] = []
    for lead_id, ops in sorted(by_lead.items()):
        lead = stored.leads.get(lead_id)
        if lead is not None:
            found += _lead(lead_id, lead, ops, history, known)
    return found


def _lead(
    lead_id: int, lead: dict[str, Any], ops: list[Op], history: History, known: Known
) -> list[Anomaly]:
    found: list[Anomaly] = []

    def bad(kind: str, message: str, ops: list[Op], events: list[Event] | None = None) -> None:
        found.append(
            Anomaly(
                kind, f"lead {lead_id}: {message}", lead_id, [op.index for op in ops], events or []
            )
        )

    mark = lead["crm_changed_at"]
    took = [op for op in ops if taken(op)]
    maybe = [op for op in ops if op.type == INFO]
    if took:
        newest = max(took, key=lambda op: op.value["changed_at"])
        if mark is None or mark < newest.value["changed_at"]:
            bad(
                "crm_mark_rolled_back",
                f"its CRM mark is {mark}, older than the change at "
                f"{newest.value['changed_at']} answered as taken",
                [newest],
            )
    if mark is not None and mark not in {op.value["changed_at"] for op in took + maybe}:
        refused = [op for op in ops if op.value["changed_at"] == mark]
        said = "one answered 'not written'" if refused else "no change's that may have been taken"
        bad("crm_mark_unknown", f"its CRM mark is {mark}, {said}", refused or ops)

    pairs = matched(ops, known.by_lead.get(lead_id, []))
    for (first, a), (second, b) in zip(pairs, pairs[1:], strict=False):
        if b.value["changed_at"] < a.value["changed_at"]:
            bad(
                "crm_out_of_order",
                f"seq {second.seq} (changed_at {b.value['changed_at']}) "
                f"applied after seq {first.seq} (changed_at {a.value['changed_at']})",
                [a, b],
                [first, second],
            )

    for later in took:
        invoked = history.invoke_of(later).time
        for earlier in took:
            if earlier.time < invoked and earlier.value["changed_at"] > later.value["changed_at"]:
                bad(
                    "stale_applied",
                    f"a change at {later.value['changed_at']} was taken after "
                    f"one at {earlier.value['changed_at']} had been",
                    [earlier, later],
                )
                break

    statuses = [e for e in known.by_lead.get(lead_id, []) if e.type == STATUS_UPDATED]
    last = statuses[-1] if statuses else None
    if last is not None and (last.data.get("changed_by") or {}).get("role") == "crm":
        winner = next((op for event, op in pairs if event.event_id == last.event_id), None)
        if winner is not None:
            for newer in took:
                if (
                    newer.value["changed_at"] > winner.value["changed_at"]
                    and newer.value["status"] != lead["status"]
                ):
                    bad(
                        "stale_crm_won",
                        f"ends on {lead['status']!r} from the change at "
                        f"{winner.value['changed_at']}, though the newer change at "
                        f"{newer.value['changed_at']} to {newer.value['status']!r} was taken",
                        [winner, newer],
                        [last],
                    )
                    break
    return found
