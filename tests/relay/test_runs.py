"""A channel's head and the events after it: one run, in seq order, cut at a gap."""

from __future__ import annotations

import json
from typing import Any

from leadrelay.relay.batches import chain_runs, pack_batches


def event(id_: int, seq: int, channel_id: int | None = 1, lead_id: int | None = None) -> Any:
    channels = ["admin", "private-provider.1"] if lead_id else [f"c{channel_id}"]
    return {
        "id": id_,
        "seq": seq,
        "lead_id": lead_id,
        "channel_id": None if lead_id else channel_id,
        "channels": json.dumps(channels),
    }


def test_chain_runs_follow_on_and_stop_at_a_gap() -> None:
    due = [event(1, 1), event(2, 1, lead_id=7), event(3, 4, channel_id=2)]
    followers = [event(5, 3), event(4, 2), event(7, 5), event(8, 5, channel_id=2)]
    runs, left = chain_runs(due, followers, skip=set())
    assert [[e["id"] for e in run] for run in runs] == [[1, 4, 5], [2], [3, 8]]
    assert left == [7]  # seq 5 after 3: seq 4 is missing (dead, or another's)
    runs, left = chain_runs(due, followers, skip={5})
    assert [[e["id"] for e in run] for run in runs][0] == [1, 4]
    assert sorted(left) == [5, 7]


def test_pack_batches_keeps_runs_whole() -> None:
    runs = [[event(n, n) for n in range(1, 8)], [event(20, 1, lead_id=3)], [event(30, 1, 2)]]
    batches = pack_batches(runs, 10)
    # 7 channel items, then a lead event of 2 channels (9), then one more (10)
    assert [[e["id"] for e in batch] for batch in batches] == [[1, 2, 3, 4, 5, 6, 7, 20, 30]]
    batches = pack_batches(runs, 8)
    assert [[e["id"] for e in batch] for batch in batches] == [
        [1, 2, 3, 4, 5, 6, 7, 20],
        [30],
    ]
