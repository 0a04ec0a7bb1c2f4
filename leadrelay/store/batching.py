"""The group commit both backends run: the queue of write jobs, the loop that takes every
job waiting as one batch, and how each caller hears back once the batch is durable.

A backend's Store inherits `GroupCommit`, starts and stops its writer task
(`_start_writing`, `_stop_writing`) and provides `_commit_batch(jobs)`: the jobs in one
transaction, committed once (each job's result or error set on it), returning how many
events the batch wrote.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from leadrelay.errors import CommitUnknown

T = TypeVar("T")
TxT = TypeVar("TxT")

MAX_BATCH = 512  # jobs a transaction at most


class Callback:
    """A job's answer for a caller that is not a coroutine (see `Store.submit`)."""

    __slots__ = ("_fn", "_called")

    def __init__(self, fn: Callable[[Any, BaseException | None], None]) -> None:
        self._fn = fn
        self._called = False

    def done(self) -> bool:
        return self._called

    def set_result(self, result: Any) -> None:
        self._call(result, None)

    def set_exception(self, error: BaseException) -> None:
        self._call(None, error)

    def _call(self, result: Any, error: BaseException | None) -> None:
        self._called = True
        try:
            self._fn(result, error)
        except Exception as exc:  # the caller's bug must not stop the writer
            asyncio.get_running_loop().call_exception_handler(
                {"message": "a write's callback failed", "exception": exc}
            )


@dataclass(slots=True)
class Job:
    fn: Callable[[Any], Any]  # a function of the backend's Tx
    future: asyncio.Future[Any] | Callback
    result: Any = None
    error: BaseException | None = None


class GroupCommit(Generic[TxT]):
    """`write` and `submit` over one writer task; the backend's Store holds the state."""

    _waiting: list[Job]
    _wake: asyncio.Event  # a write is waiting
    _idle: asyncio.Event  # nothing waiting or running
    _task: asyncio.Task[None] | None  # the writer task, while the store is open
    commit_listeners: list[Callable[[int], None]]
    transactions: int  # group commits so far: far fewer than writes under load

    def _start_writing(self, name: str) -> None:
        self._task = asyncio.create_task(self._write_loop(), name=name)

    async def _stop_writing(self) -> None:
        """End the writer task once every write already waiting is answered, and wait for
        it to end (the connections close after it)."""
        if self._task is not None:
            await self._idle.wait()
            task, self._task = self._task, None
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _commit_batch(self, jobs: list[Job]) -> int:
        raise NotImplementedError

    def _linger_seconds(self) -> float:
        """How long to wait for more jobs before taking the batch: none, unless the backend
        says otherwise (PostgreSQL's lead writer, when daemons share the database)."""
        return 0.0

    async def write(self, fn: Callable[[TxT], T]) -> T:
        """Run `fn` in the next group commit; return once its transaction is durable."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        # a caller that goes away cancels only its future: the writer skips answering it,
        # and its job still commits with the batch (what was acknowledged is all that counts)
        self._enqueue(Job(fn, future))
        return await future

    def submit(
        self, fn: Callable[[TxT], T], done: Callable[[T | None, BaseException | None], None]
    ) -> None:
        """`write` for a caller that is not a coroutine: `done(result, error)` is called as
        soon as the batch is durable, with no task to wake in between (lead_writer/process.py)."""
        self._enqueue(Job(fn, Callback(done)))

    def _enqueue(self, job: Job) -> None:
        self._waiting.append(job)
        self._idle.clear()
        self._wake.set()

    async def _write_loop(self) -> None:
        while True:
            if not self._waiting:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
            linger = self._linger_seconds()
            if linger:
                await asyncio.sleep(linger)
            jobs = self._waiting[:MAX_BATCH]
            del self._waiting[:MAX_BATCH]
            self.transactions += 1
            batch = asyncio.ensure_future(self._commit_batch(jobs))
            try:
                # shielded: a cancel (the store closing, the loop ending) lets the batch in
                # hand finish its transaction and answer its callers, then ends the writer
                await asyncio.shield(batch)
            except asyncio.CancelledError:
                await asyncio.wait({batch})
                self._answer(jobs, batch)
                raise
            except Exception:  # the writer outlives any one batch: its callers hear why
                pass
            self._answer(jobs, batch)

    def _answer(self, jobs: list[Job], batch: asyncio.Future[int]) -> None:
        """Each caller's result or error, once its batch is over; then the listeners."""
        failed = None if batch.cancelled() else batch.exception()
        if batch.cancelled():
            failed = CommitUnknown("the writer stopped while committing this write")
        for job in jobs:
            if failed is not None:
                job.error = job.error or failed
            if not job.future.done():
                if job.error is not None:
                    job.future.set_exception(job.error)
                else:
                    job.future.set_result(job.result)
        written = 0 if failed is not None else batch.result()
        if written:
            for listener in self.commit_listeners:
                listener(written)
