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


def listen_for_wakes(db: Path | str, on_wake: Any, *, quiet: bool = False) -> socket.socket | None:
    """Bind the relay's wake socket and call `on_wake` on each datagram (None when another
    relay has it)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.setblocking(False)
    try:
        sock.bind(wake_address(db))
    except OSError:
        if not quiet:
            log.info(
                "another relay has the wake socket of %s; polling until it goes", describe_db(db)
            )
        sock.close()
        return None

    def drain() -> None:
        try:
            while sock.recv(64):
                pass
        except OSError:
            pass
        on_wake()

    asyncio.get_running_loop().add_reader(sock.fileno(), drain)
    return sock
