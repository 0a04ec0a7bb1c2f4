"""Starting the daemon's child processes (lead writer, relay) deaf to Ctrl-C and SIGTERM.

A Ctrl-C, or a SIGTERM sent to the daemon's process group, reaches its children too; one
still importing when it lands dies with a KeyboardInterrupt traceback, and its supervisor
starts another while the daemon shuts down. So children start with both signals blocked (a
blocked signal stays blocked across exec), and each says what they mean to it once it is up:
the daemon itself stops them, by closing their socket or with a SIGTERM of its own.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterable
from typing import Any

STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})


def start(argv: list[str], **popen: Any) -> subprocess.Popen[bytes]:
    """`subprocess.Popen(argv, **popen)` with the stop signals blocked in the child."""
    before = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        return subprocess.Popen(argv, **popen)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def listen_for_stop_signals(*, ignore: Iterable[signal.Signals] = ()) -> None:
    """In a child, once its own handlers are set: let the stop signals in again. Those in
    `ignore` are ignored from now on, and one that arrived meanwhile is dropped."""
    for sig in ignore:
        signal.signal(sig, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
