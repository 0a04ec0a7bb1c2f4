"""What the group commit of every backend queues: a write job and how its caller hears back."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


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
