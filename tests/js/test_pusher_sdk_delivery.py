"""A durable Pusher: the `pusher` SDK from PyPI triggers through a real `leadrelay serve`
(`pusher_api = true`), which stores each event before its `200 {}` and relays it to a real
soketi, in order per channel, through an upstream cut and a SIGKILL, `socket_id` kept and
an SDK's encrypted payload untouched.  A subscriber on soketi sees what an app's frontend
would."""

from __future__ import annotations

import base64
import json
import os
import re
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pusher
import pytest

from leadrelay.auth import shared_secret
from leadrelay.pusher.protocol import decrypt_data
from support.faulty_pusher import FaultyPusher, point_at_proxy
from support.serve import Serve, cli, point_at_soketi
from support.soketi import Soketi
from support.subscriber import Subscriber

pytestmark = pytest.mark.soketi
ENV = {
    "LEADRELAY_PUSHER_API": "true",
    "LEADRELAY_RELAY_MAX_BACKOFF_SECONDS": "1",
    "LEADRELAY_RELAY_TIMEOUT_SECONDS": "2",
}


def sdk(port: int, soketi: Soketi, **options: Any) -> pusher.Pusher:
    """The SDK as an app builds it, its host the daemon's."""
    return pusher.Pusher(
        app_id=soketi.app_id,
        key=soketi.key,
        secret=soketi.secret,
        host="127.0.0.1",
        port=port,
        ssl=False,
        **options,
    )


def numbers(sub: Subscriber, channel: str, count: int, timeout: float = 30) -> list[int]:
    return [r.data["n"] for r in sub.wait_for(count, channel, timeout=timeout)]


def pending(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        row = conn.execute("SELECT count(*) FROM events WHERE state = 'pending'").fetchone()
        return int(row[0])


def settled(db: Path, timeout: float = 30) -> None:
    """Wait until nothing is pending: what arrived is also marked delivered (the relay
    writes its marks a moment after Pusher's answer)."""
    deadline = time.monotonic() + timeout
    while pending(db):
        assert time.monotonic() < deadline, f"{pending(db)} events still pending"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory, soketi: Soketi) -> Iterator[Serve]:
    serve = Serve(tmp_path_factory.mktemp("delivery") / "delivery.db", env=ENV)
    serve.start()
    try:
        point_at_soketi(serve.db, soketi)
        yield serve
    finally:
        serve.kill()


def test_pusher_sdk_sequential_triggers_arrive_in_order(daemon: Serve, soketi: Soketi) -> None:
    client = sdk(daemon.port, soketi)
    with Subscriber(soketi, ["seq-a", "seq-b"]) as sub:
        for n in range(40):
            assert client.trigger("seq-a" if n % 3 else "seq-b", "ordered", {"n": n}) == {}
        assert numbers(sub, "seq-a", 26) == [n for n in range(40) if n % 3]
        assert numbers(sub, "seq-b", 14) == [n for n in range(40) if not n % 3]
        # one trigger on two channels: one stored event each, each in its channel's order
        client.trigger(["seq-a", "seq-b"], "both", {"n": 40})
        assert numbers(sub, "seq-a", 27)[-1] == numbers(sub, "seq-b", 15)[-1] == 40


def test_pusher_sdk_trigger_batch_in_order(daemon: Serve, soketi: Soketi) -> None:
    client = sdk(daemon.port, soketi)
    with Subscriber(soketi, ["batch-a", "batch-b"]) as sub:
        for first in (0, 10, 20):
            items = [
                {"channel": "batch-a" if n % 2 else "batch-b", "name": "b", "data": {"n": n}}
                for n in range(first, first + 10)
            ]
            assert client.trigger_batch(items) == {}
        assert numbers(sub, "batch-a", 15) == list(range(1, 30, 2))
        assert numbers(sub, "batch-b", 15) == list(range(0, 30, 2))


def test_pusher_sdk_socket_id_leaves_out_the_sender(daemon: Serve, soketi: Soketi) -> None:
    client = sdk(daemon.port, soketi)
    with (
        Subscriber(soketi, ["others"]) as sender,
        Subscriber(soketi, ["others"]) as watcher,
    ):
        client.trigger("others", "to.others", {"n": 0}, socket_id=sender.socket_id)
        client.trigger("others", "to.all", {"n": 1})
        assert numbers(watcher, "others", 2) == [0, 1]
        # the second arrived at the sender, so the first (sent before it) had its chance
        assert numbers(sender, "others", 1) == [1]
        assert [r.event for r in sender.on("others")] == ["to.all"]


