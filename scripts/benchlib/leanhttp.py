"""A lean HTTP/1.1 client for the end-to-end load, and a pusher backend on it.

The end-to-end row sends 1,000 requests a second from the bench's own process, on the same
two cores as the servers it measures.  With aiohttp that process took 56% of a core beside
leadrelay and 95% beside soketi on a slow host: the load generator was the busiest process
in the run, and it saturated in the peer's (docs/dev/performance.md).  Here each connection is
an asyncio protocol that carries one small request at a time and reads one answer framed by
Content-Length (or by the connection closing); idle connections are kept for the next one.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

from pusher.http import process_response


class _Unanswered(ConnectionError):
    """Closed before a byte of the answer came: a kept connection the server let go."""


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.answer: asyncio.Future[tuple[int, bytes, bool]] | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self._answer_if_complete(eof=False)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._answer_if_complete(eof=True)
        if self.answer is not None and not self.answer.done():
            unanswered = _Unanswered if not self.buffer else ConnectionError
            self.answer.set_exception(unanswered("the connection closed before an answer"))

    def _answer_if_complete(self, *, eof: bool) -> None:
        if self.answer is None or self.answer.done():
            return
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buffer[:end]).lower()
        start = end + 4
        marker = head.find(b"\r\ncontent-length:")
        if marker >= 0:
            line_end = head.find(b"\r\n", marker + 2)
            length = int(head[marker + 17 : line_end if line_end >= 0 else None])
        elif eof:
            length = len(self.buffer) - start  # framed by the close
        else:
            return
        if len(self.buffer) < start + length:
            return
        body = bytes(self.buffer[start : start + length])
        del self.buffer[: start + length]
        keep = marker >= 0 and b"\r\nconnection: close" not in head
        self.answer.set_result((int(head[9:12]), body, keep))


class LeanClient:
    """Requests to one host and port over kept-alive connections, as many at once as asked."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._idle: list[_Connection] = []

    def encode(self, method: str, target: str, headers: dict[str, str], body: bytes) -> bytes:
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

    async def send(self, request: bytes) -> tuple[int, bytes]:
        """The status and body of one encoded request."""
        while self._idle:
            connection = self._idle.pop()
            if connection.closed:
                continue
            try:
                return await self._over(connection, request)
            except _Unanswered:
                continue  # the server closed it while it was idle: send on a fresh one
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_connection(_Connection, self.host, self.port)
        return await self._over(connection, request)

    async def _over(self, connection: _Connection, request: bytes) -> tuple[int, bytes]:
        assert connection.transport is not None
        connection.answer = asyncio.get_running_loop().create_future()
        connection.transport.write(request)
        try:
            status, body, keep = await connection.answer
        except BaseException:
            connection.transport.close()
            raise
        if keep and not connection.closed:
            self._idle.append(connection)
        else:
            connection.transport.close()
        return status, body

    def close(self) -> None:
        for connection in self._idle:
            if connection.transport is not None:
                connection.transport.close()
        self._idle.clear()


class LeanPusherBackend:
    """A backend for the `pusher` package on one shared LeanClient (one per event loop run)."""

    client: LeanClient | None = None

    def __init__(self, client: Any) -> None:
        self.pusher = client

    async def send_request(self, request: Any) -> Any:
        if LeanPusherBackend.client is None:
            LeanPusherBackend.client = LeanClient(self.pusher.host, self.pusher.port)
        lean = LeanPusherBackend.client
        body = request.body or b""
        encoded = lean.encode(
            request.method,
            request.signed_path,
            request.headers,
            body.encode() if isinstance(body, str) else body,
        )
        status, answer = await lean.send(encoded)
        return process_response(status, answer.decode("utf-8", errors="replace"))

    @classmethod
    def close(cls) -> None:
        if cls.client is not None:
            cls.client.close()
            cls.client = None
