"""A small Pusher Channels protocol 7 websocket client, for `tail`, `test-connection` and tests.

    sock = await PusherSocket.connect(ws_url(key, host=host, port=port, tls=False))
    async with sock:
        await sock.subscribe("leads")
        async for message in sock.events():
            ...

One background task reads the socket: it answers the server's `pusher:ping`, sends its own
ping after `activity_timeout` seconds of silence, settles pending subscriptions and queues
every other event for `events()`, so nothing that arrives during `subscribe()` is lost.

Exceptions:

    PusherSocketError           base; `str(err)` is one sentence a person can act on
    ├── ConnectError            the connection could not be opened
    │   ├── ConnectRefused      nothing listens at host:port
    │   ├── HostNotFound        the host name does not resolve
    │   ├── ConnectTimeout      no `pusher:connection_established` within `open_timeout`
    │   ├── TLSError            TLS handshake or certificate failure
    │   └── HandshakeRejected   the server answered HTTP instead of upgrading (`.status`)
    ├── ConnectionClosed        the server closed or went silent (`.code`, `.reason`,
    │   │                       `.reconnect`: what the close code asks the client to do)
    │   └── PongTimeout         no reply to our `pusher:ping` within `pong_timeout`
    └── SubscriptionError       `pusher:subscribe` was refused or not answered (`.channel`)

Lower-level errors (OSError, websockets, ssl) are translated at the boundary, `from exc`.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import errno
import hashlib
import hmac
import json
import logging
import socket
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Self
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed as WsConnectionClosed
from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI

from leadrelay import __version__

log = logging.getLogger(__name__)

PROTOCOL_VERSION: Final = 7
# Used when a server omits activity_timeout; it is Pusher's own default.
DEFAULT_ACTIVITY_TIMEOUT: Final = 120.0
# pusher-js waits 30 s for a pong before it gives a connection up.
DEFAULT_PONG_TIMEOUT: Final = 30.0


def ws_url(key: str, *, host: str, port: int, tls: bool) -> str:
    """The websocket URL a Pusher client opens for app `key`."""
    scheme = "wss" if tls else "ws"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # a bare IPv6 address
    query = f"protocol={PROTOCOL_VERSION}&client=leadrelay&version={__version__}&flash=false"
    return f"{scheme}://{host}:{port}/app/{key}?{query}"


def private_channel_auth(
    key: str, secret: str, socket_id: str, channel: str, channel_data: str | None = None
) -> str:
    """The `auth` value for subscribing `socket_id` to a private (or presence) channel."""
    to_sign = f"{socket_id}:{channel}"
    if channel_data is not None:
        to_sign += f":{channel_data}"
    digest = hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
    return f"{key}:{digest}"


class Reconnect(enum.Enum):
    """What a close code asks of the client (Pusher's close-code ranges)."""

    NEVER = "never"  # 4000-4099: the request itself is wrong; retrying as is cannot help
    BACKOFF = "backoff"  # 4100-4199 and anything unrecognised: wait at least a second
    NOW = "now"  # 4200-4299: the server asks for an immediate reconnect


class PusherSocketError(Exception):
    """Base of every error this module raises."""


class ConnectError(PusherSocketError):
    """The websocket connection could not be opened."""


class ConnectRefused(ConnectError):
    """Nothing accepts connections at the address."""


class HostNotFound(ConnectError):
    """The host name does not resolve."""


class ConnectTimeout(ConnectError):
    """The connection was not established within the time allowed."""


class TLSError(ConnectError):
    """The TLS handshake failed (certificate, protocol, or not TLS at all)."""


class HandshakeRejected(ConnectError):
    """The server answered the upgrade request with an HTTP error status."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ConnectionClosed(PusherSocketError):
    """The connection ended; `reconnect` says what its close code asks the client to do."""

    def __init__(self, code: int | None, reason: str) -> None:
        self.code = code
        self.reason = reason
        shown = f"code {code}" if code is not None else "no close code"
        super().__init__(f"Pusher connection closed ({shown}): {reason or 'no reason given'}")

    @property
    def reconnect(self) -> Reconnect:
        if self.code is not None and 4000 <= self.code <= 4099:
            return Reconnect.NEVER
        if self.code is not None and 4200 <= self.code <= 4299:
            return Reconnect.NOW
        return Reconnect.BACKOFF

    @property
    def should_reconnect(self) -> bool:
        return self.reconnect is not Reconnect.NEVER

    @property
    def min_reconnect_delay(self) -> float:
        """Seconds to wait at least before reconnecting (meaningless for `Reconnect.NEVER`)."""
        return 0.0 if self.reconnect is Reconnect.NOW else 1.0


class PongTimeout(ConnectionClosed):
    """The server did not answer our `pusher:ping`: the connection is presumed dead."""

    def __init__(self, pong_timeout: float) -> None:
        super().__init__(None, f"no pong within {pong_timeout:g} s of our ping")


class SubscriptionError(PusherSocketError):
    """The server refused a subscription, or did not answer it in time."""

    def __init__(self, channel: str, message: str, *, status: int | None = None) -> None:
        super().__init__(f"subscribing to {channel!r} failed: {message}")
        self.channel = channel
        self.status = status


@dataclass(frozen=True, slots=True)
class PusherMessage:
    """One application event; `data` is JSON-decoded when the server sent it as JSON text."""

    channel: str | None
    event: str
    data: Any


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
                f"no Pusher connection to {_where(url)} within {open_timeout:g} s"
            ) from exc
        except WsConnectionClosed as exc:
            raise _closed_error(exc, None) from exc
        except (OSError, InvalidHandshake, InvalidURI) as exc:
            raise _connect_error(url, exc) from exc
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
            raise _closed_error(exc, None) from exc

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
                message = _parse(raw)
                if message is None:
                    log.debug("ignoring a frame that is not a Pusher message: %.200r", raw)
                    continue
                if message.event == "pusher:error":
                    last_error = message.data if isinstance(message.data, dict) else None
                self._dispatch(message)
        except WsConnectionClosed as exc:
            self._finish(_closed_error(exc, last_error))
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
            self._settle(channel, _subscription_error(channel, message.data))
        elif event == "pusher:error" and not _announces_close(message.data):
            # Pusher reports a bad channel signature as a pusher:error without a channel;
            # it can only concern a subscription still waiting for its answer.
            for pending in list(self._pending):
                self._settle(pending, _subscription_error(pending, message.data))
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
            raise _closed_error(exc, last_error) from exc
        message = _parse(raw)
        if message is None:
            continue
        if message.event == "pusher:connection_established" and isinstance(message.data, dict):
            return message.data
        if message.event == "pusher:error" and isinstance(message.data, dict):
            last_error = message.data


def _parse(raw: str | bytes) -> PusherMessage | None:
    try:
        frame = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(frame, dict) or not isinstance(frame.get("event"), str):
        return None
    data = frame.get("data")
    # Pusher sends `data` as a JSON string inside the JSON frame; decode the inner layer.
    if isinstance(data, str):
        with contextlib.suppress(ValueError):
            data = json.loads(data)
    channel = frame.get("channel")
    return PusherMessage(channel if isinstance(channel, str) else None, frame["event"], data)


def _closed_error(exc: WsConnectionClosed, last_error: dict[str, Any] | None) -> ConnectionClosed:
    code = exc.rcvd.code if exc.rcvd is not None else None
    reason = exc.rcvd.reason if exc.rcvd is not None else ""
    if last_error is not None:
        # The pusher:error before the close frame says why in words (uWS sends no reason).
        message = last_error.get("message")
        reason = reason or (message if isinstance(message, str) else "")
        error_code = last_error.get("code")
        if (code is None or not 4000 <= code <= 4999) and isinstance(error_code, int):
            code = error_code
    if code is None and not reason:
        reason = "the connection dropped without a close frame"
    return ConnectionClosed(code, reason)


def _announces_close(data: Any) -> bool:
    """Whether a pusher:error carries a close code (4000-4299): the close frame follows."""
    code = data.get("code") if isinstance(data, dict) else None
    return isinstance(code, int) and 4000 <= code <= 4299


def _subscription_error(channel: str, data: Any) -> SubscriptionError:
    if not isinstance(data, dict):
        return SubscriptionError(channel, str(data))
    # soketi: {"type", "error", "status"}; Pusher's pusher:error: {"code", "message"}
    text = data.get("error") or data.get("message") or json.dumps(data)
    status = data.get("status", data.get("code"))
    return SubscriptionError(channel, str(text), status=status if isinstance(status, int) else None)


def _where(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)


def _connect_error(url: str, exc: BaseException) -> ConnectError:
    where = _where(url)
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        return HandshakeRejected(
            f"{where} refused the websocket upgrade with HTTP {status}", status=status
        )
    if isinstance(exc, InvalidURI):
        return ConnectError(f"not a websocket URL: {url!r}")
    if isinstance(exc, InvalidHandshake):
        return ConnectError(f"{where} did not speak the websocket protocol: {exc}")
    if isinstance(exc, ssl.SSLError):
        return TLSError(f"TLS with {where} failed: {exc.reason or exc}")
    if isinstance(exc, socket.gaierror):
        return HostNotFound(f"cannot resolve {urlsplit(url).hostname!r}: {exc.strerror}")
    if _is_refused(exc):
        return ConnectRefused(f"connection refused by {where}: is the Pusher server running?")
    return ConnectError(f"cannot connect to {where}: {exc}")


def _is_refused(exc: BaseException) -> bool:
    if isinstance(exc, ConnectionRefusedError):
        return True
    # asyncio folds one failure per resolved address (::1 and 127.0.0.1 for localhost)
    # into a plain OSError whose text lists them.
    text = str(exc)
    refused = f"[Errno {errno.ECONNREFUSED}]"
    return text.startswith("Multiple exceptions") and text.count("[Errno") == text.count(refused)


def _ignore_result(task: asyncio.Task[None]) -> None:
    if not task.cancelled():
        task.exception()
