"""Checks of the leads in a history: acknowledged writes stored, and each lead's event chain."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from support.history import FAIL, INFO, OK, Event, History, Op
from support.known import ASSIGNED, PERSONAL, STATUS_UPDATED, Anomaly, Known, Stored, state_of


def check_chains(known: Known, stored: Stored, statuses: tuple[str, ...]) -> list[Anomaly]:
    """Per lead: seq 1…last_seq each once and known, and the status and provider chain."""
    found: list[Anomaly] = []

    def bad(kind: str, lead_id: int, message: str, events: list[Event]) -> None:
        found.append(Anomaly(kind, f"lead {lead_id}: {message}", lead_id, events=events))

    for lead_id, lead in sorted(stored.leads.items()):
        chain = known.by_lead.get(lead_id, [])
        seqs = [e.seq for e in chain]
        for seq in sorted({s for s in seqs if seqs.count(s) > 1}):
            bad("seq_repeated", lead_id, f"seq {seq} twice", [e for e in chain if e.seq == seq])
        last = int(lead["last_seq"])
        unseen = sorted(set(range(1, last + 1)) - set(seqs))
        if unseen:
            message = f"seq {unseen} of 1…{last} neither stored nor seen by any follower or"
            bad("event_unseen", lead_id, message + " subscriber", chain)
        if beyond := [e for e in chain if e.seq > last]:
            bad("seq_beyond_last", lead_id, f"events past last_seq {last}", beyond)
        found += _walk(lead_id, lead, chain, statuses, complete=not unseen)
    for lead_id in sorted(set(known.by_lead) - set(stored.leads)):
        bad("event_without_lead", lead_id, "events, but no lead", known.by_lead[lead_id])
    return found


def _walk(
    lead_id: int,
    lead: dict[str, Any],
    chain: list[Event],
    statuses: tuple[str, ...],
    *,
    complete: bool,
) -> list[Anomaly]:
    found: list[Anomaly] = []

    def bad(kind: str, message: str, *events: Event) -> None:
        found.append(Anomaly(kind, f"lead {lead_id}: {message}", lead_id, events=list(events)))

    status: Any = None
    provider: Any = None
    previous: Event | None = None
    for n, event in enumerate(chain):
        shows = event.lead.get("status")
        if event.seq == 1:
            if event.type != ASSIGNED or shows != statuses[0]:
                bad("first_event", f"seq 1 is {event.type} with status {shows!r}", event)
            status, provider = shows, event.provider_id
        elif previous is None or event.seq != previous.seq + 1:  # a gap: pick the chain up
            status, provider = event.data.get("new_status", shows), event.provider_id
        elif event.type == STATUS_UPDATED:
            old = event.data.get("old_status")
            if old != status:
                said = f"seq {event.seq} says old_status {old!r}, the chain had {status!r}"
                bad("old_status", said, previous, event)
            status = event.data.get("new_status")
            if event.provider_id != provider:
                said = (
                    f"seq {event.seq} is for provider {event.provider_id}, the chain had {provider}"
                )
                bad("provider_chain", said, previous, event)
        else:  # a reassignment; a change of status in the same write follows it
            provider = event.provider_id
            after = chain[n + 1] if n + 1 < len(chain) else None
            same_write = (
                after is not None
                and (after.seq, after.type) == (event.seq + 1, STATUS_UPDATED)
                and after.data.get("occurred_at") == event.data.get("occurred_at")
                and after.data.get("new_status") == shows
            )
            if shows != status and not same_write:
                said = f"seq {event.seq} (reassigned) shows {shows!r}, the chain had {status!r}"
                bad("assigned_snapshot", said, previous, event)
        previous = event
    if complete and chain:
        if lead["status"] != status:
            said = f"stored status {lead['status']!r}, its last status event says {status!r}"
            bad("final_status", said, chain[-1])
        if lead["provider_id"] != provider:
            said = f"stored provider {lead['provider_id']}, its last assignment says {provider}"
            bad("final_provider", said, chain[-1])
    return found


def check_writes(history: History, known: Known, stored: Stored) -> list[Anomaly]:
    """Every acknowledged write stored, nothing stored that every attempt said was not."""
    found: list[Anomaly] = []
    ok_names: dict[int, str] = {}
    attempts: dict[str, list[Op]] = defaultdict(list)
    for op in history.completions("create"):
        attempts[op.value["name"]].append(op)
        if op.type == OK:
            ok_names[int(op.value["body"]["id"])] = op.value["name"]
    by_name: dict[str, list[int]] = defaultdict(list)
    for lead_id, lead in stored.leads.items():
        name = lead["name"] if not lead["erased_at"] else ok_names.get(lead_id)
        if name is not None:
            by_name[name].append(lead_id)
    for name, ops in attempts.items():
        ids = by_name.get(name, [])
        ok_ids = sorted({int(op.value["body"]["id"]) for op in ops if op.type == OK})
        indexes = [op.index for op in ops]
        if len(ids) > 1 or len(ok_ids) > 1:
            message = f"{name!r} is stored as leads {ids}, answered as {ok_ids}"
            found.append(Anomaly("duplicate_create", message, (ids or ok_ids)[0], indexes))
        elif ok_ids and ids != ok_ids:
            message = f"{name!r} was answered as lead {ok_ids[0]}, but is not stored"
            found.append(Anomaly("lost_create", message, ok_ids[0], indexes))
        elif ids and not any(op.type in (OK, INFO) for op in ops):
            message = f"{name!r} is stored, though every attempt was answered 'not written'"
            found.append(Anomaly("failed_create_stored", message, ids[0], indexes))
        for op in ops:
            if op.type == OK and ids:
                found += _fields(op, stored.leads[ids[0]], known)
    erases: dict[int, list[Op]] = defaultdict(list)
    for op in history.completions("erase"):
        erases[op.value["lead"]].append(op)
    for lead_id, ops in erases.items():
        lead = stored.leads.get(lead_id)
        if lead is not None and lead["erased_at"] and all(op.type == FAIL for op in ops):
            message = "erased, though every erase was answered 'not written'"
            found.append(Anomaly("failed_erase_stored", message, lead_id, [o.index for o in ops]))
    erased_unknown = {lead for lead, ops in erases.items() if any(op.type == INFO for op in ops)}
    for op in history.completions("patch", "crm", "erase"):
        if op.type != OK:
            continue
        if op.f == "erase":
            found += _erased(op, stored)
            continue
        if op.f == "crm" and op.value["body"]["reason"] == "stale":
            continue
        lead_id = op.value["lead"]
        answer = state_of(op.value["body"]["lead"] if op.f == "crm" else op.value["body"])
        wanted = {k: op.value[k] for k in ("status", "provider_id") if k in op.value}
        got = {"status": answer[0], "provider_id": answer[1]}
        if any(got[k] != v for k, v in wanted.items()):
            message = f"asked for {wanted}, answered {answer}"
            found.append(Anomaly("answer_disagrees", message, lead_id, [op.index]))
        # the answer's (status, provider, updated_at) is one some event recorded, or the
        # create's or an erase's; an erase whose answer never came leaves only the first two
        states = known.states(lead_id) | _answered(history, lead_id)
        if answer not in states and not (
            lead_id in erased_unknown and answer[:2] in {state[:2] for state in states}
        ):
            message = f"{op.f} was answered {answer}, a state no event of the lead records"
            found.append(Anomaly("lost_change", message, lead_id, [op.index]))
    return found


def _answered(history: History, lead_id: int) -> set[tuple[Any, Any, Any]]:
    """States that a create or an erase answered for the lead (neither writes an event that
    records the state it leaves)."""
    states = set()
    for op in history.completions("create", "erase"):
        if op.type == OK and op.value["body"].get("id") == lead_id:
            states.add(state_of(op.value["body"]))
    return states


def _fields(op: Op, lead: dict[str, Any], known: Known) -> list[Anomaly]:
    if lead["erased_at"]:
        return []
    sent = {k: op.value.get(k) for k in ("name", *PERSONAL)}
    kept = {k: lead[k] for k in sent}
    first = next((e for e in known.by_lead.get(lead["id"], []) if e.seq == 1), None)
    if kept == sent and (first is None or first.provider_id == op.value.get("provider_id")):
        return []
    message = f"sent {sent} for provider {op.value.get('provider_id')}, stored {kept}"
    return [Anomaly("create_fields", message, lead["id"], [op.index], [first] if first else [])]


def _erased(op: Op, stored: Stored) -> list[Anomaly]:
    """An acknowledged erase leaves no personal field in the row or in any stored event."""
    lead_id = op.value["lead"]
    lead = stored.leads.get(lead_id)
    left = [] if lead is None else [k for k in ("name", *PERSONAL) if lead[k]]
    events = [
        e
        for e in stored.events
        if e.lead_id == lead_id and any(e.lead.get(k) for k in ("name", "email", "phone"))
    ]
    if not left and not events:
        return []
    message = f"erased, yet the row keeps {left} and {len(events)} events personal fields"
    return [Anomaly("erase_undone", message, lead_id, [op.index], events)]
