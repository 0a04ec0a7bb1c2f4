"""The HTTP protocol `serve` runs: uvicorn's httptools one, with one send a response and
limits on what a client may send.

uvicorn's httptools protocol has no cap on the size or number of headers (h11's is 16 KiB;
httptools buffers a header of any size) and no deadline while a request arrives: it arms
its keep-alive timer only between requests, so a client that sends its headers a byte at
a time, or half a body, holds a connection and a file descriptor for as long as it likes.
Here, per connection:

- the head of a request (request line and headers) may take `max_header_bytes` at most,
  counted as it arrives (before httptools has buffered much more) and once it is whole:
  past it, 431;
- at most `max_header_count` headers: past it, 431;
- a whole request (its head and body) must arrive within `request_timeout_seconds` of its
  first byte, and a new connection's first request within as long of the connect: past it,
  408 (or, when a response has begun, the connection is closed).  One sweep a tick of the
  server (`sweep`) finds them; a request costs one clock read and no timer.

A refusal is the contract's JSON error body, with `connection: close`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, cast

import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from leadrelay.config import Settings
from leadrelay.errors import ApiError, HeadersTooLarge, RequestTimeout


class _OneSend:
    """A transport whose writes in one loop turn leave in one send(): uvicorn writes a
    response's head and its body apart, two system calls and two TCP segments."""

    __slots__ = ("_transport", "_out")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._out: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._out:
            asyncio.get_running_loop().call_soon(self._flush)
        self._out.append(data)

    def _flush(self) -> None:
        if self._out:
            data = b"".join(self._out) if len(self._out) > 1 else self._out[0]
            self._out.clear()
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class _Refused(Exception):
    """Raised in a parser callback: httptools stops, and uvicorn answers (send_400_response)."""


class LimitedHttpProtocol(HttpToolsProtocol):
    """See the module docstring; the limits are class attributes (`protocol_for`)."""

    max_header_bytes = 16384
    max_header_count = 100
    request_timeout = 10.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(cast(asyncio.Transport, _OneSend(transport)))
        # the first request is due within the deadline of the connect
        self.receiving_since: float | None = self.loop.time()
        self._in_head = True
        self._head_bytes = 0
        self._refusal: ApiError | None = None

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._in_head:  # the head is still incomplete after this chunk
            self._head_bytes += len(data)
            if self._head_bytes > self.max_header_bytes and not self.transport.is_closing():
                self.refuse(self._too_large("headers of more than", self.max_header_bytes))

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.receiving_since = self.loop.time()
        self._in_head = True
        self._head_bytes = 0

    def on_headers_complete(self) -> None:
        self._in_head = False
        if len(self.headers) > self.max_header_count:
            self._refusal = self._too_large("more than", self.max_header_count, "headers")
            raise _Refused
        # a head that came in one chunk with its end was not counted as it arrived
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > self.max_header_bytes:
            self._refusal = self._too_large("headers of more than", self.max_header_bytes)
            raise _Refused
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self.receiving_since = None
        super().on_message_complete()

    def _too_large(self, what: str, limit: int, unit: str = "bytes") -> HeadersTooLarge:
        return HeadersTooLarge(
            f"the request has {what} {limit} {unit}; send fewer or smaller headers"
        )

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a parser error, and so to a refusal raised in a callback."""
        if self._refusal is not None:
            self.refuse(self._refusal)
        else:
            super().send_400_response(msg)

    def past_deadline(self, now: float) -> None:
        """Cut the connection off when its request has been arriving for too long."""
        since = self.receiving_since
        if since is None or now - since <= self.request_timeout:
            return
        if self.transport.is_closing():
            return
        self.receiving_since = None
        message = f"the request did not arrive within {self.request_timeout:g} s"
        self.refuse(RequestTimeout(message + "; send it whole, at once"))

    def refuse(self, error: ApiError) -> None:
        """Answer `error` with the contract's error body (unless a response has begun) and
        close the connection; the request's app task, if any, sees a disconnect."""
        cycle = self.cycle
        answered = cycle is not None and cycle.response_started and not cycle.response_complete
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # its receive() says so, its send() writes nothing
            cycle.message_event.set()
        if not answered:
            body = orjson.dumps(error.body())
            self.transport.write(
                STATUS_LINE[error.status]
                + b"content-type: application/json\r\ncontent-length: "
                + str(len(body)).encode()
                + b"\r\nconnection: close\r\n\r\n"
                + body
            )
        self.transport.close()


def protocol_for(settings: Settings) -> type[LimitedHttpProtocol]:
    """The protocol class with the settings' limits."""
    return cast(
        type[LimitedHttpProtocol],
        type(
            "HttpProtocol",
            (LimitedHttpProtocol,),
            {
                "max_header_bytes": settings.max_header_bytes,
                "max_header_count": settings.max_header_count,
                "request_timeout": settings.request_timeout_seconds,
            },
        ),
    )


def sweep(connections: Iterable[object], now: float) -> None:
    """Cut off every connection whose request is past its deadline."""
    for connection in list(connections):
        if isinstance(connection, LimitedHttpProtocol):
            connection.past_deadline(now)
