"""The relay's wake-up: one datagram, "events were committed", to a socket named after the db.

Whoever commits events (the daemon, its lead writer, a CLI command) sends it, so the relay
starts at once instead of at its next poll.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import socket
from pathlib import Path
from typing import Any

from leadrelay.config import describe_db, resolved_db

log = logging.getLogger("leadrelay.relay")


def wake_address(db: Path | str) -> str:
    """An abstract unix socket name (no file to clean up), one per database."""
    digest = hashlib.sha256(resolved_db(db).encode()).hexdigest()[:24]
    return f"\0leadrelay-relay-{digest}"


class Waker:
    """Sends "events were committed" to whichever relay serves this database."""

    def __init__(self, db: Path | str) -> None:
        self.address = wake_address(db)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.setblocking(False)

    def __call__(self, _count: int = 0) -> None:
        try:
            self._sock.sendto(b"!", self.address)
        except OSError:
            pass  # no relay listening, or its queue is full: it is awake anyway

    def close(self) -> None:
        self._sock.close()


class WakeSocket:
    """The relay's end: bound for as long as the relay runs (the name is taken by one relay a
    machine and database), read only while the relay wants wake-ups.  While it is not read,
    datagrams pile up to the socket's limit and then go unsent: whoever commits pays a failed
    `sendto`, not a wake-up of the relay."""

    def __init__(self, sock: socket.socket, on_wake: Any) -> None:
        self._sock = sock
        self._on_wake = on_wake
        self._reading = False

    @classmethod
    def bind(cls, db: Path | str, on_wake: Any, *, quiet: bool = False) -> WakeSocket | None:
        """None when another relay has the name."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.setblocking(False)
        try:
            sock.bind(wake_address(db))
        except OSError:
            if not quiet:
                log.info(
                    "another relay has the wake socket of %s; polling until it goes",
                    describe_db(db),
                )
            sock.close()
            return None
        return cls(sock, on_wake)

    def read(self, wanted: bool) -> None:
        """Start (with a wake-up for what came meanwhile) or stop reading."""
        if wanted == self._reading:
            return
        self._reading = wanted
        loop = asyncio.get_running_loop()
        if wanted:
            loop.add_reader(self._sock.fileno(), self._drain)
            self._drain()
        else:
            loop.remove_reader(self._sock.fileno())

    def _drain(self) -> None:
        try:
            while self._sock.recv(64):
                pass
        except OSError:
            pass
        self._on_wake()

    def close(self) -> None:
        self.read(False)
        self._sock.close()
