"""An HTTP proxy at the network edge between leadrelay and a real soketi, with faults on command.

    with FaultyPusher(soketi) as proxy:
        point_at_proxy(db, proxy)          # leadrelay's Pusher settings now name the proxy
        proxy.fault("status", status=500)  # every request answered 500 until...
        proxy.clear()                      # ...requests go through to soketi again

Faults, checked when a request arrives:
    status  answer `status` (with `Retry-After: retry_after` when given), never forward; with
            `when`, only requests whose body holds those bytes (the others go through)
    slow    wait `delay` seconds, then forward (the caller may have given up by then: a
            delivery it counts as failed still reaches soketi, as a slow real server's would)
    hang    read the request and never answer; the connection is closed on `clear()`
`down()` closes the listening socket and every open connection (connection refused, like a
server that is not running); `up()` listens again on the same port.  When soketi itself is
down the proxy drops the client's connection without an answer, as a dead upstream looks.

The proxy runs an asyncio loop in a thread of its own; `counts` tallies what it did
(`requests`, `forwarded`, `status_500`, `slow`, `hung`, `upstream_down`).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Coroutine
from http import HTTPStatus
from typing import Any, Self

import httpx

from support.soketi import Soketi, free_port

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "te"}
MAX_HEAD = 64 * 1024


class FaultyPusher:
    """One proxy on a free loopback port in front of one soketi."""

    host = "127.0.0.1"

    def __init__(self, upstream: Soketi) -> None:
        self.upstream = upstream
        self.port = 0
        self.counts: Counter[str] = Counter()
        self.arrivals: list[float] = []  # time.monotonic() of each request
        self._fault: dict[str, Any] = {"kind": None}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._lifted: asyncio.Event | None = None
        self._http: httpx.AsyncClient | None = None

    # control, from the test's thread -----------------------------------------------
    def start(self) -> Self:
        self._thread.start()
        self.port = free_port(self.host)
        self._call(self._setup())
        return self

    def fault(
        self,
        kind: str,
        *,
        status: int = 500,
        retry_after: float | None = None,
        delay: float = 0.0,
        when: bytes | None = None,
    ) -> None:
        """Inject a fault into every request from now on, until `clear()`."""
        if kind not in ("status", "slow", "hang"):
            raise ValueError(f"unknown fault {kind!r}: use status, slow or hang")
        self._fault = {
            "kind": kind,
            "status": status,
            "retry_after": retry_after,
            "delay": delay,
            "when": when,
        }

    def clear(self) -> None:
        """Lift the fault: forward again, and close the connections `hang` was holding."""
        self._fault = {"kind": None}
        self._call(self._release_hung())

    def down(self) -> None:
        """Stop listening and drop every connection: the relay's connects are refused."""
        self._call(self._close_listener())

    def up(self) -> None:
        self._call(self._listen())

    def wait_requests(self, count: int, timeout: float = 15.0) -> int:
        """Block until the proxy has seen `count` requests in all; return the total."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.counts["requests"] >= count:
                return self.counts["requests"]
            time.sleep(0.02)
        raise AssertionError(f"expected {count} requests at the proxy, saw {dict(self.counts)}")

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        self._fault = {"kind": None}
        self._call(self._teardown(), timeout=60)
        self._loop.call_soon_threadsafe(self._loop.stop)
        # the loop ends its tasks first: closing it under them would leave their sockets to the
        # garbage collector, whose ResourceWarning fails whatever test runs then
        self._thread.join(30)
        if not self._thread.is_alive():
            self._loop.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, coro: Coroutine[Any, Any, Any], timeout: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    # the loop's side -------------------------------------------------------------------
    async def _setup(self) -> None:
        self._lifted = asyncio.Event()
        self._http = httpx.AsyncClient(base_url=self.upstream.url, timeout=30)
        await self._listen()

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(
                self._serve_connection, self.host, self.port, reuse_address=True
            )

    async def _close_listener(self) -> None:
        if self._server is not None:
            # Stop accepting first, and let the connections already accepted reach their
            # handlers: Python 3.11's Server.close() under a connection that was accepted but
            # not yet set up fails that setup on an assertion (Server._attach) and leaks its
            # socket, which the garbage collector then reports in whatever test runs next.
            for sock in self._server.sockets:
                asyncio.get_running_loop().remove_reader(sock.fileno())
            await _loop_turns(3)  # accepted -> transport -> connection_made -> handler
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _release_hung(self) -> None:
        assert self._lifted is not None
        self._lifted.set()
        self._lifted = asyncio.Event()

    async def _teardown(self) -> None:
        await self._release_hung()
        await self._close_listener()
        if self._http is not None:
            await self._http.aclose()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        if others:
            await asyncio.wait(others, timeout=30)  # each ends at once, unless starved of CPU

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self._writers.add(writer)
        try:
            while await self._serve_request(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:
            pass  # closing down: end quietly (a cancelled handler is logged as an error)
        finally:
            self._writers.discard(writer)
            writer.transport.abort()

    async def _serve_request(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Handle one request; False when the connection is done."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return False
        if len(head) > MAX_HEAD:
            return False
        request_line, *header_lines = head.decode("latin-1").split("\r\n")
        method, target, _version = request_line.split(" ", 2)
        headers: list[tuple[str, str]] = []
        for line in header_lines:
            if line:
                name, _, value = line.partition(":")
                headers.append((name.strip(), value.strip()))
        length = next((int(v) for k, v in headers if k.lower() == "content-length"), 0)
        body = await reader.readexactly(length) if length else b""
        self.counts["requests"] += 1
        self.arrivals.append(time.monotonic())

        fault = self._fault
        if fault["kind"] == "status" and fault["when"] is not None and fault["when"] not in body:
            fault = {"kind": None}
        if fault["kind"] == "status":
            self.counts[f"status_{fault['status']}"] += 1
            extra = []
            if fault["retry_after"] is not None:
                extra.append(("Retry-After", f"{fault['retry_after']:g}"))
            await self._respond(writer, fault["status"], b'{"error":"injected fault"}', extra)
            return True
        if fault["kind"] == "hang":
            self.counts["hung"] += 1
            assert self._lifted is not None
            await self._lifted.wait()
            return False
        if fault["kind"] == "slow":
            self.counts["slow"] += 1
            await asyncio.sleep(fault["delay"])

        assert self._http is not None
        forward = [(k, v) for k, v in headers if k.lower() not in HOP_BY_HOP]
        try:
            response = await self._http.request(method, target, headers=forward, content=body)
        except httpx.HTTPError:
            self.counts["upstream_down"] += 1
            return False  # drop the connection unanswered, as a dead server looks
        self.counts["forwarded"] += 1
        keep = [
            (k, v)
            for k, v in response.headers.items()
            if k.lower() in ("content-type", "retry-after")
        ]
        await self._respond(writer, response.status_code, response.content, keep)
        return True

    async def _respond(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        body: bytes,
        headers: list[tuple[str, str]],
    ) -> None:
        lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}"]
        lines += [f"{k}: {v}" for k, v in headers]
        if not any(k.lower() == "content-type" for k, _ in headers):
            lines.append("Content-Type: application/json")
        lines.append(f"Content-Length: {len(body)}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        await writer.drain()


async def _loop_turns(count: int) -> None:
    """Yield to the loop `count` times: what was scheduled before runs first."""
    for _ in range(count):
        await asyncio.sleep(0)


def point_at_proxy(db: Any, proxy: FaultyPusher, *, secret: str | None = None) -> None:
    """Store Pusher settings that name the proxy (with soketi's app, key and secret)."""
    from support.serve import point_at_soketi

    point_at_soketi(db, proxy.upstream, via=(proxy.host, proxy.port), secret=secret)
