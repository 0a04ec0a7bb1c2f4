"""New leads (and CRMs' status changes) written in a process of their own, so the daemon's
loop only speaks HTTP.

On two cores, one interpreter that both served HTTP and ran each new lead's SQL was the
intake's limit: the write took ~30 µs of its one core per lead (docs/dev/performance.md).  So
`serve` hands each new lead to this process over a socket pair.  It runs the same write as
`leads.create_lead` (`leads.new_lead`, through `Store.submit`) on its own `Store` (group
commit, fsync before the answer) and sends back the HTTP status and body to answer with,
once the lead is durable.  A status webhook's change (`crm_status.change_status`) goes the
same way, so it is group-committed with the leads, under the same deadline.

Frames, each way: a 4-byte little-endian length, then
  request  orjson `[request id, deadline, "lead", fields, status, idempotency key, socket id]`
           or `[request id, deadline, "status", change, idempotency key, socket id]`
  answer   request id (u32), HTTP status (u16), then the JSON body to send
An empty request is a heartbeat, answered at once with request id 0.

A writer can be alive but stuck (a stalled disk, SIGSTOP).  So each lead has a deadline
(`write_timeout_seconds`, on the monotonic clock both processes share): the daemon answers
503 writer_unavailable when it passes, and the writer refuses, rather than writes, a lead
whose deadline is near or gone, so that a 503 means "not stored".  (The one window left is a
commit whose fsync itself outlasts the margin; its lead is stored and answered 503, which an
Idempotency-Key makes safe to send again.)  At most `write_queue_limit` leads wait; past that,
503 at once.  A writer that answers no heartbeat for twice `write_timeout_seconds` is killed
and replaced (a slow moment gets its 503s first, and a chance to recover).

The process stops when its socket closes: when the daemon closes it after its last request,
or when the daemon dies.  A SIGTERM (the daemon's whole process group gets one) does not
stop it, so every request the daemon is still answering gets its lead written.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import orjson

from leadrelay import children, crm_status, leads
from leadrelay.config import DB_ENV, parse_db, resolved_db
from leadrelay.errors import ApiError, Unavailable, WriterUnavailable
from leadrelay.store import open_store
from leadrelay.web.http import INTERNAL_ERROR_BODY

log = logging.getLogger("leadrelay.writer")
# what a request of each kind ("lead", "status") writes, as a 503 names it
WRITTEN = {"lead": "the lead", "status": "the status change"}

HEARTBEAT_SECONDS = 0.5
FIRST_RESTART_DELAY = 0.1
MAX_RESTART_DELAY = 10.0
HEALTHY_RUN_SECONDS = 60.0
_LENGTH = struct.Struct("<I")
_ANSWER = struct.Struct("<IH")


class _Frames(asyncio.Protocol):
    """Length-prefixed frames over a stream; writes made in one loop turn go out as one."""

    def __init__(self, on_frame: Callable[[bytes], None]) -> None:
        self._on_frame = on_frame
        self._buffer = bytearray()
        self._out: list[bytes] = []
        self.transport: asyncio.Transport | None = None
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        start = 0
        while len(buffer) - start >= 4:
            (size,) = _LENGTH.unpack_from(buffer, start)
            if len(buffer) - start - 4 < size:
                break
            self._on_frame(bytes(buffer[start + 4 : start + 4 + size]))
            start += 4 + size
        del buffer[:start]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def send(self, *parts: bytes) -> None:
        if not self._out:
            asyncio.get_running_loop().call_soon(self.flush)
        self._out.append(_LENGTH.pack(sum(map(len, parts))))
        self._out.extend(parts)

    def flush(self) -> None:
        if self._out and self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"".join(self._out))
        self._out.clear()


# --- the daemon's side -------------------------------------------------------------------


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
        self._frames: _Frames | None = None
        self._child: subprocess.Popen[bytes] | None = None
        self._closing = False
        self._supervisor: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._spawn()
        self._supervisor = asyncio.create_task(self._supervise())

    async def _spawn(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._child = children.start(
                [
                    sys.executable,
                    "-m",
                    "leadrelay.web.lead_writer",
                    str(theirs.fileno()),
                    self.log_level,
                ],
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
            lambda: _Frames(self._answered), sock=ours
        )
        self._last_answer = time.monotonic()

    async def _supervise(self) -> None:
        """Fail what the process had when it dies, and start another (requests get a 503
        meanwhile): after 0.1 s, doubling while they keep dying, afresh after a healthy run."""
        delay = FIRST_RESTART_DELAY
        while not self._closing:
            started = time.monotonic()
            assert self._frames is not None
            heartbeat = asyncio.create_task(self._heartbeat(self._frames))
            await self._frames.closed
            heartbeat.cancel()
            self._fail_waiting()
            if self._closing:
                return
            code = await self._exit_code()
            log.error("the lead writer process exited (%s); restarting it", code)
            if time.monotonic() - started >= HEALTHY_RUN_SECONDS:
                delay = FIRST_RESTART_DELAY
            while not self._closing:
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_RESTART_DELAY)
                try:
                    await self._spawn()
                    break
                except OSError as exc:  # out of processes or memory, for a while
                    log.error("could not start the lead writer process (%s); trying again", exc)

    async def _heartbeat(self, frames: _Frames) -> None:
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
        waiting, self._waiting = self._waiting, {}
        for _, _, future in waiting.values():
            if not future.done():
                future.set_exception(
                    WriterUnavailable(
                        "the lead writer stopped before answering; the write may not be "
                        "stored, so send it again (with an Idempotency-Key it is safe to)"
                    )
                )

    def _answered(self, frame: bytes) -> None:
        self._last_answer = time.monotonic()  # any answer shows it is alive
        request_id, status = _ANSWER.unpack_from(frame)
        waiting = self._waiting.pop(request_id, None)
        if waiting is not None and not waiting[2].done():
            waiting[2].set_result((status, frame[_ANSWER.size :]))

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

    async def _request(self, request: list[Any]) -> tuple[int, bytes]:
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


# --- the writer process --------------------------------------------------------------------


async def _serve(fd: int, db: Path | str) -> None:
    from leadrelay.relay.wake import Waker

    store = await open_store(db, on_loop=True)
    waker = Waker(db)
    tasks: set[asyncio.Task[None]] = set()

    Result = leads.CreateResult | crm_status.StatusResult

    def answer(request_id: int, result: Result | None, error: BaseException | None) -> None:
        if isinstance(error, ApiError):
            status, body = error.status, orjson.dumps(error.body())
        elif error is not None or result is None:
            log.error("unexpected error writing a lead: %r", error)
            status, body = 500, orjson.dumps(INTERNAL_ERROR_BODY)
        elif isinstance(result, crm_status.StatusResult):
            status, body = 200, orjson.dumps(result.answer())
        else:
            status, body = (201 if result.created else 200), orjson.dumps(result.lead)
        frames.send(_ANSWER.pack(request_id, status), body)

    async def replay(request_id: int, key: str, status_change: bool) -> None:
        try:
            if status_change:
                answer(request_id, await crm_status.replay(store, key), None)
            else:
                answer(request_id, await leads.lead_of_key(store, key), None)
        except Exception as exc:
            answer(request_id, None, exc)

    def write_of(kind: str, request: list[Any]) -> Callable[[Any], Result]:
        if kind == "lead":
            fields, status, key, socket_id = request
            return leads.new_lead(fields, status, key, socket_id)
        (lead_id, external_id, change, changed_at), key, socket_id = request
        parsed = crm_status.StatusChange(lead_id, external_id, change, changed_at)
        return crm_status.change_status(parsed, key, socket_id)

    def on_frame(frame: bytes) -> None:
        if not frame:  # a heartbeat
            frames.send(_ANSWER.pack(0, 0))
            return
        request_id, deadline, kind, *request = orjson.loads(frame)
        write = write_of(kind, request)
        # the daemon gives up at `deadline`: keep a margin for the commit, so that what the
        # daemon answered 503 is never written
        cutoff = deadline - max(0.05, min(1.0, (deadline - time.monotonic()) / 4))

        def in_time(tx: Any) -> Result:
            if time.monotonic() > cutoff:
                raise WriterUnavailable(f"{WRITTEN[kind]} could not be written in time; not stored")
            return write(tx)

        def done(result: Result | None, error: BaseException | None) -> None:
            if isinstance(error, leads.LostRace):  # another request stored the key first
                task = asyncio.create_task(replay(request_id, error.key, kind == "status"))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            else:
                answer(request_id, result, error)

        # no task per lead: the batch's answers go out as soon as it is durable
        store.submit(in_time, done)

    def committed(count: int) -> None:
        frames.flush()  # the batch's answers, before the next batch's statements run
        waker(count)

    store.commit_listeners.append(committed)
    loop = asyncio.get_running_loop()
    frames = _Frames(on_frame)
    await loop.create_unix_connection(lambda: frames, sock=socket.socket(fileno=fd))
    try:
        await frames.closed
    finally:
        await store.close()  # it first writes every lead it was sent
        waker.close()


def main() -> None:
    from leadrelay.logs import setup_logging

    fd, log_level = int(sys.argv[1]), sys.argv[2]
    db = parse_db(os.environ[DB_ENV])
    setup_logging(log_level)
    # the daemon's process group gets its Ctrl-C and SIGTERM too: stop only when the
    # socket closes
    children.listen_for_stop_signals(ignore=children.STOP_SIGNALS)
    try:
        try:
            import uvloop

            uvloop.run(_serve(fd, db))
        except ImportError:
            asyncio.run(_serve(fd, db))
    except Unavailable as exc:  # the database is down as it starts: the daemon retries
        log.error("the lead writer process cannot open the database: %s", exc)
        sys.exit(1)


if __name__ == "__main__":
    main()
