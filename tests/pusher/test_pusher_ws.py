"""Tests for the Pusher protocol 7 websocket client, against a real soketi."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pusher
import pytest
from websockets.asyncio.server import Server, ServerConnection, serve

from leadrelay.pusher.protocol import (
    ConnectionClosed,
    ConnectRefused,
    PongTimeout,
    PusherMessage,
    Reconnect,
    SubscriptionError,
    private_channel_auth,
    ws_url,
)
from leadrelay.pusher.socket import PusherSocket
from support.soketi import Soketi, free_port

# Every wait below has its own short asyncio timeout; this only catches a hang past those.
WAIT = 5.0


@pytest.fixture(scope="module")
def soketi() -> Iterator[Soketi]:
    with Soketi() as server:
        yield server


@pytest.fixture
def own_soketi() -> Iterator[Soketi]:
    """A server of the test's own, for tests that stop or freeze it."""
    with Soketi() as server:
        yield server


def url_of(server: Soketi) -> str:
    return ws_url(server.key, host=server.host, port=server.port, tls=False)


async def trigger(server: Soketi, channel: str, event: str, data: Any) -> None:
    client = pusher.Pusher(
        app_id=server.app_id,
        key=server.key,
        secret=server.secret,
        host=server.host,
        port=server.port,
        ssl=False,
    )
    # The pusher package blocks: keep it off the event loop that reads the socket.
    await asyncio.to_thread(client.trigger, channel, event, data)


async def next_event(events: AsyncIterator[PusherMessage]) -> PusherMessage:
    async with asyncio.timeout(WAIT):
        return await anext(events)


def test_ws_url_has_protocol_7_query() -> None:
    assert ws_url("k", host="example.test", port=443, tls=True) == (
        "wss://example.test:443/app/k?protocol=7&client=leadrelay&version=0.1.0&flash=false"
    )
    assert ws_url("k", host="::1", port=6001, tls=False).startswith("ws://[::1]:6001/app/k?")


def test_private_channel_auth_matches_pusher_package() -> None:
    client = pusher.Pusher(app_id="1", key="the-key", secret="the-secret")
    expected = client.authenticate(channel="private-leads", socket_id="123.456")["auth"]
    assert private_channel_auth("the-key", "the-secret", "123.456", "private-leads") == expected


@pytest.mark.parametrize(
    ("code", "policy"),
    [
        (4001, Reconnect.NEVER),
        (4099, Reconnect.NEVER),
        (4100, Reconnect.BACKOFF),
        (4201, Reconnect.NOW),
        (1006, Reconnect.BACKOFF),
        (None, Reconnect.BACKOFF),
    ],
)
def test_connection_closed_reconnect_policy_follows_close_code(
    code: int | None, policy: Reconnect
) -> None:
    closed = ConnectionClosed(code, "why")
    assert closed.reconnect is policy
    assert closed.should_reconnect is (policy is not Reconnect.NEVER)
    assert closed.min_reconnect_delay == (0.0 if policy is Reconnect.NOW else 1.0)


@pytest.mark.soketi
def test_pusher_socket_receives_public_event(soketi: Soketi) -> None:
    async def scenario() -> None:
        async with await PusherSocket.connect(url_of(soketi)) as sock:
            assert sock.socket_id.count(".") == 1
            assert sock.activity_timeout == 30  # soketi's announced value
            await sock.subscribe("leads")
            await trigger(soketi, "leads", "lead.created", {"id": 7, "name": "Ada"})
            message = await next_event(sock.events())
        assert message == PusherMessage("leads", "lead.created", {"id": 7, "name": "Ada"})

    asyncio.run(scenario())


@pytest.mark.soketi
def test_pusher_socket_keeps_events_that_arrive_during_subscribe(soketi: Soketi) -> None:
    async def scenario() -> None:
        async with await PusherSocket.connect(url_of(soketi)) as sock:
            await sock.subscribe("first")
            await trigger(soketi, "first", "early", {"n": 1})
            # Nobody reads events() while this waits: the event above must be kept.
            await sock.subscribe("second")
            await trigger(soketi, "second", "late", {"n": 2})
            events = sock.events()
            assert (await next_event(events)).event == "early"
            assert (await next_event(events)).event == "late"

    asyncio.run(scenario())


@pytest.mark.soketi
def test_pusher_socket_subscribes_private_channel_with_auth(soketi: Soketi) -> None:
    async def scenario() -> None:
        async with await PusherSocket.connect(url_of(soketi)) as sock:
            auth = private_channel_auth(soketi.key, soketi.secret, sock.socket_id, "private-a")
            await sock.subscribe("private-a", auth=auth)
            await trigger(soketi, "private-a", "lead.assigned", {"id": 1})
            message = await next_event(sock.events())
        assert (message.channel, message.event) == ("private-a", "lead.assigned")

    asyncio.run(scenario())


@pytest.mark.soketi
def test_pusher_socket_rejects_wrong_private_signature(soketi: Soketi) -> None:
    async def scenario() -> None:
        async with await PusherSocket.connect(url_of(soketi)) as sock:
            auth = private_channel_auth(soketi.key, "wrong-secret", sock.socket_id, "private-b")
            with pytest.raises(SubscriptionError) as caught:
                await sock.subscribe("private-b", auth=auth)
            assert caught.value.channel == "private-b"
            # A refused subscription leaves the connection usable.
            await sock.subscribe("public-b")

    asyncio.run(scenario())


@pytest.mark.soketi
def test_pusher_socket_unknown_key_is_closed_4001_without_reconnect(soketi: Soketi) -> None:
    url = ws_url("no-such-key", host=soketi.host, port=soketi.port, tls=False)
    with pytest.raises(ConnectionClosed) as caught:
        asyncio.run(PusherSocket.connect(url))
    assert caught.value.code == 4001
    assert caught.value.reconnect is Reconnect.NEVER
    assert not caught.value.should_reconnect
    assert "no-such-key" in str(caught.value)