def test_pusher_sdk_encrypted_payload_goes_as_the_sdk_sealed_it(
    daemon: Serve, soketi: Soketi
) -> None:
    # the app's master key is its own: the daemon stores none, and must not seal again
    key = os.urandom(32)
    client = sdk(daemon.port, soketi, encryption_master_key_base64=base64.b64encode(key))
    channel = "private-encrypted-orders"
    with Subscriber(soketi, [channel]) as sub:
        client.trigger(channel, "sealed", {"n": 7})
        (received,) = sub.wait_for(1, channel, timeout=30)
    assert decrypt_data(received.data, shared_secret(channel, key)) == {"n": 7}


def test_pusher_sdk_upstream_cut_every_trigger_answered_all_delivered_in_order(
    tmp_path: Path, soketi: Soketi
) -> None:
    db = tmp_path / "cut.db"
    with FaultyPusher(soketi) as proxy, Serve(db, env=ENV) as serve:
        point_at_proxy(db, proxy)
        client = sdk(serve.port, soketi)
        with Subscriber(soketi, ["cut"]) as sub:
            client.trigger("cut", "before", {"n": 0})
            assert numbers(sub, "cut", 1) == [0]
            settled(db)
            proxy.down()
            for n in range(1, 31):
                assert client.trigger("cut", "during", {"n": n}) == {}
            assert pending(db) == 30  # every one stored, none could go out
            proxy.up()
            assert numbers(sub, "cut", 31, timeout=60) == list(range(31))


def test_pusher_sdk_sigkill_right_after_the_answer_all_delivered_after_restart(
    tmp_path: Path, soketi: Soketi
) -> None:
    db = tmp_path / "kill.db"
    with FaultyPusher(soketi) as proxy, Subscriber(soketi, ["killed"]) as sub:
        serve = Serve(db, env=ENV).start()
        try:
            point_at_proxy(db, proxy)
            client = sdk(serve.port, soketi)
            client.trigger("killed", "first", {"n": 0})
            assert numbers(sub, "killed", 1) == [0]
            settled(db)
            proxy.down()  # so that what is acknowledged next is still to send at the kill
            for n in range(1, 21):
                client.trigger("killed", "acked", {"n": n})
            serve.kill()  # SIGKILL to the whole group, right after the last 200
            assert pending(db) == 20
            proxy.up()
            serve.start()
            got = numbers(sub, "killed", 21, timeout=60)
        finally:
            serve.kill()
    # at least once: a copy may come again, never out of order before its first arrival
    firsts = list(dict.fromkeys(got))
    assert firsts == list(range(21))


def test_pusher_sdk_events_in_the_operators_views(daemon: Serve, soketi: Soketi) -> None:
    """`outbox status`, `/metrics` and `doctor` count them apart; `tail --channel` is in
    tests/cli/test_tail_channels.py."""
    before = json.loads(cli(daemon.db, "outbox", "status", "--json").stdout)["pusher_api"]
    sdk(daemon.port, soketi).trigger(["views-a", "views-b"], "seen", {"n": 1})
    deadline = time.monotonic() + 30
    while True:
        status = json.loads(cli(daemon.db, "outbox", "status", "--json").stdout)
        if status["pusher_api"]["delivered"] == before["delivered"] + 2:
            break
        assert time.monotonic() < deadline, status
        time.sleep(0.2)
    assert status["pusher_api"]["pending"] == 0 and status["pending"] == 0
    assert "pusher_api" in cli(daemon.db, "outbox", "status").stdout
    text = httpx.get(f"{daemon.url}/metrics", timeout=10).text
    stored = re.search(r"^leadrelay_pusher_api_events_total (\S+)$", text, re.M)
    relayed = re.search(r"^leadrelay_pusher_api_events_relayed_total (\S+)$", text, re.M)
    assert stored and float(stored.group(1)) >= 2, text
    assert relayed and float(relayed.group(1)) >= 2, text
    assert re.search(r"^leadrelay_outbox_pusher_api_pending 0$", text, re.M), text
    doctor = cli(daemon.db, "doctor", check=False).stdout
    assert "from apps' Pusher API triggers" in doctor, doctor
