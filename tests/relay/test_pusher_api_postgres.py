"""Per-channel order across daemons: the PyPI `pusher` SDK triggers on two `leadrelay serve`
on one PostgreSQL, alternating between them, and a subscriber on soketi sees each channel's
events in the order the daemons acknowledged them, whichever daemon's relay sent each."""

from __future__ import annotations

import pusher
import pytest

from support.serve import Serve, point_at_soketi
from support.soketi import Soketi
from support.subscriber import Subscriber

pytestmark = [pytest.mark.slow, pytest.mark.soketi, pytest.mark.postgres]

ENV = {
    "LEADRELAY_PUSHER_API": "true",
    "LEADRELAY_RELAY_MAX_BACKOFF_SECONDS": "1",
    "LEADRELAY_RELAY_TIMEOUT_SECONDS": "2",
}
CHANNELS = ("pg-orders", "pg-invoices", "pg-chat")
TRIGGERS = 90


def test_pusher_api_order_per_channel_with_two_daemons_alternating(
    pg_url: str, soketi: Soketi
) -> None:
    with Subscriber(soketi, list(CHANNELS)) as sub:
        first = Serve(pg_url, env=ENV).start()
        second = None
        try:
            point_at_soketi(pg_url, soketi)
            second = Serve(pg_url, env=ENV).start()
            clients = [
                pusher.Pusher(
                    app_id=soketi.app_id,
                    key=soketi.key,
                    secret=soketi.secret,
                    host="127.0.0.1",
                    port=daemon.port,
                    ssl=False,
                )
                for daemon in (first, second)
            ]
            sent: dict[str, list[int]] = {channel: [] for channel in CHANNELS}
            for n in range(TRIGGERS):
                channel = CHANNELS[n % len(CHANNELS)] if n % 5 else CHANNELS[0]
                if n % 7 == 0:  # now and then one trigger on every channel, as one request
                    assert clients[n % 2].trigger(list(CHANNELS), "all", {"n": n}) == {}
                    for each in CHANNELS:
                        sent[each].append(n)
                else:
                    assert clients[n % 2].trigger(channel, "one", {"n": n}) == {}
                    sent[channel].append(n)
            for channel in CHANNELS:
                got = sub.wait_for(len(sent[channel]), channel, timeout=60)
                firsts = list(dict.fromkeys(r.data["n"] for r in got))  # at least once
                assert firsts == sent[channel], channel
        finally:
            for daemon in (first, second):
                if daemon is not None:
                    daemon.kill()
