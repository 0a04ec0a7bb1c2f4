"""The relay's log as an operator reads it: a real `serve` relaying through a faulty proxy,
on both backends."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
import pytest

from support.faulty_pusher import FaultyPusher, point_at_proxy
from support.serve import Serve, cli, cli_json
from support.soketi import Soketi

pytestmark = [pytest.mark.slow, pytest.mark.soketi, pytest.mark.both_backends]

RELAY_ENV = {"LEADRELAY_RELAY_MAX_BACKOFF_SECONDS": "1", "LEADRELAY_RELAY_TIMEOUT_SECONDS": "1"}
RESUMED = re.compile(r"delivery resumed after \d+ s: (\d+) events? waiting")


def wait_for_log(serve: Serve, pattern: str, timeout: float = 15) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        logs = serve.logs()
        if re.search(pattern, logs):
            return logs
        time.sleep(0.1)
    raise AssertionError(f"no log line matching {pattern!r} in:\n{serve.logs()}")


def test_relay_log_reads_right_through_start_outage_and_pause(
    db: Path | str, soketi: Soketi
) -> None:
    with (
        FaultyPusher(soketi) as proxy,
        Serve(db, env=RELAY_ENV) as serve,
        httpx.Client(base_url=serve.url, headers=serve.auth(), timeout=15) as client,
    ):
        wait_for_log(serve, "Pusher is off")
        assert "settings changed" not in serve.logs(), "nothing changed at start"

        point_at_proxy(serve.db, proxy)
        proxy.fault("status", status=500)
        assert client.post("/api/leads", json={"name": "one"}).status_code == 201
        logs = wait_for_log(serve, r"delivery of 1 event failed")
        assert "1 events" not in logs

        started = time.monotonic()
        time.sleep(1.0)
        proxy.clear()
        logs = wait_for_log(serve, RESUMED.pattern)
        line = next(line for line in logs.splitlines() if RESUMED.search(line))
        seconds = int(re.search(r"after (\d+) s", line).group(1))  # type: ignore[union-attr]
        assert 0 <= seconds <= time.monotonic() - started + 1, line
        assert len(RESUMED.findall(logs)) == 1, "one line per outage"
        assert cli_json(serve.db, "outbox", "status")["pending"] == 0

        cli(serve.db, "pusher", "set", "--secret", "wrong-secret-0123456789")
        time.sleep(1.0)  # the relay follows settings within a second
        for n in range(3):
            client.post("/api/leads", json={"name": f"paused {n}"})
        wait_for_log(serve, "relaying paused")
        wait_for_metric(client, "leadrelay_relay_paused 1")
        time.sleep(1.0)
        logs = serve.logs()
        assert "retry in 0.0" not in logs, logs
        assert "retry in" not in logs.split("relaying paused", 1)[1], "a pause is not a retry"

        cli(serve.db, "pusher", "set", "--secret", soketi.secret)
        wait_for_log(serve, r"relaying running again")
        wait_for_metric(client, "leadrelay_relay_paused 0")
        logs = wait_for_log(serve, rf"{RESUMED.pattern}[\s\S]*{RESUMED.pattern}")
        assert len(RESUMED.findall(logs)) == 2


def wait_for_metric(client: httpx.Client, line: str, seconds: float = 15.0) -> None:
    """/metrics shows `line` (a gauge read from the database at scrape time) in time."""
    deadline = time.monotonic() + seconds
    text = ""
    while time.monotonic() < deadline:
        text = client.get("/metrics").text
        if line in text.splitlines():
            return
        time.sleep(0.1)
    raise AssertionError(f"/metrics never showed {line!r}:\n{text}")
