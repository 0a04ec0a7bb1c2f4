"""The lead writer process: it writes what the daemon sends it on its own `Store` (group
commit, fsync before the answer) and sends back each answer once its batch is durable."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from leadrelay import children, crm_status, leads
from leadrelay.config import DB_ENV, parse_db
from leadrelay.errors import INTERNAL_ERROR_BODY, ApiError, WriterUnavailable
from leadrelay.lead_writer.frames import ANSWER, Frames
from leadrelay.lead_writer.handle import WRITTEN
from leadrelay.pusher import api_store
from leadrelay.store import open_store

log = logging.getLogger("leadrelay.writer")


async def _serve(fd: int, db: Path | str) -> None:
    from leadrelay.relay.wake import Waker, wake_address

    store = await open_store(db, on_loop=True)
    waker = Waker(await wake_address(store))
    tasks: set[asyncio.Task[None]] = set()

    Result = leads.CreateResult | crm_status.StatusResult | int

    def answer(request_id: int, result: Result | None, error: BaseException | None) -> None:
        if isinstance(error, ApiError):
            status, body = error.status, orjson.dumps(error.body())
        elif error is not None or result is None:
            log.error("unexpected error writing a lead: %r", error)
            status, body = 500, orjson.dumps(INTERNAL_ERROR_BODY)
        elif isinstance(result, crm_status.StatusResult):
            status, body = 200, orjson.dumps(result.answer())
        elif isinstance(result, int):  # an app's Pusher API events, stored
            status, body = 200, orjson.dumps({"stored": result})
        else:
            status, body = (201 if result.created else 200), orjson.dumps(result.lead)
        frames.send(ANSWER.pack(request_id, status), body)

    async def replay(request_id: int, key: str, status_change: bool) -> None:
        try:
            if status_change:
                answer(request_id, await crm_status.replay(store, key), None)
            else:
                answer(request_id, await leads.lead_of_key(store, key), None)
        except Exception as exc:
            answer(request_id, None, exc)

    def write_of(kind: str, request: list[Any]) -> Callable[[Any], Result]:
        if kind == "pusher":
            return api_store.write_events(api_store.from_wire(request[0]))
        if kind == "lead":
            fields, status, key, socket_id = request
            return leads.new_lead(fields, status, key, socket_id)
        (lead_id, external_id, change, changed_at), key, socket_id = request
        parsed = crm_status.StatusChange(lead_id, external_id, change, changed_at)
        return crm_status.change_status(parsed, key, socket_id)

    def on_frame(frame: bytes) -> None:
        if not frame:  # a heartbeat
            frames.send(ANSWER.pack(0, 0))
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
    frames = Frames(on_frame)
    await loop.create_unix_connection(lambda: frames, sock=socket.socket(fileno=fd))
    try:
        await frames.closed
    finally:
        await store.close()  # it first writes every lead it was sent
        waker.close()


def main() -> None:
    fd, log_level = int(sys.argv[1]), sys.argv[2]
    db = parse_db(os.environ[DB_ENV])
    # the daemon's process group gets its Ctrl-C and SIGTERM too: stop only when the
    # socket closes
    children.listen_for_stop_signals(ignore=children.STOP_SIGNALS)
    children.run_child("lead writer", log, log_level, lambda: _serve(fd, db))


if __name__ == "__main__":
    main()
