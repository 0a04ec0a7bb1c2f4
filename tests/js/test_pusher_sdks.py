"""Pusher's own server SDKs, `pusher` from PyPI and `pusher` from npm, pointed at a real
`leadrelay serve` with `pusher_api = true` and soketi behind it: each refusal raises what the
SDK raises against Pusher, nothing refused is stored, and the channel reads come from the
upstream through the daemon."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pusher
import pusher.http
import pytest
from pusher.errors import PusherBadAuth, PusherBadRequest, PusherBadStatus

from support.node import run_node
from support.serve import Serve, cli, point_at_soketi
from support.soketi import Soketi, free_port
from support.subscriber import Subscriber

pytestmark = pytest.mark.soketi
OCCUPIED = "sdk-probe"
NODE_CHANNEL = "sdk-node-order"


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory, soketi: Soketi) -> Iterator[Serve]:
    """One daemon for the module, its Pusher settings soketi's (so the SDKs sign with
    soketi's app as an app signs with its Pusher app)."""
    serve = Serve(tmp_path_factory.mktemp("sdk") / "sdk.db", env={"LEADRELAY_PUSHER_API": "true"})
    serve.start()
    try:
        point_at_soketi(serve.db, soketi)
        yield serve
    finally:
        serve.kill()


@pytest.fixture(scope="module")
def occupied(soketi: Soketi) -> Iterator[Subscriber]:
    """A real websocket subscriber on soketi, so that one channel is occupied upstream."""
    with Subscriber(soketi, [OCCUPIED]) as subscriber:
        yield subscriber


def client(daemon: Serve, soketi: Soketi, **overrides: Any) -> pusher.Pusher:
    """The PyPI SDK as an app builds it, with only the host changed to the daemon's."""
    app = {"app_id": soketi.app_id, "key": soketi.key, "secret": soketi.secret, **overrides}
    return pusher.Pusher(**app, host="127.0.0.1", port=daemon.port, ssl=False)


def stored_events(daemon: Serve) -> int:
    with sqlite3.connect(f"file:{daemon.db}?mode=ro", uri=True) as conn:
        return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])


def test_pusher_sdks_python_raises_what_it_raises_against_pusher(
    daemon: Serve, soketi: Soketi, monkeypatch: pytest.MonkeyPatch
) -> None:
    sdk = client(daemon, soketi)
    before = stored_events(daemon)
    with pytest.raises(PusherBadAuth, match="^Invalid signature: "):
        client(daemon, soketi, secret="not-the-secret").trigger("c", "e", {"x": 1})
    with pytest.raises(PusherBadStatus, match="^404: Unknown app"):
        client(daemon, soketi, app_id="999").trigger("c", "e", {"x": 1})
    with pytest.raises(PusherBadRequest, match="Expected name parameter to be a string"):
        sdk.trigger_batch([{"channel": "c", "data": "x"}], already_encoded=True)
    with pytest.raises(PusherBadRequest, match="got 11"):
        sdk.trigger_batch([{"channel": "c", "name": "e", "data": "x"}] * 11)
    # the SDK lets channel names of up to 200 characters through; Pusher's limit is 164
    with pytest.raises(PusherBadRequest, match="Invalid channel name"):
        sdk.trigger("c" * 165, "e", {"x": 1})
    # the SDK's own size check counts sys.getsizeof (30720), so 10 KB + 1 reaches the daemon
    with pytest.raises(PusherBadStatus, match=r"^413: .*\(10240 bytes\)"):
        sdk.trigger("c", "e", "x" * 10241)
    # more than 100 channels: the SDK refuses before sending, as it does with Pusher; the
    # same request sent by its own signer is a 400
    channels = [f"c{n}" for n in range(101)]
    with pytest.raises(ValueError, match="Too many channels"):
        sdk.trigger(channels, "e", {})
    inner = sdk._pusher_client
    params = {"name": "e", "channels": channels, "data": "{}"}
    request = pusher.http.Request(inner, "POST", f"/apps/{soketi.app_id}/events", params)
    with pytest.raises(PusherBadRequest, match="at most 100 channels"):
        inner.http.send_request(request)
    # an hour-old signature: the SDK's clock, not ours, is set back
    clock = SimpleNamespace(time=lambda: time.time() - 3600)
    monkeypatch.setattr(pusher.http, "time", clock)
    with pytest.raises(PusherBadAuth, match="^Timestamp expired: "):
        sdk.trigger("c", "e", {"x": 1})
    assert stored_events(daemon) == before


def test_pusher_sdks_node_raises_what_it_raises_against_pusher(
    daemon: Serve, soketi: Soketi, occupied: Subscriber
) -> None:
    context = {
        "host": "127.0.0.1",
        "port": daemon.port,
        "appId": soketi.app_id,
        "key": soketi.key,
        "secret": soketi.secret,
        "occupied": OCCUPIED,
    }
    with Subscriber(soketi, [NODE_CHANNEL]) as sub:
        before = stored_events(daemon)
        run_node(["pusher-sdk.test.mjs"], {**context, "channel": NODE_CHANNEL}, needs="pusher")
        # what the node tests triggered (10 sequential triggers, then a batch of 3), and
        # nothing that they saw refused
        got = sub.wait_for(13, NODE_CHANNEL, timeout=30)
        assert [r.data["n"] for r in got] == list(range(13))
        assert stored_events(daemon) == before + 13


def test_pusher_sdks_python_channels_info_through_the_daemon(
    daemon: Serve, soketi: Soketi, occupied: Subscriber
) -> None:
    sdk = client(daemon, soketi)
    assert OCCUPIED in sdk.channels_info()["channels"]
    assert OCCUPIED in sdk.channels_info(prefix_filter="sdk-")["channels"]
    assert sdk.channels_info(prefix_filter="nothing-")["channels"] == {}
    info = sdk.channel_info(OCCUPIED, ["subscription_count"])
    assert info == {"occupied": True, "subscription_count": 1}
    assert sdk.channel_info("sdk-vacant")["occupied"] is False
    # the upstream's own 400: users of a channel that is not a presence channel
    with pytest.raises(PusherBadRequest):
        sdk.users_info(OCCUPIED)


def test_pusher_sdks_python_read_while_the_upstream_is_down(tmp_path: Path, soketi: Soketi) -> None:
    db = tmp_path / "down.db"
    with Serve(db, env={"LEADRELAY_PUSHER_API": "true"}) as serve:
        point_at_soketi(db, soketi, via=("127.0.0.1", free_port()))
        with pytest.raises(PusherBadStatus, match='^503: .*"pusher_unreachable"'):
            client(serve, soketi).channels_info()
        # a daemon whose stored upstream is soketi but with the wrong secret: soketi says
        # so with HTTP 200 and the status in its body, which must not pass for a 200
        point_at_soketi(db, soketi, secret="stored-but-wrong-0123")
        with pytest.raises(PusherBadAuth):
            client(serve, soketi, secret="stored-but-wrong-0123").channels_info()
        cli(db, "pusher", "show")  # the daemon is still well


def test_pusher_sdks_a_daemon_pointed_at_itself_refuses_at_once(
    tmp_path: Path, soketi: Soketi
) -> None:
    # PUSHER_HOST seeded from an app's .env that names the daemon: the read goes out once,
    # carrying Via, and comes back refused instead of going round again
    db = tmp_path / "loop.db"
    with Serve(db, env={"LEADRELAY_PUSHER_API": "true"}) as serve:
        point_at_soketi(db, soketi, via=("127.0.0.1", serve.port))
        with pytest.raises(PusherBadStatus, match='^508: .*"pusher_loop"'):
            client(serve, soketi).channels_info()
