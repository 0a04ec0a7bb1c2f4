"""A history of what concurrent clients did and saw, recorded as Jepsen records one.

Each operation is an `invoke` by a process, then its completion by the same process:
`ok` (it happened), `fail` (it certainly did not) or `info` (nobody knows: the connection
dropped, the answer never came, or the server said so with `commit_unknown`).  Faults are
`info` operations of the process `nemesis`.  Times are seconds since the history began, on
the monotonic clock; `wall()` turns a `time.time()` (a websocket arrival) into the same scale.
The checker (checker.py) reads the whole history once the run is over.

    history = History()
    op = history.invoke("w3", "patch", lead=17, status="contacted")
    history.complete(op, *outcome(response))
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

INVOKE, OK, FAIL, INFO = "invoke", "ok", "fail", "info"
NEMESIS = "nemesis"

# 503 codes that promise nothing was written (CONTRACT §4, §5); `commit_unknown` promises
# nothing either way
NOT_WRITTEN = {"writer_unavailable", "database_unavailable", "unavailable"}
# transport errors raised before a byte of the request left: certainly not done
NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True)
class Event:
    """One stored event as the checker compares it, from wherever it was seen."""

    id: int
    event_id: str
    lead_id: int
    seq: int
    type: str
    data: dict[str, Any] = field(compare=False, repr=False)

    @classmethod
    def of_item(cls, item: dict[str, Any]) -> Event:
        """From an item of the events API."""
        return cls(
            item["id"], item["event_id"], item["lead_id"], item["seq"], item["event"], item["data"]
        )

    @property
    def lead(self) -> dict[str, Any]:
        lead: dict[str, Any] = self.data.get("lead") or {}
        return lead

    @property
    def provider_id(self) -> int | None:
        return self.lead.get("provider_id")

    def __str__(self) -> str:
        change = ""
        if self.type == "lead.status.updated":
            role = (self.data.get("changed_by") or {}).get("role")
            change = f" {self.data.get('old_status')}→{self.data.get('new_status')} by {role}"
        return (
            f"event id={self.id} lead={self.lead_id} seq={self.seq} {self.type}{change} "
            f"[status={self.lead.get('status')} provider={self.provider_id} "
            f"updated_at={self.lead.get('updated_at')}]"
        )


@dataclass(frozen=True)
class Op:
    index: int
    time: float
    process: str
    type: str
    f: str
    value: dict[str, Any]
    invoked: int | None = None  # a completion's invoke

    def __str__(self) -> str:
        parts = []
        for key, value in self.value.items():
            if key == "events":
                ids = [e.id for e in value]
                shown = f"{ids[:6]}…+{len(ids) - 6}" if len(ids) > 8 else str(ids)
                parts.append(f"events={shown}")
            elif key == "body":
                continue
            else:
                parts.append(f"{key}={value}")
        return (
            f"{self.index:>6} {self.time:8.3f}s {self.process:<14} {self.type:<6} "
            f"{self.f:<8} {' '.join(parts)}"
        )


class History:
    """Operations in the order they happened, safe to append from several threads."""

    def __init__(self) -> None:
        self.ops: list[Op] = []
        self._started = time.monotonic()
        self._wall_started = time.time()
        self._lock = threading.Lock()

    def now(self) -> float:
        return time.monotonic() - self._started

    def wall(self, at: float) -> float:
        """A `time.time()` on the history's scale."""
        return at - self._wall_started

    def _add(
        self, process: str, type_: str, f: str, value: dict[str, Any], invoked: int | None
    ) -> Op:
        with self._lock:
            op = Op(len(self.ops), self.now(), process, type_, f, value, invoked)
            self.ops.append(op)
        return op

    def invoke(self, process: str, f: str, **value: Any) -> Op:
        return self._add(process, INVOKE, f, value, None)

    def complete(self, invoked: Op, type_: str, value: dict[str, Any] | None = None) -> Op:
        """The completion of `invoked`: its value is the invoke's with `value` added."""
        assert type_ in (OK, FAIL, INFO), type_
        return self._add(
            invoked.process, type_, invoked.f, {**invoked.value, **(value or {})}, invoked.index
        )

    def fault(self, f: str, **value: Any) -> Op:
        """A nemesis operation that just happened (a fault begun or healed)."""
        return self._add(NEMESIS, INFO, f, value, None)

    def note(self, process: str, f: str, **value: Any) -> Op:
        """Something a client did on its own, with no answer to wait for (a follower's jump)."""
        return self._add(process, INFO, f, value, None)

    def completions(self, *fs: str) -> Iterator[Op]:
        for op in list(self.ops):
            if op.type != INVOKE and op.process != NEMESIS and (not fs or op.f in fs):
                yield op

    def invoke_of(self, op: Op) -> Op:
        return self.ops[op.invoked] if op.invoked is not None else op

    def faults(self) -> list[tuple[str, float, float]]:
        """(name, start, end) of every fault: from its `start` op to its `heal` op (or the end)."""
        windows: list[tuple[str, float, float]] = []
        open_: dict[str, float] = {}
        for op in self.ops:
            if op.process != NEMESIS:
                continue
            name = op.value.get("fault", op.f)
            if op.f == "start":
                open_[name] = op.time
            elif op.f == "heal" and name in open_:
                windows.append((name, open_.pop(name), op.time))
        windows += [(name, start, self.now()) for name, start in open_.items()]
        return windows


def outcome(
    response: httpx.Response | None, error: BaseException | None = None
) -> tuple[str, dict[str, Any]]:
    """What an HTTP answer (or the transport error instead of one) says about a write:
    (ok | fail | info, what to record)."""
    if response is None:
        assert error is not None
        kind = FAIL if isinstance(error, NEVER_SENT) else INFO
        return kind, {"error": type(error).__name__}
    status = response.status_code
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    value: dict[str, Any] = {"http": status, "body": body}
    if 200 <= status < 300:
        return OK, value
    code = body.get("error", {}).get("code") if isinstance(body, dict) else None
    value["code"] = code
    if status == 503 and code in NOT_WRITTEN:
        return FAIL, value
    if 400 <= status < 500:
        return FAIL, value
    return INFO, value  # 500s and commit_unknown: the write may be stored or not
