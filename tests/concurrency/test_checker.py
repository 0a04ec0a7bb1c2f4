"""The checker on small made-up histories: each invariant holds on a right one and is caught
on a wrong one, so that a green concurrency run means something."""

from __future__ import annotations

import uuid
from typing import Any

from support.checker import Result, check
from support.feeds import Arrival
from support.history import FAIL, INFO, OK, Event, History, Op
from support.known import Stored

T0 = "2026-12-01T10:00:00.000Z"


def event(
    id: int,
    lead: int,
    seq: int,
    *,
    status: str = "new",
    old: str | None = None,
    provider: int | None = None,
    at: str = T0,
    role: str = "admin",
) -> Event:
    snapshot = {"id": lead, "name": "", "status": status, "provider_id": provider, "updated_at": at}
    data: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "seq": seq,
        "lead": snapshot,
        "occurred_at": at,
    }
    kind = "lead.assigned"
    if old is not None:
        kind = "lead.status.updated"
        data.update(old_status=old, new_status=status, changed_by={"role": role})
    data["type"] = kind
    return Event(id, data["event_id"], lead, seq, kind, data)


def lead(id: int, name: str, status: str = "new", last_seq: int = 1, **more: Any) -> dict[str, Any]:
    row = {
        "id": id,
        "name": name,
        "email": None,
        "phone": None,
        "source": None,
        "status": status,
        "provider_id": None,
        "last_seq": last_seq,
        "erased_at": None,
        "crm_changed_at": None,
    }
    return {**row, **more}


def done(
    history: History, process: str, f: str, type_: str, answer: Any = None, **value: Any
) -> Op:
    op = history.invoke(process, f, **value)
    return history.complete(op, type_, None if answer is None else {"http": 200, "body": answer})


def read(history: History, name: str, after: int, events: list[Event]) -> None:
    op = history.invoke(name, "read", scope="admin", after=after)
    next_after = events[-1].id if events else after
    history.complete(op, OK, {"events": events, "next_after": next_after})


def stored(leads: list[dict[str, Any]], events: list[Event]) -> Stored:
    return Stored(
        {row["id"]: row for row in leads}, events, {e.event_id: "delivered" for e in events}
    )


def created(history: History, id: int, name: str, type_: str = OK) -> None:
    answer = {"id": id, "name": name, "status": "new", "provider_id": None, "updated_at": T0}
    done(
        history,
        "w0",
        "create",
        type_,
        answer if type_ == OK else None,
        name=name,
        email=None,
        phone=None,
        source=None,
        provider_id=None,
    )


def kinds(result: Result) -> set[str]:
    return set(result.kinds())


def test_checker_passes_a_right_history() -> None:
    history = History()
    created(history, 1, "a")
    first, second = event(1, 1, 1), event(2, 1, 2, status="contacted", old="new", at="T1")
    done(
        history,
        "w1",
        "patch",
        OK,
        {"status": "contacted", "provider_id": None, "updated_at": "T1"},
        lead=1,
        status="contacted",
    )
    read(history, "admin0", 0, [first])
    read(history, "admin0", 1, [second])
    arrivals = [Arrival("admin", e, 1.0) for e in (first, second)]
    result = check(
        history,
        stored([lead(1, "a", "contacted", 2)], [first, second]),
        arrivals=arrivals,
        channels=["admin"],
    )
    assert result.valid, result.report()


def test_checker_catches_a_lost_and_a_falsely_refused_create() -> None:
    history = History()
    created(history, 1, "acked but lost")
    created(history, 2, "refused but stored", FAIL)
    created(history, 3, "unknown", INFO)
    result = check(history, stored([lead(2, "refused but stored", last_seq=0)], []))
    # an answer that never came promises nothing either way
    assert kinds(result) == {"lost_create", "failed_create_stored"}, result.report()