def test_pusher_socket_connect_to_closed_port_is_refused_fast() -> None:
    url = ws_url("k", host="127.0.0.1", port=free_port(), tls=False)
    started = time.monotonic()
    with pytest.raises(ConnectRefused, match="refused"):
        asyncio.run(PusherSocket.connect(url))
    assert time.monotonic() - started < 1.0


@pytest.mark.soketi
@pytest.mark.parametrize("graceful", [True, False], ids=["sigterm", "sigkill"])
def test_pusher_socket_events_end_when_server_stops(own_soketi: Soketi, graceful: bool) -> None:
    async def scenario() -> ConnectionClosed:
        async with await PusherSocket.connect(url_of(own_soketi)) as sock:
            await sock.subscribe("leads")
            await asyncio.to_thread(own_soketi.stop, graceful=graceful)
            with pytest.raises(ConnectionClosed) as caught:
                async with asyncio.timeout(WAIT):
                    async for _ in sock.events():
                        pass
            return caught.value

    closed = asyncio.run(scenario())
    if graceful:
        # soketi announces its shutdown with 4200: come back at once.
        assert (closed.code, closed.reconnect) == (4200, Reconnect.NOW)
    else:
        assert (closed.code, closed.reconnect) == (None, Reconnect.BACKOFF)

    own_soketi.restart()  # same port, so the same URL works again

    async def reconnect() -> None:
        async with await PusherSocket.connect(url_of(own_soketi)) as sock:
            await sock.subscribe("leads")

    asyncio.run(reconnect())


@pytest.mark.soketi
def test_pusher_socket_pings_when_idle_and_stays_connected(soketi: Soketi) -> None:
    async def scenario() -> None:
        url = url_of(soketi)
        async with await PusherSocket.connect(url, activity_timeout=0.2, pong_timeout=0.5) as sock:
            await sock.subscribe("idle")
            # Several ping/pong rounds: an unanswered ping would end the socket after 0.7 s.
            await asyncio.sleep(1.5)
            await trigger(soketi, "idle", "still-here", {})
            assert (await next_event(sock.events())).event == "still-here"

    asyncio.run(scenario())


@pytest.mark.soketi
def test_pusher_socket_silent_server_is_a_pong_timeout(own_soketi: Soketi) -> None:
    async def scenario() -> None:
        url = url_of(own_soketi)
        async with await PusherSocket.connect(url, activity_timeout=0.2, pong_timeout=0.5) as sock:
            await sock.subscribe("leads")
            own_soketi.pause()
            started = time.monotonic()
            with pytest.raises(PongTimeout):
                async with asyncio.timeout(WAIT):
                    async for _ in sock.events():
                        pass
            assert time.monotonic() - started < 2.0

    try:
        asyncio.run(scenario())
    finally:
        own_soketi.resume()


@pytest.mark.soketi
def test_pusher_socket_close_ends_events_quietly(soketi: Soketi) -> None:
    async def scenario() -> None:
        sock = await PusherSocket.connect(url_of(soketi))
        await sock.subscribe("leads")

        async def drain() -> list[PusherMessage]:
            return [message async for message in sock.events()]

        reader = asyncio.create_task(drain())
        await asyncio.sleep(0.1)
        await sock.close()
        async with asyncio.timeout(WAIT):
            assert await reader == []
        with pytest.raises(ConnectionClosed):
            await sock.subscribe("after-close")

    asyncio.run(scenario())


# soketi never pings its clients and reports a bad signature as pusher:subscription_error;
# Pusher itself does both differently. A scripted server on loopback plays those parts.


async def scripted_pusher(replies: dict[str, list[dict[str, Any]]], seen: list[str]) -> Server:
    """A websocket server that greets like Pusher, then answers each event per `replies`."""

    async def handler(ws: ServerConnection) -> None:
        established = {"socket_id": "1.2", "activity_timeout": 120}
        await ws.send(
            json.dumps({"event": "pusher:connection_established", "data": json.dumps(established)})
        )
        for frame in replies.get("", []):
            await ws.send(json.dumps(frame))
        async for raw in ws:
            event = json.loads(raw)["event"]
            seen.append(event)
            for frame in replies.get(event, []):
                await ws.send(json.dumps(frame))

    return await serve(handler, "127.0.0.1", 0)


def test_pusher_socket_answers_server_ping() -> None:
    async def scenario() -> list[str]:
        seen: list[str] = []
        replies = {"": [{"event": "pusher:ping", "data": {}}]}
        async with await scripted_pusher(replies, seen) as server:
            port = server.sockets[0].getsockname()[1]
            url = ws_url("k", host="127.0.0.1", port=port, tls=False)
            async with await PusherSocket.connect(url):
                async with asyncio.timeout(WAIT):
                    while "pusher:pong" not in seen:
                        await asyncio.sleep(0.01)
        return seen

    assert asyncio.run(scenario()) == ["pusher:pong"]


def test_pusher_socket_channelless_error_fails_pending_subscription() -> None:
    invalid = {"code": None, "message": "Invalid signature: Expected HMAC SHA256 hex digest"}
    replies = {"pusher:subscribe": [{"event": "pusher:error", "data": invalid}]}

    async def scenario() -> None:
        async with await scripted_pusher(replies, []) as server:
            port = server.sockets[0].getsockname()[1]
            url = ws_url("k", host="127.0.0.1", port=port, tls=False)
            async with await PusherSocket.connect(url) as sock:
                with pytest.raises(SubscriptionError, match="Invalid signature"):
                    await sock.subscribe("private-x", auth="k:bad")

    asyncio.run(scenario())
