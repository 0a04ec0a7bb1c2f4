"""A lead writer that is alive but stuck (SIGSTOP) must not hang intake: real `serve`, on
both backends."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest

from support.serve import Serve, cli_json

pytestmark = [pytest.mark.slow, pytest.mark.both_backends]

DEADLINE = 2.0
QUEUE_LIMIT = 6
ENV = {
    "LEADRELAY_WRITE_TIMEOUT_SECONDS": str(DEADLINE),
    "LEADRELAY_WRITE_QUEUE_LIMIT": str(QUEUE_LIMIT),
}


def writer_pids(serve: Serve) -> list[int]:
    """The daemon's lead writer children."""
    return serve.children("leadrelay.lead_writer")


def post(
    url: str, headers: dict[str, str], name: str, out: list[tuple[httpx.Response, float]]
) -> None:
    started = time.monotonic()
    response = httpx.post(f"{url}/api/leads", json={"name": name}, headers=headers, timeout=30)
    out.append((response, time.monotonic() - started))


def stall(serve: Serve, pid: int, names: list[str]) -> list[tuple[httpx.Response, float]]:
    """SIGSTOP the writer, POST `names` at once, and return their answers (the writer is
    left stopped)."""
    os.kill(pid, signal.SIGSTOP)
    answers: list[tuple[httpx.Response, float]] = []
    threads = [
        threading.Thread(target=post, args=(serve.url, serve.auth(), name, answers))
        for name in names
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE + 10)
    return answers


def assert_refused_in_time(answers: list[tuple[httpx.Response, float]], within: float) -> None:
    for response, took in answers:
        assert response.status_code == 503, response.text
        assert response.json()["error"]["code"] == "writer_unavailable"
        assert int(response.headers["Retry-After"]) >= 1
        assert took < within, took


def test_writer_stalled_answers_503_by_the_deadline_and_writes_nothing(db: Path | str) -> None:
    with Serve(db, env=ENV, relay="off") as serve:
        assert post_ok(serve, "before")
        (writer,) = writer_pids(serve)
        try:
            answers = stall(serve, writer, [f"stalled {n}" for n in range(3)])
        finally:
            os.kill(writer, signal.SIGCONT)  # thawed before it is replaced: it has them all
        assert len(answers) == 3
        assert_refused_in_time(answers, DEADLINE + 1.5)
        refused = 'leadrelay_writes_refused_total{code="writer_unavailable"} 3.0'
        assert refused in httpx.get(f"{serve.url}/metrics").text.splitlines()
        assert post_ok(serve, "after")
        assert writer_pids(serve) == [writer], "a writer that thawed in time is kept"
        # nothing half-written: the thawed writer refused what the daemon had answered 503
        names = [lead["name"] for lead in cli_json(serve.db, "leads", "list")]
        assert names == ["before", "after"], names


def test_writer_stalled_queue_is_bounded_and_the_writer_replaced(db: Path | str) -> None:
    with Serve(db, env=ENV, relay="off") as serve:
        assert post_ok(serve, "before")
        (stalled,) = writer_pids(serve)
        try:
            # two more than the queue holds, all at once: whichever two come last are
            # refused at once ("already waiting"), not at the deadline
            answers = stall(serve, stalled, [f"stalled {n}" for n in range(QUEUE_LIMIT + 2)])
            assert len(answers) == QUEUE_LIMIT + 2
            over = [a for a in answers if "already waiting" in a[0].json()["error"]["message"]]
            assert len(over) == 2, [a[0].text for a in answers]
            assert_refused_in_time(over, DEADLINE)
            assert_refused_in_time(answers, DEADLINE + 1.5)

            # the supervisor replaces the writer that stopped answering its heartbeat
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and writer_pids(serve) in ([], [stalled]):
                time.sleep(0.1)
            replacement = writer_pids(serve)
            assert replacement and stalled not in replacement, replacement
            assert _gone(stalled), "the stuck writer still lives"
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(stalled, signal.SIGCONT)
        assert post_ok(serve, "after")
        names = [lead["name"] for lead in cli_json(serve.db, "leads", "list")]
        assert names == ["before", "after"], names


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def post_ok(serve: Serve, name: str) -> bool:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        response = httpx.post(
            f"{serve.url}/api/leads", json={"name": name}, headers=serve.auth(), timeout=10
        )
        if response.status_code == 201:
            return True
        time.sleep(0.2)
    return False
