"""The relay lease: one database, one active relay, however many daemons run on it.

A second `serve` on the same database (a blue/green deploy, a mistaken second start) must not
relay too: two relays would each send every event, and could send a lead's events out of
order.  So the relay sends only while it holds the lease 'relay' in the database, renewed
every RENEW_SECONDS for LEASE_SECONDS.  A relay without it stands by and tries again as often;
when the holder dies its lease runs out and a standby takes over within LEASE_SECONDS +
RENEW_SECONDS.  The holder stops sending SAFETY_SECONDS before the expiry it last wrote, so
that it is quiet before anyone else may start, even when its renewals fail.  Events sent just
before a takeover and not yet marked delivered go again from the new holder: at least once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from typing import Any

from leadrelay.outbox import RELAY_LEASE as LEASE_NAME
from leadrelay.outbox import describe_lease as describe
from leadrelay.store.base import Store

log = logging.getLogger("leadrelay.relay")

LEASE_SECONDS = 5.0
RENEW_SECONDS = 1.0
SAFETY_SECONDS = 1.0


def owner_info(serve_pid: int | None = None) -> dict[str, Any]:
    return {
        "host": socket.gethostname(),
        "serve_pid": serve_pid or os.getpid(),
        "relay_pid": os.getpid(),
    }


class RelayLease:
    """This relay's claim on the lease; `held` says whether it may send right now."""

    def __init__(self, store: Store, info: dict[str, Any]) -> None:
        self.store = store
        self.info = info
        # named after the daemon, not the relay process: a relay child the daemon restarts
        # after a crash (never two at once) renews its predecessor's lease at once
        self.owner = f"{info['host']}:{info['serve_pid']}"
        self._expires = 0.0  # the expiry this holder last wrote (unix time)
        self._holder: str | None = None  # who else holds it, for the log
        self._released = False
        self.gained = asyncio.Event()

    @property
    def held(self) -> bool:
        return time.time() < self._expires - SAFETY_SECONDS

    async def keep(self) -> None:
        """Take or renew the lease every RENEW_SECONDS, for as long as the relay runs."""
        while not self._released:
            await self.try_take()
            await asyncio.sleep(RENEW_SECONDS)

    async def try_take(self) -> bool:
        if self._released:
            return False
        was_held = self.held
        asked = time.time()
        try:
            got = await self.store.write(
                lambda tx: tx.take_lease(LEASE_NAME, self.owner, self.info, LEASE_SECONDS)
            )
        except Exception as exc:  # a locked database: keep what we had until it runs out
            log.warning("could not renew the relay lease: %s", exc)
            return self.held
        if got:
            # counted from before the write: the stored expiry is at least this late
            self._expires = asked + LEASE_SECONDS
            if not was_held:
                log.info("holding the relay lease: this daemon relays")
                self.gained.set()
            return True
        self._expires = 0.0
        self.gained.clear()
        if was_held:
            log.error("lost the relay lease; standing by")
        await self._note_holder()
        return False

    async def _note_holder(self) -> None:
        row = await self.store.lease(LEASE_NAME)
        holder = describe(row)["holder"] if row else None
        if holder != self._holder:
            self._holder = holder
            if holder:
                log.info("standing by: %s relays this database", holder)

    async def release(self) -> None:
        """On a clean stop: a standby takes over at its next try, not after the expiry."""
        self._released = True
        self._expires = 0.0
        try:
            await self.store.write(lambda tx: tx.release_lease(LEASE_NAME, self.owner))
        except Exception as exc:
            log.warning("could not release the relay lease (it expires by itself): %s", exc)
