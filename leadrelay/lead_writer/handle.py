"""The daemon's handle on its lead writer process: requests out, answers back, a deadline
each, a bounded queue, a heartbeat, and a new process when one dies (see the package's
docstring)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from leadrelay import children, crm_status, metrics
from leadrelay.config import DB_ENV, resolved_db
from leadrelay.errors import CommitUnknown, Unavailable, WriterUnavailable
from leadrelay.lead_writer.frames import ANSWER, Frames
from leadrelay.pusher import api_store
from leadrelay.pusher.api_events import PusherApiEvent

log = logging.getLogger("leadrelay.writer")
# what a request of each kind ("lead", "status") writes, as a 503 names it
WRITTEN = {"lead": "the lead", "status": "the status change", "pusher": "the Pusher event"}

HEARTBEAT_SECONDS = 0.5
FIRST_RESTART_DELAY = 0.1


class LeadWriter:
    """The daemon's handle on the writer process: `create` is `leads.create_lead`'s answer."""

    def __init__(
        self,
        db: Path | str,
        log_level: str = "info",
        *,
        timeout: float = 8.0,
        queue_limit: int = 1000,
    ) -> None:
        self.db = db
        self.log_level = log_level
        self.timeout = timeout
        self.queue_limit = queue_limit
        self._last_answer = 0.0  # monotonic time of the writer's last heartbeat answer
        self._ids: Iterator[int] = itertools.count(1)
        # request id → (its deadline, its kind, its answer), oldest first; one timer, set
        # for the oldest deadline, answers 503 to those that pass it (_expire)
        self._waiting: dict[int, tuple[float, str, asyncio.Future[tuple[int, bytes]]]] = {}
        self._expiry: asyncio.TimerHandle | None = None
        self._frames: Frames | None = None
        self._child: subprocess.Popen[bytes] | None = None
        self._closing = False
        self._supervisor: asyncio.Task[None] | None = None

    @property
    def problem(self) -> str | None:
        """Why the writer cannot take writes now, in words (for /readyz); None when it
        answers its heartbeat.  Read from memory: free to ask."""
        if self._frames is None or self._frames.closed.done():
            return "the lead writer process is restarting"
        silent = time.monotonic() - self._last_answer
        if silent > max(2.0, self.timeout / 2):
            return f"the lead writer has answered nothing for {silent:.0f} s"
        return None

    async def start(self) -> None:
        await self._spawn()
        supervisor = children.Supervisor("lead writer", FIRST_RESTART_DELAY, log)
        self._supervisor = asyncio.create_task(
            supervisor.keep_running(self._spawn, self._ended, lambda: self._closing, started=True)
        )

    async def _spawn(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._child = children.start(
                [sys.executable, "-m", "leadrelay.lead_writer.process", str(theirs.fileno())]
                + [self.log_level],
                # the database in the environment, not the command line: a URL may hold a
                # password, and every user can read a process's arguments
                env={**os.environ, DB_ENV: resolved_db(self.db)},
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        loop = asyncio.get_running_loop()
        _, self._frames = await loop.create_unix_connection(
            lambda: Frames(self._answered), sock=ours
        )
        self._last_answer = time.monotonic()

    async def _ended(self) -> tuple[bool, int | None]:
        """Wait for the process to end, answering 503 to what it had; another starts
        unless the daemon is closing."""
        assert self._frames is not None
        heartbeat = asyncio.create_task(self._heartbeat(self._frames))
        await self._frames.closed
        heartbeat.cancel()
        self._fail_waiting()
        if self._closing:
            return False, None
        return True, await self._exit_code()

    async def _heartbeat(self, frames: Frames) -> None:
        """Ping the writer; one that answers nothing for twice the write timeout is stuck: kill
        it (the supervisor then starts another)."""
        while not frames.closed.done():
            frames.send(b"")
            await asyncio.sleep(min(HEARTBEAT_SECONDS, self.timeout / 4))
            silent = time.monotonic() - self._last_answer
            if silent > 2 * self.timeout and not self._closing:
                log.error("the lead writer answered nothing for %.0f s; replacing it", silent)
                if self._child is not None and self._child.poll() is None:
                    self._child.kill()  # SIGKILL ends a stopped process too
                if frames.transport is not None:
                    frames.transport.abort()
                return

    def _fail_waiting(self) -> None:
        """The process ended with these in hand: each may have been committed just before
        it went, or not at all."""
        waiting, self._waiting = self._waiting, {}
        for _, _, future in waiting.values():
            if not future.done():
                future.set_exception(
                    CommitUnknown(
                        "the lead writer stopped before answering, so the write may or may "
                        "not be stored: send it again with the same Idempotency-Key (or "
                        "webhook-id), which is safe"
                    )
                )

    def _answered(self, frame: bytes) -> None:
        self._last_answer = time.monotonic()  # any answer shows it is alive
        request_id, status = ANSWER.unpack_from(frame)
        waiting = self._waiting.pop(request_id, None)
        if waiting is not None and not waiting[2].done():
            waiting[2].set_result((status, frame[ANSWER.size :]))

    async def create(
        self,
        fields: dict[str, Any],
        *,
        status: str,
        idempotency_key: str | None,
        socket_id: str | None,
    ) -> tuple[int, bytes]:
        """(201, the lead) when stored; (200, the earlier lead) for a known key; or an error's
        status and body."""
        return await self._request(["lead", fields, status, idempotency_key, socket_id])

    async def change_status(
        self,
        change: crm_status.StatusChange,
        *,
        idempotency_key: str | None,
        socket_id: str | None,
    ) -> tuple[int, bytes]:
        """(200, `{"lead", "applied", "reason"}`) once durable, or an error's status and body."""
        request = [change.lead_id, change.external_id, change.change, change.changed_at]
        return await self._request(["status", request, idempotency_key, socket_id])

    async def pusher_events(self, events: list[PusherApiEvent]) -> tuple[int, bytes]:
        """(200, `{"stored": N}`) once an app's trigger is durable (one event a channel), or
        an error's status and body."""
        return await self._request(["pusher", api_store.to_wire(events)])

    async def _request(self, request: list[Any]) -> tuple[int, bytes]:
        """Send one write; count each 503 it ends in (leadrelay_writes_refused_total)."""
        try:
            status, body = await self._send(request)
        except Unavailable as exc:
            metrics.WRITES_REFUSED.labels(code=exc.code).inc()
            raise
        if status == 503:
            metrics.WRITES_REFUSED.labels(code=orjson.loads(body)["error"]["code"]).inc()
        return status, body

    async def _send(self, request: list[Any]) -> tuple[int, bytes]:
        frames = self._frames
        if frames is None or frames.closed.done():
            raise Unavailable(
                "the lead writer is restarting; try again in a moment",
                code="database_unavailable",
            )
        if len(self._waiting) >= self.queue_limit:
            raise WriterUnavailable(
                f"{len(self._waiting)} writes are already waiting; "
                f"{WRITTEN[request[0]]} is not stored, try again shortly",
                retry_after=self._retry_after,
            )
        request_id = (next(self._ids) & 0xFFFFFFFF) or 1  # 0 answers a heartbeat
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[int, bytes]] = loop.create_future()
        deadline = time.monotonic() + self.timeout
        self._waiting[request_id] = (deadline, request[0], future)
        if self._expiry is None:
            self._expiry = loop.call_later(self.timeout, self._expire)
        frames.send(orjson.dumps([request_id, deadline, *request]))
        return await future

    def _expire(self) -> None:
        """Answer 503 to every request whose deadline has passed, then set the timer for the
        oldest left.  Deadlines come in the order the requests do: one timer serves all of
        them, where a timeout each cost every request a timer to set and cancel."""
        self._expiry = None
        now = time.monotonic()
        expired = []
        for request_id, (deadline, _, _) in self._waiting.items():
            if deadline > now:
                self._expiry = asyncio.get_running_loop().call_later(deadline - now, self._expire)
                break
            expired.append(request_id)
        for request_id in expired:
            _, kind, future = self._waiting.pop(request_id)
            if not future.done():
                future.set_exception(
                    WriterUnavailable(
                        f"{WRITTEN[kind]} could not be written within {self.timeout:g} s and "
                        "is not stored; try again shortly",
                        retry_after=self._retry_after,
                    )
                )

    @property
    def _retry_after(self) -> int:
        return max(1, round(self.timeout))

    async def _exit_code(self) -> int | None:
        """Wait for the process to end, off the loop (it may still be closing its store)."""
        child = self._child
        if child is None:
            return None
        return await asyncio.get_running_loop().run_in_executor(None, child.wait)

    async def close(self) -> None:
        """After the last request: the process writes what it has, then exits."""
        self._closing = True
        if self._frames is not None and self._frames.transport is not None:
            self._frames.transport.close()
        await self._exit_code()
        if self._supervisor is not None:
            await asyncio.gather(self._supervisor, return_exceptions=True)
