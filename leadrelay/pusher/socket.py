"""A small Pusher Channels protocol 7 websocket client, for `tail`, `test-connection` and tests.

    sock = await PusherSocket.connect(ws_url(key, host=host, port=port, tls=False))
    async with sock:
        await sock.subscribe("leads")
        async for message in sock.events():
            ...

One background task reads the socket: it answers the server's `pusher:ping`, sends its own
ping after `activity_timeout` seconds of silence, settles pending subscriptions and queues
every other event for `events()`, so nothing that arrives during `subscribe()` is lost.

Its errors and the close-code table are in protocol.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, Final, Self

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed as WsConnectionClosed
from websockets.exceptions import InvalidHandshake, InvalidURI

from leadrelay.pusher.protocol import (
    DEFAULT_ACTIVITY_TIMEOUT,
    DEFAULT_PONG_TIMEOUT,
    ConnectionClosed,
    ConnectTimeout,
    PongTimeout,
    PusherMessage,
    PusherSocketError,
    SubscriptionError,
    announces_close,
    closed_error,
    connect_error,
    host_port,
    parse_frame,
    subscription_error,
)

log = logging.getLogger(__name__)


class _End:
    """Queue marker: the socket was closed by us, so `events()` ends without an error."""


_END: Final = _End()


class PusherSocket:
    """A connected Pusher protocol 7 client; build it with `await PusherSocket.connect(url)`."""

    def __init__(
        self,
        ws: ClientConnection,
        *,
        socket_id: str,
        activity_timeout: float,
        pong_timeout: float,
    ) -> None:
        self.socket_id = socket_id
        self.activity_timeout = activity_timeout
        self.pong_timeout = pong_timeout
        self._ws = ws
        # Unbounded on purpose: the reader must never stop answering pings because a
        # consumer is slow; `tail` and tests drain it continuously.
        self._queue: asyncio.Queue[PusherMessage | BaseException | _End] = asyncio.Queue()
        self._pending: dict[str, asyncio.Future[None]] = {}
        self._failure: BaseException | None = None
        self._done = False
        self._closing = False
        self._reader = asyncio.create_task(self._read_forever(), name="pusher-socket-reader")

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        open_timeout: float = 5.0,
        activity_timeout: float | None = None,
        pong_timeout: float = DEFAULT_PONG_TIMEOUT,
    ) -> PusherSocket:
        """Open `url` and wait for `pusher:connection_established`.

        `activity_timeout` can only shorten the server's value, as pusher-js does.
        """
        ws: ClientConnection | None = None
        try:
            async with asyncio.timeout(open_timeout):
                # Keepalive is Pusher's own ping/pong (below), not websocket ping frames.
                ws = await ws_connect(url, open_timeout=None, ping_interval=None, close_timeout=2)
                established = await _await_established(ws)
        except TimeoutError as exc:
            if ws is not None:
                await ws.close()
            raise ConnectTimeout(
                f"no Pusher connection to {host_port(url)} within {open_timeout:g} s"
            ) from exc
        except WsConnectionClosed as exc:
            raise closed_error(exc, None) from exc
        except (OSError, InvalidHandshake, InvalidURI) as exc:
            raise connect_error(url, exc) from exc
        except BaseException:
            if ws is not None:
                await ws.close()
            raise
        server_timeout = float(established.get("activity_timeout") or DEFAULT_ACTIVITY_TIMEOUT)
        if activity_timeout is not None:
            server_timeout = min(server_timeout, activity_timeout)
        return cls(
            ws,
            socket_id=str(established["socket_id"]),
            activity_timeout=server_timeout,
            pong_timeout=pong_timeout,
        )

    async def subscribe(
        self,
        channel: str,
        auth: str | None = None,
        channel_data: str | None = None,
        timeout: float = 5.0,
    ) -> None:
        """Subscribe to `channel` and wait until the server confirms it."""
        self._raise_if_done()
        data: dict[str, str] = {"channel": channel}
        if auth is not None:
            data["auth"] = auth
        if channel_data is not None:
            data["channel_data"] = channel_data
        future = self._pending.get(channel)
        if future is None:
            future = self._pending[channel] = asyncio.get_running_loop().create_future()
        try:
            await self._send("pusher:subscribe", data)
            async with asyncio.timeout(timeout):
                # shield: a timeout must not cancel a future another subscribe() shares
                await asyncio.shield(future)
        except TimeoutError:
            # The future stays pending: a late answer still settles it, for a retry to see.
            raise SubscriptionError(channel, f"no answer within {timeout:g} s") from None

    async def events(self) -> AsyncIterator[PusherMessage]:
        """Yield application events until the socket is closed.

        Ends quietly after `close()`; raises `ConnectionClosed` (or `PongTimeout`) when the
        server ends the connection, after yielding everything that arrived before.
        """
        while True:
            item = await self._queue.get()
            if isinstance(item, PusherMessage):
                yield item
                continue
            # Put the end back so every later reader sees it too.
            self._queue.put_nowait(item)
            if isinstance(item, BaseException):
                raise item
            return

    async def close(self) -> None:
        """Close the connection (idempotent); a running `events()` ends without an error."""
        if self._closing:
            return
        self._closing = True
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        await self._ws.close()
        self._finish(None)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _send(self, event: str, data: dict[str, Any]) -> None:
        try:
            await self._ws.send(json.dumps({"event": event, "data": data}))
        except WsConnectionClosed as exc:
            # The reader sees the same closure with the server's pusher:error, a better
            # explanation: give it a moment to record that.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._reader), timeout=1.0)
            self._raise_if_done()
            raise closed_error(exc, None) from exc

    def _raise_if_done(self) -> None:
        if self._failure is not None:
            raise self._failure
        if self._done or self._closing:
            raise ConnectionClosed(1000, "closed by this client")

    async def _read_forever(self) -> None:
        last_error: dict[str, Any] | None = None  # a pusher:error sent just before closing
        try:
            while True:
                raw = await self._receive()
                message = parse_frame(raw)
                if message is None:
                    log.debug("ignoring a frame that is not a Pusher message: %.200r", raw)
                    continue
                if message.event == "pusher:error":
                    last_error = message.data if isinstance(message.data, dict) else None
                self._dispatch(message)
        except WsConnectionClosed as exc:
            self._finish(closed_error(exc, last_error))
        except PongTimeout as exc:
            self._finish(exc)
            # The peer is presumed dead: a closing handshake would only wait for it.
            self._ws.transport.abort()
        except Exception as exc:  # a bug here must reach the consumer, not vanish
            self._finish(exc)
            await self._ws.close()

    async def _receive(self) -> str | bytes:
        try:
            async with asyncio.timeout(self.activity_timeout):
                return await self._ws.recv()
        except TimeoutError:
            pass
        # Silence for activity_timeout: ask the server whether it is still there.
        await self._ws.send(json.dumps({"event": "pusher:ping", "data": {}}))
        try:
            async with asyncio.timeout(self.pong_timeout):
                # Any frame, not only the pong, proves the connection alive.
                return await self._ws.recv()
        except TimeoutError:
            raise PongTimeout(self.pong_timeout) from None

    def _dispatch(self, message: PusherMessage) -> None:
        event, channel = message.event, message.channel
        if event == "pusher:ping":
            task = asyncio.create_task(self._send_pong())
            task.add_done_callback(_ignore_result)
        elif event == "pusher_internal:subscription_succeeded" and channel is not None:
            self._settle(channel, None)
        elif event == "pusher:subscription_error" and channel is not None:
            self._settle(channel, subscription_error(channel, message.data))
        elif event == "pusher:error" and not announces_close(message.data):
            # Pusher reports a bad channel signature as a pusher:error without a channel;
            # it can only concern a subscription still waiting for its answer.
            for pending in list(self._pending):
                self._settle(pending, subscription_error(pending, message.data))
        elif event.startswith(("pusher:", "pusher_internal:")):
            pass  # pong, presence bookkeeping and the like
        else:
            self._queue.put_nowait(message)

    def _settle(self, channel: str, error: PusherSocketError | None) -> None:
        future = self._pending.pop(channel, None)
        if future is None or future.done():
            return
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)
            future.exception()  # mark retrieved: its waiter may have timed out

    async def _send_pong(self) -> None:
        with contextlib.suppress(WsConnectionClosed):
            await self._ws.send(json.dumps({"event": "pusher:pong", "data": {}}))

    def _finish(self, failure: BaseException | None) -> None:
        """Record how the connection ended, fail waiting subscriptions, end `events()`."""
        if self._done:
            return
        self._done = True
        self._failure = failure
        error = failure if failure is not None else ConnectionClosed(1000, "closed by this client")
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)
                future.exception()  # mark retrieved: its waiter may be gone
        self._pending.clear()
        self._queue.put_nowait(failure if failure is not None else _END)


async def _await_established(ws: ClientConnection) -> dict[str, Any]:
    """Read until `pusher:connection_established`; a `pusher:error` first ends the attempt."""
    last_error: dict[str, Any] | None = None
    while True:
        try:
            raw = await ws.recv()
        except WsConnectionClosed as exc:
            raise closed_error(exc, last_error) from exc
        message = parse_frame(raw)
        if message is None:
            continue
        if message.event == "pusher:connection_established" and isinstance(message.data, dict):
            return message.data
        if message.event == "pusher:error" and isinstance(message.data, dict):
            last_error = message.data


def _ignore_result(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()
