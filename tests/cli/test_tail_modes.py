"""`tail`, `tail --server` and `test-connection --roundtrip` on every broadcast mode, against
a real soketi and daemon: encrypted channels opened with the stored key or with the
shared secret the daemon hands out, the private admin feed, the feed without personal data."""

from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.serve import Serve, cli, cli_json, point_at_soketi
from support.soketi import Soketi

pytestmark = [pytest.mark.soketi, pytest.mark.timeout(60)]
PERSON = {"name": "Tail Ada Secret", "email": "tail.ada@example.com", "phone": "+44 7700 900456"}


class Tail:
    """`leadrelay tail --json ARGS` in a subprocess, its lines collected as they come."""

    def __init__(self, db: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self._err = tempfile.TemporaryFile("w+")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "leadrelay", "tail", "--json", *args, "--db", str(db)],
            stdout=subprocess.PIPE,
            stderr=self._err,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self.lines: list[dict[str, Any]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(json.loads(line))

    def stderr(self) -> str:
        self._err.seek(0)
        return self._err.read()

    def wait_subscribed(self, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            if "subscribed to" in self.stderr():
                return
            time.sleep(0.05)
        raise AssertionError(f"tail did not subscribe; stderr:\n{self.stderr()}")

    def wait_lead(self, lead_id: int, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if line["data"]["lead"]["id"] == lead_id:
                    return line
            time.sleep(0.02)
        raise AssertionError(f"lead {lead_id} never shown: {self.lines}\n{self.stderr()}")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)
        self._reader.join(5)
        assert self.process.stdout is not None
        self.process.stdout.close()
        self._err.close()


@pytest.fixture
def tails() -> Iterator[list[Tail]]:
    started: list[Tail] = []
    yield started
    for tail in started:
        tail.close()


@contextmanager
def daemon(
    db: Path, soketi: Soketi, env: dict[str, str], master_key: str | None = None
) -> Iterator[Serve]:
    with Serve(db, env=env) as serve:
        point_at_soketi(db, soketi, enable=False)
        if master_key is not None:
            cli(db, "pusher", "set", "--encryption-master-key", "-", input=master_key + "\n")
        cli(db, "pusher", "enable")
        yield serve


def post_lead(serve: Serve, **fields: Any) -> dict[str, Any]:
    response = httpx.post(f"{serve.url}/api/leads", json=fields, headers=serve.auth())
    assert response.status_code == 201, response.text
    lead: dict[str, Any] = response.json()
    return lead


def test_tail_modes_open_encrypted_channels_locally_and_through_the_daemon(
    tmp_path: Path, soketi: Soketi, tails: list[Tail]
) -> None:
    db = tmp_path / "enc.db"
    master_key = base64.b64encode(secrets.token_bytes(32)).decode()
    env = {"LEADRELAY_ENCRYPTED_CHANNELS": "true"}
    with daemon(db, soketi, env, master_key) as serve:
        provider = cli_json(db, "providers", "add", "Seven", "--id", "7")
        local = Tail(db, env=env)  # the database's master key
        remote = Tail(db, "--server", serve.url, "--token", str(serve.admin_token))
        mine = Tail(db, "--provider", "7", "--server", serve.url, "--token", provider["token"])
        tails.extend([local, remote, mine])
        for tail in tails:
            tail.wait_subscribed()
        lead = post_lead(serve, **PERSON, provider_id=7)
        for tail, channel in [
            (local, "private-encrypted-admin"),
            (remote, "private-encrypted-admin"),
            (mine, "private-encrypted-provider.7"),
        ]:
            line = tail.wait_lead(lead["id"])
            assert line["channel"] == channel
            assert line["event"] == "lead.assigned"
            assert line["data"]["lead"]["email"] == PERSON["email"]
            assert master_key not in tail.stderr()

        # the round trip goes over an encrypted channel and opens it with the key
        result = cli(db, "test-connection", "--roundtrip", "--json")
        assert json.loads(result.stdout)["roundtrip_ms"] > 0
        assert master_key not in result.stdout + result.stderr
        shown = cli_json(db, "pusher", "show")
        assert shown["encryption_master_key"] != master_key
        assert master_key[:-2] not in json.dumps(shown)


def test_tail_modes_follow_the_private_admin_feed(
    tmp_path: Path, soketi: Soketi, tails: list[Tail]
) -> None:
    db = tmp_path / "priv.db"
    env = {"LEADRELAY_ADMIN_CHANNEL": "private-admin"}
    with daemon(db, soketi, env) as serve:
        local = Tail(db, env=env)
        remote = Tail(db, "--server", serve.url, "--token", str(serve.admin_token))
        tails.extend([local, remote])
        for tail in tails:
            tail.wait_subscribed()
        lead = post_lead(serve, name="Private Ada")
        for tail in tails:
            line = tail.wait_lead(lead["id"])
            assert line["channel"] == "private-admin"
            assert line["data"]["lead"]["name"] == "Private Ada"
        assert cli(db, "test-connection", "--roundtrip").returncode == 0


def test_tail_modes_without_personal_data(
    tmp_path: Path, soketi: Soketi, tails: list[Tail]
) -> None:
    db = tmp_path / "nopd.db"
    env = {"LEADRELAY_BROADCAST_PERSONAL_DATA": "false"}
    with daemon(db, soketi, env) as serve:
        remote = Tail(db, "--server", serve.url, "--token", str(serve.admin_token))
        tails.append(remote)
        remote.wait_subscribed()
        lead = post_lead(serve, **PERSON)
        line = remote.wait_lead(lead["id"])
        assert not {"name", "email", "phone"} & set(line["data"]["lead"])
        # the events API carries what was broadcast; the leads API still has the person
        events = httpx.get(f"{serve.url}/api/admin/events", headers=serve.auth()).json()
        assert all("name" not in e["data"]["lead"] for e in events["events"])
        one = httpx.get(f"{serve.url}/api/admin/leads/{lead['id']}", headers=serve.auth()).json()
        assert one["name"] == PERSON["name"]
