"""Where the relay runs — in the daemon's loop, or in a process of its own — and its supervisor.

On two cores the intake and the relay each want an interpreter, so `serve` runs the relay
in a child process by default (`relay = "process"`).  Whoever commits events wakes it
(wake.py); a poll every `relay_poll_seconds` catches anything missed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from leadrelay import children
from leadrelay.config import DB_ENV, Settings, parse_db, resolved_db
from leadrelay.relay.wake import Waker, WakeSocket, wake_address
from leadrelay.store import open_store
from leadrelay.store.base import Store

log = logging.getLogger("leadrelay.relay")

FIRST_RESTART_DELAY = 0.5


async def run_relay(
    settings: Settings, store: Store, stop: asyncio.Event, serve_pid: int | None = None
) -> None:
    from leadrelay.relay.lease import RENEW_SECONDS, RelayLease, owner_info
    from leadrelay.relay.relay import Relay

    # one relay at a time holds the relay lease, unless the store lets every relay claim
    # the events it sends (PostgreSQL): then every daemon relays
    lease = None if store.claims_per_event else RelayLease(store, owner_info(serve_pid))
    relay = Relay(store, settings, lease)
    wake_ups = WakeUps(await wake_address(store), store, relay.wake)
    relay.want_wake_ups = wake_ups.want
    task = asyncio.create_task(relay.run())
    try:
        while not wake_ups.bound and not stop.is_set():
            # a standby's wake socket is taken by the relay that holds the lease; when that
            # one goes, this one takes the socket too
            try:
                await asyncio.wait_for(stop.wait(), timeout=RENEW_SECONDS)
            except TimeoutError:
                wake_ups.bind(quiet=True)
        await stop.wait()
    finally:
        await relay.stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await wake_ups.close()


class WakeUps:
    """What wakes the relay the moment events are committed: this machine's commits (the wake
    socket) and, on PostgreSQL, every daemon's (LISTEN).  Both are on only while the relay
    can send: a relay with Pusher off, or paused by a settings error, looks again at its
    poll instead, so that a paused daemon's intake does not pay a relay wake-up per commit
    (docs/dev/performance.md)."""

    def __init__(self, address: str, store: Store, on_wake: Callable[[], None]) -> None:
        self.address = address
        self.store = store
        self.on_wake = on_wake
        self.wanted = False
        self.sock: WakeSocket | None = None
        self._listen: asyncio.Task[None] | None = None
        self.bind()

    @property
    def bound(self) -> bool:
        return self.sock is not None

    def bind(self, *, quiet: bool = False) -> None:
        self.sock = WakeSocket.bind(self.address, self.on_wake, quiet=quiet)
        if self.sock is not None:
            self.sock.read(self.wanted)

    def want(self, wanted: bool) -> None:
        if wanted == self.wanted:
            return
        self.wanted = wanted
        if self.sock is not None:
            self.sock.read(wanted)
        if wanted:
            # other daemons' commits; it wakes the relay once listening, for what it missed
            self._listen = asyncio.create_task(self.store.follow_commits(self.on_wake))
        elif self._listen is not None:
            self._listen.cancel()
            self._listen = None

    async def close(self) -> None:
        listen = self._listen
        self.want(False)
        if listen is not None:
            await asyncio.gather(listen, return_exceptions=True)
        if self.sock is not None:
            self.sock.close()


class RelayRunner:
    """Starts and stops the relay beside the API, in the loop or as a child process."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._child: subprocess.Popen[bytes] | None = None
        self._waker: Waker | None = None

    async def start(self) -> None:
        self._waker = Waker(await wake_address(self.store))
        self.store.commit_listeners.append(self._waker)
        if self.settings.relay == "inline":
            self._task = asyncio.create_task(run_relay(self.settings, self.store, self._stop))
        else:
            supervisor = children.Supervisor("relay", FIRST_RESTART_DELAY, log)
            self._task = asyncio.create_task(
                supervisor.keep_running(self._spawn, self._ended, self._stop.is_set)
            )

    async def _spawn(self) -> None:
        self._child = children.start(
            [sys.executable, "-m", "leadrelay.relay.runner", json.dumps(_settings_json(self))],
            env={**os.environ, DB_ENV: resolved_db(self.settings.db)},
            stdin=subprocess.DEVNULL,
        )

    async def _ended(self) -> tuple[bool, int | None]:
        """Wait for the process to end (or the daemon to stop).  It exits 0 only when told
        to stop (a SIGTERM to the daemon's process group reaches it too): that is final,
        anything else is a crash to recover from."""
        child = self._child
        assert child is not None
        while child.poll() is None and not self._stop.is_set():
            try:
                await asyncio.wait_for(self._stop.wait(), timeout=0.2)
            except TimeoutError:
                pass
        return not (self._stop.is_set() or child.returncode == 0), child.returncode

    async def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        child = self._child
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM)
            loop = asyncio.get_running_loop()
            try:
                await asyncio.wait_for(loop.run_in_executor(None, child.wait), timeout)
            except TimeoutError:
                child.kill()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        if self._waker is not None:
            self._waker.close()


def _settings_json(runner: RelayRunner) -> dict[str, Any]:
    data = asdict(runner.settings)
    del data["db"]  # in the environment (a URL may hold a password)
    return data


async def _child_main(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)  # what the daemon stops it with
    children.listen_for_stop_signals(ignore=[signal.SIGINT])  # Ctrl-C is the daemon's to handle
    parent = os.getppid()

    async def watch_parent() -> None:
        # if the daemon is killed outright, its relay must not outlive it
        while os.getppid() == parent:
            await asyncio.sleep(0.5)
        stop.set()

    watcher = asyncio.create_task(watch_parent())
    store = await open_store(settings.db, durable=False, on_loop=True)
    try:
        await run_relay(settings, store, stop, serve_pid=parent)
    finally:
        watcher.cancel()
        await store.close()


def main() -> None:
    data = json.loads(sys.argv[1])
    data["db"] = parse_db(os.environ[DB_ENV])
    data["statuses"] = tuple(data["statuses"])
    settings = Settings(**data)
    children.run_child("relay", log, settings.log_level, lambda: _child_main(settings))


if __name__ == "__main__":
    main()