def test_checker_catches_an_erase_refused_but_done_and_one_undone() -> None:
    history = History()
    for id in (1, 2):
        created(history, id, f"lead {id}")
    done(history, "w1", "erase", FAIL, lead=1)
    done(history, "w2", "erase", OK, {"id": 2, "status": "new", "updated_at": "T1"}, lead=2)
    named = event(2, 2, 2, status="contacted", old="new", at="T2")
    named.data["lead"]["name"] = "lead 2"  # a change that read the lead before the erase
    rows = [lead(1, "", erased_at="T1"), lead(2, "", "contacted", 2, erased_at="T1")]
    result = check(history, stored(rows, [event(1, 1, 1), event(3, 2, 1), named]))
    assert kinds(result) == {"failed_erase_stored", "erase_undone"}, result.report()


def test_checker_catches_a_follower_that_skipped_an_event() -> None:
    history = History()
    created(history, 1, "a")
    created(history, 2, "b")
    late, early = event(1, 1, 1), event(2, 2, 1)
    read(history, "admin0", 0, [early])  # id 1 commits after id 2: the cursor passed it
    result = check(history, stored([lead(1, "a"), lead(2, "b")], [late, early]))
    assert kinds(result) == {"follower_missed"}, result.report()
    assert "-> " in result.report()  # the read that passed it is pointed at


def test_checker_catches_an_event_id_handed_out_twice() -> None:
    history = History()
    old, new = event(1, 1, 1), event(1, 2, 1)
    read(history, "admin0", 0, [old])
    result = check(history, stored([lead(1, "a"), lead(2, "b")], [new]))
    assert {"id_reused", "follower_missed"} <= kinds(result), result.report()


def test_checker_catches_a_broken_chain() -> None:
    history = History()
    chain = [
        event(1, 1, 1),
        event(2, 1, 2, status="contacted", old="new", at="T1"),
        event(3, 1, 3, status="lost", old="new", at="T2"),  # read before seq 2 committed
    ]
    result = check(history, stored([lead(1, "a", "contacted", 3)], chain))
    assert kinds(result) == {"old_status", "final_status"}, result.report()


def test_checker_catches_a_stale_crm_change_that_won() -> None:
    history = History()
    newer_at = {"status": "converted", "provider_id": None, "updated_at": "T1"}
    older_at = {"status": "lost", "provider_id": None, "updated_at": "T2"}
    done(
        history,
        "wa",
        "crm",
        OK,
        {"lead": newer_at, "applied": True, "reason": None},
        lead=1,
        status="converted",
        changed_at=2000,
    )
    done(
        history,
        "wb",
        "crm",
        OK,
        {"lead": older_at, "applied": True, "reason": None},
        lead=1,
        status="lost",
        changed_at=1000,
    )
    chain = [
        event(1, 1, 1),
        event(2, 1, 2, status="converted", old="new", at="T1", role="crm"),
        event(3, 1, 3, status="lost", old="converted", at="T2", role="crm"),
    ]
    rows = [lead(1, "a", "lost", 3, crm_changed_at=1000)]
    result = check(history, stored(rows, chain))
    assert {"crm_mark_rolled_back", "crm_out_of_order", "stale_applied", "stale_crm_won"} == (
        kinds(result)
    ), result.report()


def test_checker_allows_copies_only_around_a_fault() -> None:
    history = History()
    first = event(1, 1, 1)
    history.fault("start", fault="kill")
    history.fault("heal", fault="kill")
    healed = history.now()
    rows = [lead(1, "a")]
    near = [Arrival("admin", first, healed), Arrival("admin", first, healed + 1)]
    result = check(history, stored(rows, [first]), arrivals=near, channels=["admin"], grace=5)
    assert result.valid and result.counts["copies on admin"] == 1, result.report()
    far = [Arrival("admin", first, healed), Arrival("admin", first, healed + 60)]
    result = check(history, stored(rows, [first]), arrivals=far, channels=["admin"], grace=5)
    assert kinds(result) == {"pusher_copy_outside_fault"}, result.report()
