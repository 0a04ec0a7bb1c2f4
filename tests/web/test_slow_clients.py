"""Slow and oversized requests against a real `leadrelay serve`, over raw sockets.

The review saw a connection that sent its headers a byte at a time, and one that sent half a
body, both still open after 20 s; a 4 MB header and 5,000 headers answered 200; no cap on
connections.  Here the deadline for a whole request is 2 s: a slow client is cut off soon
after it (408 or the connection closed), and oversized heads are refused (431 or closed),
while the same daemon keeps answering everyone else.
"""

from __future__ import annotations

import contextlib
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support.serve import Serve, cli

DEADLINE = 2.0
# the deadline, plus the sweep that finds it (every half second) and a loaded machine
CUT_OFF_BY = DEADLINE + 4.0


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    db = tmp_path_factory.mktemp("slow") / "leadrelay.db"
    cli(db, "init")
    env = {"LEADRELAY_REQUEST_TIMEOUT_SECONDS": str(DEADLINE)}
    with Serve(db, relay="off", env=env) as server:
        yield server


def _connect(server: Serve) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def _answer_or_close(sock: socket.socket, wait: float) -> bytes | None:
    """What the server sent before it closed (b"" for a bare close); None while it is still
    open after `wait` seconds."""
    readable, _, _ = select.select([sock], [], [], wait)
    if not readable:
        return None
    received = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            received += chunk
    return received


def _drip(sock: socket.socket, data: bytes, every: float = 0.1) -> tuple[float, bytes]:
    """Send `data` a byte at a time until the server hangs up: (seconds it took, what it
    answered); fails when it never does within twice CUT_OFF_BY."""
    started = time.monotonic()
    for n in range(len(data)):
        try:
            sock.send(data[n : n + 1])
        except (BrokenPipeError, ConnectionResetError):
            return time.monotonic() - started, b""
        answer = _answer_or_close(sock, every)
        if answer is not None:
            return time.monotonic() - started, answer
        if time.monotonic() - started > 2 * CUT_OFF_BY:
            break
    raise AssertionError(f"still open after {time.monotonic() - started:.1f} s")


def _assert_cut_off(took: float, answer: bytes) -> None:
    assert DEADLINE - 0.5 <= took <= CUT_OFF_BY, took
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408 "), answer[:200]
    if answer:
        assert b'"code":"request_timeout"' in answer


def _alive(server: Serve) -> None:
    assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200


def test_headers_sent_a_byte_at_a_time_are_cut_off(daemon: Serve) -> None:
    head = b"POST /api/leads HTTP/1.1\r\nHost: slow\r\nContent-Type: application/json\r\n"
    with _connect(daemon) as sock:
        took, answer = _drip(sock, head + b"X-Slow: " + b"s" * 400)
    _assert_cut_off(took, answer)
    _alive(daemon)


def test_half_a_body_is_cut_off(daemon: Serve) -> None:
    head = (
        b"POST /api/leads HTTP/1.1\r\nHost: slow\r\nContent-Type: application/json\r\n"
        + f"Authorization: Bearer {daemon.admin_token}\r\n".encode()
        + b"Content-Length: 100\r\n\r\n"
    )
    with _connect(daemon) as sock:
        started = time.monotonic()
        sock.sendall(head + b'{"name": "half')
        answer = _answer_or_close(sock, 2 * CUT_OFF_BY)
        took = time.monotonic() - started
    assert answer is not None, "still open"
    _assert_cut_off(took, answer)
    _alive(daemon)


def test_a_connection_that_sends_nothing_is_closed(daemon: Serve) -> None:
    with _connect(daemon) as sock:
        started = time.monotonic()
        answer = _answer_or_close(sock, 2 * CUT_OFF_BY)
        took = time.monotonic() - started
    assert answer is not None, "still open"
    _assert_cut_off(took, answer)


def _send_head(server: Serve, head: bytes) -> bytes:
    """Send a GET with `head` as its headers; what came back (b"" when the server closed)."""
    with _connect(server) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            request = b"GET /healthz HTTP/1.1\r\nHost: big\r\nConnection: close\r\n"
            sock.sendall(request + head + b"\r\n")
        answer = _answer_or_close(sock, 10)
    assert answer is not None, "no answer and still open"
    return answer


@pytest.mark.parametrize(
    "head",
    [
        pytest.param(b"X-Big: " + b"b" * (4 * 1024 * 1024) + b"\r\n", id="a 4 MB header"),
        pytest.param(b"".join(b"X-H%d: v\r\n" % n for n in range(5000)), id="5000 headers"),
        pytest.param(b"X-Big: " + b"b" * 17_000 + b"\r\n", id="just over 16 KiB"),
        pytest.param(b"".join(b"X-H%d: v\r\n" % n for n in range(101)), id="101 headers"),
    ],
)
def test_oversized_heads_are_refused(daemon: Serve, head: bytes) -> None:
    answer = _send_head(daemon, head)
    assert answer == b"" or answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    if answer:
        assert b'"code":"headers_too_large"' in answer
    _alive(daemon)


def test_heads_within_the_caps_are_served(daemon: Serve) -> None:
    for head in (
        b"X-Big: " + b"b" * 15_000 + b"\r\n",
        b"".join(b"X-H%d: v\r\n" % n for n in range(95)),
    ):
        assert _send_head(daemon, head).startswith(b"HTTP/1.1 200 ")


def test_connections_past_the_limit_are_503(tmp_path: Path) -> None:
    db = tmp_path / "leadrelay.db"
    cli(db, "init")
    with Serve(db, relay="off", env={"LEADRELAY_MAX_CONNECTIONS": "4"}) as server:
        held = [_connect(server) for _ in range(4)]
        try:
            refused = httpx.get(f"{server.url}/healthz", timeout=10)
            assert refused.status_code == 503
        finally:
            for sock in held:
                sock.close()
        deadline = time.monotonic() + 10
        while httpx.get(f"{server.url}/healthz", timeout=10).status_code != 200:
            assert time.monotonic() < deadline, "still refused once the others closed"
            time.sleep(0.05)
