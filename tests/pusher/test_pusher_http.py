"""The relay's HTTP/1.1 client (leadrelay.pusher.http.PooledBackend) against a scripted server.

soketi answers every request the same way (Content-Length, then it closes), so the
framings and failures that real Pusher, a proxy or a broken network may produce come from
a small server here, at the network edge.  Everything above it is the real `pusher` package
signing real requests; test_relay.py and test_faults.py run the same client on soketi.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import trustme

from leadrelay.errors import PusherError
from leadrelay.pusher.config import PusherConfig
from leadrelay.pusher.http import PusherClient

ITEM = {"channel": "admin", "name": "lead.assigned", "data": '{"seq":1}'}
OK = b'{"batch":[{}]}'

Answer = Callable[[int, bytes], Awaitable[bytes | None]]


class Scripted:
    """Answers request n (0-based, over all connections) with `answer(n, request)`;
    None closes the connection without a word."""

    def __init__(self, answer: Answer, tls: ssl.SSLContext | None = None) -> None:
        self.answer = answer
        self.tls = tls
        self.requests: list[bytes] = []
        self.connections = 0
        self.port = 0
        self.server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[Any]] = set()

    async def __aenter__(self) -> Scripted:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = int(self.server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *exc: Any) -> None:
        assert self.server is not None
        self.server.close()
        for task in self._handlers:
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                reply = await self.answer(len(self.requests) - 1, request)
                if reply is None:
                    break
                writer.write(reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def response(status: int, body: bytes, *headers: str) -> bytes:
    head = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def client_for(port: int, timeout: float = 2.0, scheme: str = "http") -> PusherClient:
    config = PusherConfig(
        app_id="1", key="k", secret="s", host="127.0.0.1", port=port, scheme=scheme
    )
    return PusherClient(config, timeout=timeout)


async def error_of(client: PusherClient) -> PusherError:
    """The PusherError one trigger raises; the client is closed after it."""
    try:
        with pytest.raises(PusherError) as caught:
            await client.trigger_batch([ITEM])
        return caught.value
    finally:
        await client.aclose()


async def trigger(server: Scripted, times: int = 1, timeout: float = 2.0) -> None:
    client = client_for(server.port, timeout)
    try:
        for _ in range(times):
            await client.trigger_batch([ITEM])
    finally:
        await client.aclose()


def run(answer: Answer, times: int = 1, timeout: float = 2.0) -> Scripted:
    async def main() -> Scripted:
        async with Scripted(answer) as server:
            await trigger(server, times, timeout)
            return server

    return asyncio.run(main())


def fails(answer: Answer, timeout: float = 2.0) -> PusherError:
    with pytest.raises(PusherError) as caught:
        run(answer, timeout=timeout)
    return caught.value


def test_request_is_a_signed_http_1_1_post_with_its_length() -> None:
    async def answer(n: int, request: bytes) -> bytes:
        return response(200, OK)

    server = run(answer)
    head, _, body = server.requests[0].partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0].startswith("POST /apps/1/batch_events?auth_key=k&")
    assert "auth_signature=" in lines[0] and lines[0].endswith(" HTTP/1.1")
    assert f"Host: 127.0.0.1:{server.port}" in lines
    assert f"Content-Length: {len(body)}" in lines
    assert b'"lead.assigned"' in body


def test_keep_alive_connection_is_reused() -> None:
    async def answer(n: int, request: bytes) -> bytes:
        return response(200, OK)

    server = run(answer, times=5)
    assert len(server.requests) == 5
    assert server.connections == 1


def test_connection_close_answer_is_not_reused() -> None:
    async def answer(n: int, request: bytes) -> bytes:
        return response(200, OK, "Connection: close")

    server = run(answer, times=3)
    assert server.connections == 3


def test_chunked_answer_is_read_and_the_connection_kept() -> None:
    async def answer(n: int, request: bytes) -> bytes:
        return (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b'4\r\n{"ba\r\na;ext=1\r\ntch":[{}]}\r\n0\r\n\r\n'
        )

    server = run(answer, times=2)
    assert server.connections == 1


def test_kept_connection_closed_after_the_request_is_not_sent_again() -> None:
    """A request written to a kept-alive connection that then closed without an answer may
    have been received: it is an error for the relay's retry, never a silent second send."""

    async def answer(n: int, request: bytes) -> bytes | None:
        return None if n == 1 else response(200, OK)

    async def main() -> tuple[Scripted, PusherError]:
        async with Scripted(answer) as server:
            client = client_for(server.port)
            await client.trigger_batch([ITEM])
            return server, await error_of(client)

    server, err = asyncio.run(main())
    assert len(server.requests) == 2  # the second request was sent once
    assert err.kind == "protocol" and "may have been received" in str(err)


