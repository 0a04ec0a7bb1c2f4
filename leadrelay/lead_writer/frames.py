"""The lead writer's wire: length-prefixed frames over a socket pair, both ways.

Frames, each way: a 4-byte little-endian length, then
  request  orjson `[request id, deadline, "lead", fields, status, idempotency key, socket id]`
           or `[request id, deadline, "status", change, idempotency key, socket id]`
           or `[request id, deadline, "pusher", events]` (an app's Pusher API trigger)
  answer   request id (u32), HTTP status (u16), then the JSON body to send
An empty request is a heartbeat, answered at once with request id 0.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable
from typing import cast

LENGTH = struct.Struct("<I")
ANSWER = struct.Struct("<IH")


class Frames(asyncio.Protocol):
    """Length-prefixed frames over a stream; writes made in one loop turn go out as one."""

    def __init__(self, on_frame: Callable[[bytes], None]) -> None:
        self._on_frame = on_frame
        self._buffer = bytearray()
        self._out: list[bytes] = []
        self.transport: asyncio.Transport | None = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        start = 0
        while len(buffer) - start >= 4:
            (size,) = LENGTH.unpack_from(buffer, start)
            if len(buffer) - start - 4 < size:
                break
            self._on_frame(bytes(buffer[start + 4 : start + 4 + size]))
            start += 4 + size
        del buffer[:start]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def send(self, *parts: bytes) -> None:
        if not self._out:
            asyncio.get_running_loop().call_soon(self.flush)
        self._out.append(LENGTH.pack(sum(map(len, parts))))
        self._out.extend(parts)

    def flush(self) -> None:
        if self._out and self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"".join(self._out))
        self._out.clear()
