"""The outbox's order, in the SQL both backends share: which events are due to go out.

The events of one key go out one at a time, in `seq` order.  A lead's events are keyed by
their lead; the events an app triggers through Pusher's API (web/pusher_api.py) by their
one channel (a `pusher_channels` row, whose seq is taken under its row lock as a lead's
is: store/transaction.py), negated so that the two kinds never share a key (ORDER_KEY).
Both schemas index that very expression over pending events (events_pending_by_order).

UNBLOCKED is the one ordering predicate: no earlier event of its key is still pending.
How the due events are found differs by kind, because their backlogs differ in shape:

- a lead has a few events, so the oldest pending lead events are walked in id order
  (events_pending_leads), each checked with UNBLOCKED: one index probe an event;
- a channel may have thousands pending after an outage, of which one is due: walking them
  all to find it made each claim cost the whole backlog (a 30,000-event channel: 21 ms a
  claim on SQLite here, for one event).  So a channel's head is found directly: a loose
  scan of events_pending_by_order over the channel keys (CHANNEL_HEADS), one probe a
  channel that has pending events, and its followers likewise (followers_sql).

docs/dev/performance.md has the measurements.
"""

from __future__ import annotations

from leadrelay.store.base import Row

ORDER_KEY = "coalesce({0}.lead_id, -{0}.channel_id)"
_KEY = ORDER_KEY.format("events")

# no earlier event of its key (the events row aliased `e`) is still pending
UNBLOCKED = (
    f"NOT EXISTS (SELECT 1 FROM events p WHERE {ORDER_KEY.format('p')} = "
    f"{ORDER_KEY.format('e')} AND p.seq < e.seq AND p.state = 'pending')"
)

# UNBLOCKED as PostgreSQL's claims check it: the event is the first pending one of its key
# (the same thing, for a pending event), as a scalar sub-query.  PostgreSQL runs such a
# sub-query for each candidate as one probe of events_pending_by_order, whatever its
# statistics say; NOT EXISTS it plans as a join, and where they say "few pending" (a new
# table, or a backlog ANALYZE has not seen yet) the join read every pending event for each
# candidate: a claim over 2,000 pending events took 5 s (docs/faults.md)
FIRST_OF_KEY = (
    f"e.seq = (SELECT p.seq FROM events p WHERE {ORDER_KEY.format('p')} = "
    f"{ORDER_KEY.format('e')} AND p.state = 'pending' ORDER BY p.seq LIMIT 1)"
)

# the first pending event of each channel that has one: the channel keys (below 0) from the
# highest down, each found from the last by one index probe, then each key's lowest seq
CHANNEL_HEADS = (
    "WITH RECURSIVE k(key) AS ("
    f"SELECT max({_KEY}) FROM events WHERE state = 'pending' AND {_KEY} < 0 "
    f"UNION ALL SELECT (SELECT max({_KEY}) FROM events WHERE state = 'pending' "
    f"AND {_KEY} < k.key) FROM k WHERE k.key IS NOT NULL) "
    f"SELECT (SELECT id FROM events WHERE {_KEY} = k.key AND state = 'pending' "
    "ORDER BY seq LIMIT 1) AS id FROM k WHERE k.key IS NOT NULL"
)


def next_due_sql(due_at: str) -> str:
    """When the first of every key's head falls due (`due_at`: its time, over the events
    row aliased `e`), as `t`: the relay sleeps until then.  (The lead events' ORDER BY
    walks events_pending_leads, not every lead event a planner might pick.)"""
    return (
        f"SELECT min(t) AS t FROM (SELECT t FROM (SELECT {due_at} AS t FROM events e "
        f"WHERE state = 'pending' AND lead_id IS NOT NULL AND {UNBLOCKED} ORDER BY e.id) "
        f"AS l UNION ALL SELECT (SELECT {due_at} "
        f"FROM events e WHERE e.id = h.id) FROM ({CHANNEL_HEADS}) AS h) AS heads"
    )


def due_ids(where: str, *, planner_proof: bool = False) -> str:
    """The ids of the due events, oldest first, at most `?` (the last parameter): lead
    events UNBLOCKED and channel heads, of those rows (aliased `e`) for which `where`
    holds.  `where`'s own parameters are given twice, then the limit twice (the lead
    events' walk stops at the limit too).

    `planner_proof` (PostgreSQL's claims): UNBLOCKED as FIRST_OF_KEY, and the candidates
    found once, as an array whose rows are then looked up by id, rather than found again
    for each pending event, as a plan made for "few pending" did."""
    head = FIRST_OF_KEY if planner_proof else UNBLOCKED
    leads = (
        "SELECT id FROM (SELECT id FROM events e WHERE state = 'pending' "
        f"AND lead_id IS NOT NULL AND {where} AND {head} ORDER BY id LIMIT ?) AS l"
    )
    candidates = f"{leads} UNION ALL SELECT id FROM ({CHANNEL_HEADS}) AS h"
    if planner_proof:
        return (
            f"SELECT e.id FROM events e WHERE e.id = ANY(ARRAY({candidates})) AND {where} "
            "ORDER BY e.id LIMIT ?"
        )
    return (
        f"SELECT e.id FROM events e WHERE e.id IN ({candidates}) AND {where} ORDER BY e.id LIMIT ?"
    )


def due_params(where: tuple[object, ...], limit: int) -> tuple[object, ...]:
    """The parameters of due_ids(where)."""
    return (*where, limit, *where, limit)


def followers_sql(heads: int) -> str:
    """The pending events after each of `heads` channel heads, in seq order: per head, its
    key, its seq and how many (`?` three a head), each one a short walk of the index."""
    one = (
        "SELECT id FROM (SELECT id FROM events WHERE {key} = ? AND state = 'pending' "
        "AND seq > ? ORDER BY seq LIMIT ?) AS f{n}"
    )
    return " UNION ALL ".join(one.format(key=_KEY, n=n) for n in range(heads))


def followers_params(heads: list[Row], per_channel: int) -> tuple[object, ...]:
    return tuple(value for head in heads for value in (order_key(head), head["seq"], per_channel))


def order_key(event: Row) -> int:
    """ORDER_KEY of an event row, as the relay keeps one event of each key in flight."""
    lead_id = event["lead_id"]
    return int(lead_id) if lead_id is not None else -int(event["channel_id"])