def test_kept_connection_the_server_closed_while_idle_is_replaced() -> None:
    """A connection the server closed before the next request is not used: the request
    goes, once, on a new one."""
    requests: list[bytes] = []
    closed = asyncio.Event

    async def main() -> int:
        done = closed()
        connections = 0

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal connections
            connections += 1
            requests.append(await reader.readuntil(b"\r\n\r\n"))
            await reader.readexactly(int(requests[-1].split(b"Content-Length: ")[1].split()[0]))
            writer.write(response(200, OK))
            await writer.drain()
            writer.close()  # an idle timeout, right after the answer
            await writer.wait_closed()
            done.set()

        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        client = client_for(int(server.sockets[0].getsockname()[1]))
        try:
            await client.trigger_batch([ITEM])
            await done.wait()
            await client.trigger_batch([ITEM])
        finally:
            await client.aclose()
            server.close()
            await server.wait_closed()
        return connections

    assert asyncio.run(main()) == 2
    assert len(requests) == 2


def test_error_status_is_named() -> None:
    async def answer(n: int, request: bytes) -> bytes:
        return response(401, b'{"error":"bad signature"}')

    err = fails(answer)
    assert err.kind == "auth" and "HTTP 401" in str(err)


def test_retry_after_is_read_from_a_429() -> None:
    async def answer(n: int, request: bytes) -> bytes:
        return response(429, b"slow down", "Retry-After: 7")

    err = fails(answer)
    assert err.kind == "rate_limited"
    assert getattr(err, "retry_after", None) == 7.0


def test_silence_is_a_timeout() -> None:
    async def answer(n: int, request: bytes) -> bytes:
        await asyncio.sleep(5)
        return response(200, OK)

    assert fails(answer, timeout=0.3).kind == "timeout"


def test_close_without_an_answer_on_a_new_connection_fails() -> None:
    async def answer(n: int, request: bytes) -> bytes | None:
        return None

    err = fails(answer)
    assert err.kind == "protocol" and "closed before an answer" in str(err)


@pytest.mark.parametrize(
    "reply",
    [
        b"SSH-2.0-OpenSSH_9.2\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
    ids=["not-http", "huge-length", "bad-chunk"],
)
def test_malformed_answer_is_a_protocol_error(reply: bytes) -> None:
    async def answer(n: int, request: bytes) -> bytes:
        return reply

    assert fails(answer).kind == "protocol"


def test_closed_port_is_refused() -> None:
    async def main() -> PusherError:
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        return await error_of(client_for(port))

    assert asyncio.run(main()).kind == "refused"


def test_https_to_a_plain_http_server_is_a_tls_error() -> None:
    async def main() -> PusherError:
        async def plain(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(plain, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            return await error_of(client_for(port, scheme="https"))
        finally:
            server.close()
            await server.wait_closed()

    err = asyncio.run(main())
    assert err.kind == "tls", err


def test_https_with_a_trusted_certificate_keeps_its_connection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pusher itself is HTTPS: the client verifies the certificate (from the system's trust
    store, here a test CA through SSL_CERT_FILE) and reuses the TLS connection."""
    ca = trustme.CA()
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)

    async def main() -> Scripted:
        async def answer(n: int, request: bytes) -> bytes:
            return response(200, OK)

        async with Scripted(answer, tls=server_context) as server:
            # the test CA is not trusted yet
            refused = await error_of(client_for(server.port, scheme="https"))
            assert refused.kind == "tls", refused
            monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
            client = client_for(server.port, scheme="https")
            try:
                for _ in range(3):
                    await client.trigger_batch([ITEM])
            finally:
                await client.aclose()
            return server

    server = asyncio.run(main())
    assert len(server.requests) == 3
    assert server.connections == 1  # the refused handshake never became a connection
