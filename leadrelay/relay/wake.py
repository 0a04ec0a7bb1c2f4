"""The relay's wake-up: one datagram, "events were committed", to a socket named after the db.

Whoever commits events (the daemon, its lead writer, a CLI command) sends it, so the relay
starts at once instead of at its next poll.  The socket is an abstract unix socket (no file
to clean up), and every local user sees its name in /proc/net/unix: so the name is a random
id a migration stored in the database (the `wake_id` setting), which says nothing of the
database or its URL, and only those who can read the database know it beforehand.

Anyone on the machine can still bind a name once they have seen it, before the relay does
(after a restart, say).  The relay then cannot be woken and polls every
`relay_poll_seconds` instead; it looks up who holds the name (Linux's /proc) and says so:
in an info line when it is another relay of this user's leadrelay (a standby daemon on the
same database), in a warning naming the process when it is anything else.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from pathlib import Path
from typing import Any

from leadrelay.store.base import WAKE_ID_KEY, Store

log = logging.getLogger("leadrelay.relay")


async def wake_address(store: Store) -> str:
    """The abstract unix socket name of this database's relay."""
    return f"\0leadrelay-relay-{await store.get_setting(WAKE_ID_KEY)}"


class Waker:
    """Sends "events were committed" to whichever relay serves this database."""

    def __init__(self, address: str) -> None:
        self.address = address
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
    def bind(cls, address: str, on_wake: Any, *, quiet: bool = False) -> WakeSocket | None:
        """None when another process has the name (said in the log: see `say_who_holds`)."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.setblocking(False)
        try:
            sock.bind(address)
        except OSError:
            sock.close()
            say_who_holds(address, quiet=quiet)
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


# the socket (its inode) last said to hold each name: a standby relay tries to bind every
# second, and says who holds the name again only when that changes
_SAID: dict[str, str | None] = {}


def say_who_holds(address: str, *, quiet: bool = False) -> None:
    """Log who holds the wake socket name `address`: info for another relay of ours (unless
    `quiet`: a standby trying again), a warning for any other process."""
    inode = _inode_of(address)
    if inode is not None and _SAID.get(address) == inode:
        return
    _SAID[address] = inode
    holder = None if inode is None else _holder_of(inode)
    polling = "this relay polls for new events instead of being woken at once"
    if holder is not None and holder[1] == os.getuid() and "leadrelay" in holder[2]:
        if not quiet:
            log.info(
                "another relay (pid %d) has the wake socket; %s until it goes", holder[0], polling
            )
        return
    if holder is None:
        who = "a process this user cannot see (another local user's?)"
    else:
        who = f"pid {holder[0]} of user {holder[1]} ({holder[2][:80]!r})"
    log.warning(
        "the relay's wake socket name is held by another process, %s, not a relay of this "
        "leadrelay: %s; stop that process, or look into who runs it",
        who,
        polling,
    )


def _inode_of(address: str) -> str | None:
    """The inode of the socket bound to the abstract name `address`, from /proc/net/unix."""
    name = "@" + address.lstrip("\0")
    try:
        lines = Path("/proc/net/unix").read_text().splitlines()[1:]
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if len(fields) >= 8 and fields[7] == name:
            return fields[6]
    return None


def _holder_of(inode: str) -> tuple[int, int, str] | None:
    """(pid, uid, command line) of a process with the socket `inode` open, among those this
    process may look into (its own user's; every one for root)."""
    target = f"socket:[{inode}]"
    with os.scandir("/proc") as processes:
        for process in processes:
            if process.name.isdigit() and _has_open(process.path, target):
                try:
                    command = Path(process.path, "cmdline").read_bytes()
                    uid = os.stat(process.path).st_uid
                except OSError:
                    continue  # it has just ended
                text = command.replace(b"\0", b" ").decode(errors="replace").strip()
                return int(process.name), uid, text
    return None


def _has_open(process: str, target: str) -> bool:
    try:
        with os.scandir(f"{process}/fd") as fds:
            for fd in fds:
                try:
                    if os.readlink(fd.path) == target:
                        return True
                except OSError:
                    continue  # closed meanwhile
    except OSError:
        pass  # another user's process, or it has just ended
    return False
