"""The daemon's child processes (lead writer, relay): started deaf to Ctrl-C and SIGTERM,
kept running by a `Supervisor`, and each one's `run_child` main.

A Ctrl-C, or a SIGTERM sent to the daemon's process group, reaches its children too; one
still importing when it lands dies with a KeyboardInterrupt traceback, and its supervisor
starts another while the daemon shuts down. So children start with both signals blocked (a
blocked signal stays blocked across exec), and each says what they mean to it once it is up:
the daemon itself stops them, by closing their socket or with a SIGTERM of its own.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable
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


def run_child(
    name: str, log: logging.Logger, log_level: str, main: Callable[[], Coroutine[Any, Any, None]]
) -> None:
    """A child process's whole life: logging, then `main()` on uvloop (asyncio without it).
    A database that is down as it starts ends it with status 1, in one line: its supervisor
    starts another."""
    from leadrelay.errors import Unavailable
    from leadrelay.logs import setup_logging

    setup_logging(log_level)
    try:
        import uvloop

        run: Callable[[Coroutine[Any, Any, None]], None] = uvloop.run
    except ImportError:
        run = asyncio.run
    try:
        run(main())
    except Unavailable as exc:
        log.error("the %s process cannot open the database: %s", name, exc)
        sys.exit(1)


class Supervisor:
    """Keeps a child process running: when one ends, and it was not the last (`ended`
    answers None), another starts after `first_delay`, the delay doubling while they keep
    dying or failing to start (out of processes or memory, for a while), up to
    MAX_RESTART_DELAY, and afresh after a healthy run."""

    MAX_RESTART_DELAY = 10.0
    HEALTHY_RUN_SECONDS = 60.0

    def __init__(self, name: str, first_delay: float, log: logging.Logger) -> None:
        self.name = name
        self.first_delay = first_delay
        self.log = log

    async def keep_running(
        self,
        start: Callable[[], Awaitable[None]],
        ended: Callable[[], Awaitable[tuple[bool, int | None]]],
        stopping: Callable[[], bool],
        *,
        started: bool = False,
    ) -> None:
        """`start()` starts a child (unless one was `started` already); `ended()` waits for
        its end and answers (whether to start another, its exit status); none starts once
        `stopping()`."""
        delay = self.first_delay
        while not stopping():
            began = time.monotonic()
            if not started:
                try:
                    await start()
                except OSError as exc:
                    self.log.error(
                        "could not start the %s process (%s); trying again", self.name, exc
                    )
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.MAX_RESTART_DELAY)
                    continue
            started = False
            again, status = await ended()
            if not again:
                return
            self.log.error("the %s process exited (%s); restarting it", self.name, status)
            if time.monotonic() - began >= self.HEALTHY_RUN_SECONDS:
                delay = self.first_delay
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.MAX_RESTART_DELAY)
