"""`GET /readyz`: no write per poll, and the details only for an admin.

Every call used to make a durable write (an fsync and the write lock): eight pollers cut
intake by a third.  And anyone could read the host name, the PIDs, the relay's pause reason
and database error texts in it.
"""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from leadrelay.config import Settings
from leadrelay.errors import Unavailable
from support.app import running_app
from support.database import rows
from support.serve import Serve, cli

POLLS = 40


@pytest.mark.anyio
@pytest.mark.both_backends
async def test_polling_readyz_makes_no_write(settings: Settings) -> None:
    async with running_app(settings) as lr:
        before = lr.store.transactions
        answers = await asyncio.gather(*(lr.client.get("/readyz") for _ in range(POLLS)))
        for _ in range(5):  # and one after another, past the cache
            answers.append(await lr.client.get("/readyz", headers=lr.auth()))
            await asyncio.sleep(0.3)
        assert {a.status_code for a in answers} == {200}
        assert lr.store.transactions == before
    assert rows(settings.db, "SELECT key FROM settings WHERE key = 'readyz'") == []


def test_polling_a_served_readyz_leaves_the_database_file_alone(tmp_path: Path) -> None:
    """Through a real serve: SQLite's data_version, seen from another connection, moves
    with every commit of any other connection; the pollers make none."""
    db = tmp_path / "leadrelay.db"
    cli(db, "init")
    with Serve(db, relay="off") as server:
        watcher = sqlite3.connect(db)
        try:
            (before,) = watcher.execute("PRAGMA data_version").fetchone()
            with httpx.Client(base_url=server.url, timeout=10) as client:
                assert all(client.get("/readyz").status_code == 200 for _ in range(POLLS))
            (after,) = watcher.execute("PRAGMA data_version").fetchone()
        finally:
            watcher.close()
    assert after == before


@pytest.mark.anyio
async def test_a_failed_write_makes_it_not_ready_until_writes_work(settings: Settings) -> None:
    """The health writes record: a 503 makes the daemon not ready at once (the cached
    report notwithstanding), with a probe write to see the database take writes again."""
    async with running_app(settings) as lr:
        assert (await lr.client.get("/readyz")).status_code == 200
        lr.state.readiness.write_failed(
            Unavailable("the disk is full", code="database_unavailable")
        )
        before = lr.store.transactions
        ready = await lr.client.get("/readyz")  # the probe finds the database writable
        assert ready.status_code == 200 and lr.store.transactions == before + 1
        assert lr.state.readiness.failed_write is None


def test_anonymous_callers_see_the_status_and_codes_only(tmp_path: Path) -> None:
    db = tmp_path / "leadrelay.db"
    cli(db, "init")
    with Serve(db, relay="process", env={"LEADRELAY_ENCRYPTED_CHANNELS": "true"}) as server:
        anonymous = httpx.get(f"{server.url}/readyz", timeout=10)
        assert anonymous.status_code == 200
        assert anonymous.json() == {"status": "ready", "problems": []}
        deadline = time.monotonic() + 20
        while True:  # once the relay process has taken the lease
            admin = httpx.get(f"{server.url}/readyz", headers=server.auth(), timeout=10).json()
            if admin["relay_lease"]["this_daemon"]:
                break
            assert time.monotonic() < deadline, admin
            time.sleep(0.1)
        assert admin["relay_lease"]["host"] == socket.gethostname()

        # a paused relay (encrypted channels, no master key): the reason is the admin's
        cli(db, "pusher", "set", "--app-id", "1", "--key", "k", "--secret", "s-secret",
            "--host", "127.0.0.1", "--port", "9", "--scheme", "http")  # fmt: skip
        cli(db, "pusher", "enable")
        with httpx.Client(base_url=server.url, headers=server.auth(), timeout=10) as client:
            assert client.post("/api/leads", json={"name": "Held"}).status_code == 201
            deadline = time.monotonic() + 30  # the relay pauses on its first send
            while client.get("/readyz").status_code != 503:
                assert time.monotonic() < deadline, server.logs()
                time.sleep(0.1)
        anonymous = httpx.get(f"{server.url}/readyz", timeout=10)
        assert anonymous.status_code == 503
        assert anonymous.json() == {"status": "not_ready", "problems": ["relay_paused"]}
        assert server.process is not None
        for hidden in ("master key", "pid", socket.gethostname(), str(server.process.pid)):
            assert hidden not in anonymous.text
        admin = httpx.get(f"{server.url}/readyz", headers=server.auth(), timeout=10).json()
        assert admin["problems"] == ["relay_paused"]
        assert "encryption master key" in admin["details"][0]
        assert "master key" in admin["relay"]["paused_reason"]
        assert admin["relay_lease"]["serve_pid"] == server.process.pid
