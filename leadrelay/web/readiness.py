"""`GET /readyz`: can this daemon take leads?  Cheap enough for anyone to poll, and saying
the details only to an admin.

It makes no write while all is well: a poll costs at most one round of reads (the relay's
recorded state and lease, which also show that the database answers), made once every
CACHE_SECONDS and shared by every poller meanwhile, and the health the daemon's writes
record as they happen: a write answered 503 (database_unavailable, writer_unavailable,
commit_unknown) and not followed by one that succeeded makes the daemon not ready.  While
that is so, the check itself tries one write (at most once every CACHE_SECONDS), so that a
daemon a load balancer has taken out of rotation, and which no client writes to, still
sees the database take writes again.  The lead writer process counts too: restarting, or
silent past its heartbeat.

Anyone sees `{"status", "problems": [codes]}`; an admin token also sees `details` (the
messages, which may quote a database error or the relay's pause reason), the relay's
recorded state and who holds the relay lease (host name, PIDs).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from leadrelay.config import Settings
from leadrelay.errors import ApiError
from leadrelay.lead_writer import LeadWriter
from leadrelay.outbox import relay_lease
from leadrelay.store.base import RELAY_STATE_KEY, Store

CACHE_SECONDS = 1.0


@dataclass(frozen=True)
class Report:
    problems: list[tuple[str, str]]  # (code, message), in the order found
    relay: dict[str, Any] | None = None  # its recorded state, and the lease (admins only)
    lease: dict[str, Any] | None = None

    def body(self, *, admin: bool, this_pid: int) -> dict[str, Any]:
        body: dict[str, Any] = {
            "status": "not_ready" if self.problems else "ready",
            "problems": [code for code, _ in self.problems],
        }
        if admin:
            body["details"] = [message for _, message in self.problems]
            if self.relay is not None:
                body["relay"] = self.relay
            if self.lease is not None:
                # a standby daemon is ready: it takes leads, and its relay takes over if need be
                body["relay_lease"] = {
                    **self.lease,
                    "this_daemon": self.lease["serve_pid"] == this_pid,
                }
        return body


@dataclass
class Readiness:
    """The readiness check of one daemon, and the write health it reads."""

    settings: Settings
    store: Store
    lead_writer: LeadWriter | None = None
    failed_write: ApiError | None = None  # the last write's 503, until one succeeds
    _cached: tuple[float, ApiError | None, Report] | None = None
    _running: asyncio.Task[Report] | None = field(default=None, repr=False)

    def write_failed(self, error: ApiError) -> None:
        self.failed_write = error

    def write_succeeded(self) -> None:
        self.failed_write = None

    async def report(self) -> Report:
        """The cached report while it is fresh and no write has failed since; else one check,
        shared by every caller that asks while it runs."""
        cached = self._cached
        if (
            cached is not None
            and time.monotonic() - cached[0] < CACHE_SECONDS
            and cached[1] is self.failed_write
        ):
            report = cached[2]
        else:
            if self._running is None:
                self._running = asyncio.ensure_future(self._check())
                self._running.add_done_callback(self._done)
            report = await asyncio.shield(self._running)
        return self._with_lead_writer(report)

    def _done(self, task: asyncio.Task[Report]) -> None:
        self._running = None

    async def _check(self) -> Report:
        failed = self.failed_write
        problems: list[tuple[str, str]] = []
        if failed is not None:
            # the last write failed: see whether writes work again (one write, while unhealthy)
            try:
                await self.store.check_writable()
            except ApiError as exc:
                problems.append((exc.code, str(exc)))
            else:
                if self.failed_write is failed:
                    self.failed_write = None
        relay = lease = None
        try:
            if self.settings.relay != "off":
                relay = await self.store.get_setting(RELAY_STATE_KEY) or {}
                lease = await relay_lease(self.store)
            else:
                await self.store.fetch_one("SELECT 1 AS ok")  # the database answers
        except ApiError as exc:  # a database that cannot be read either (PostgreSQL down)
            if (exc.code, str(exc)) not in problems:
                problems.append((exc.code, str(exc)))
        if relay and relay.get("paused_reason"):
            problems.append(("relay_paused", f"relay paused: {relay['paused_reason']}"))
        report = Report(problems, relay, lease)
        self._cached = (time.monotonic(), self.failed_write, report)
        return report

    def _with_lead_writer(self, report: Report) -> Report:
        """The lead writer's health, read from its handle: free, so never cached."""
        problem = None if self.lead_writer is None else self.lead_writer.problem
        if problem is None:
            return report
        return Report(
            [*report.problems, ("writer_unavailable", problem)], report.relay, report.lease
        )
