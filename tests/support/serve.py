"""A real `leadrelay serve` process on a free port, and the CLI run as a user would."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any, Self

import httpx

from support.soketi import Soketi, free_port

TOKEN = re.compile(r"lr_[A-Za-z0-9_-]+")


def cli(
    db: Path | str,
    *args: str,
    check: bool = True,
    env: dict[str, str] | None = None,
    input: str | None = None,
    timeout: float = 30,
) -> subprocess.CompletedProcess[str]:
    """Run `leadrelay ARGS --db DB` and return what it did."""
    result = subprocess.run(
        [sys.executable, "-m", "leadrelay", *args, "--db", str(db)],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        input=input,
        timeout=timeout,
    )
    if check and result.returncode != 0:
        command = " ".join(args)
        raise AssertionError(
            f"leadrelay {command} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
    return result


def cli_json(db: Path | str, *args: str) -> Any:
    return json.loads(cli(db, *args, "--json").stdout)


def point_at_soketi(
    db: Path | str,
    soketi: Soketi,
    *,
    enable: bool = True,
    via: tuple[str, int] | None = None,
    secret: str | None = None,
) -> None:
    """Store soketi's app, key and secret (or `secret`) as the Pusher settings, naming soketi
    itself or the `via` (host, port) in front of it."""
    host, port = via or (soketi.host, soketi.port)
    cli(
        db,
        "pusher",
        "set",
        "--app-id",
        soketi.app_id,
        "--key",
        soketi.key,
        "--secret",
        secret or soketi.secret,
        "--host",
        host,
        "--port",
        str(port),
        "--scheme",
        "http",
    )
    if enable:
        cli(db, "pusher", "enable")


class Serve:
    """`leadrelay serve` in its own process group; the admin token it printed on first start."""

    def __init__(
        self, db: Path | str, *, env: dict[str, str] | None = None, relay: str = "process"
    ) -> None:
        self.db = db
        self.port = 0
        self.env = {"LEADRELAY_RELAY": relay, "LEADRELAY_RELAY_POLL_SECONDS": "0.2", **(env or {})}
        self.admin_token: str | None = None
        self.process: subprocess.Popen[str] | None = None
        self._log: IO[str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def auth(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.admin_token}"}

    def start(self, timeout: float = 15.0) -> Self:
        self.port = self.port or free_port()
        self._log = tempfile.TemporaryFile("w+")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "leadrelay",
                "serve",
                "--db",
                str(self.db),
                "--port",
                str(self.port),
            ],
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            env={**os.environ, **self.env},
            start_new_session=True,
        )
        self.stdout: list[str] = []
        self._reader = threading.Thread(target=self._read_stdout, args=(self.process,), daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"leadrelay serve exited {self.process.returncode}:\n{self.logs()}"
                )
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        else:
            self.kill()
            raise RuntimeError(f"leadrelay serve did not answer within {timeout}s:\n{self.logs()}")
        if self.admin_token is None:
            # the first start prints its token before it listens, so it is there by now
            match = TOKEN.search("".join(self.stdout))
            if match:
                self.admin_token = match.group(0)
            else:
                self.admin_token = cli_json(self.db, "tokens", "create", "--admin")["token"]
        return self

    def _read_stdout(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        with process.stdout:
            for line in process.stdout:
                self.stdout.append(line)

    def logs(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read()

    def signal(self, sig: signal.Signals) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, sig)

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM and wait: the graceful path."""
        assert self.process is not None
        self.signal(signal.SIGTERM)
        code = self.process.wait(timeout)
        self.close()
        return code

    def kill(self) -> None:
        """SIGKILL the whole group (daemon and relay process): a crash."""
        if self.process is not None:
            self.signal(signal.SIGKILL)
            self.process.wait(10)
            self.close()

    def close(self) -> None:
        self._reader.join(5)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()


def stored_events(client: httpx.Client) -> list[dict[str, Any]]:
    """Every event in the outbox, oldest first, from the admin events API."""
    events: list[dict[str, Any]] = []
    after = 0
    for _ in range(1000):
        page = client.get("/api/admin/events", params={"after": after, "limit": 1000}).json()
        events += page["events"]
        if not page["events"]:
            return events
        after = page["next_after"]
    raise AssertionError("the events API never ran out of pages")


def stored_leads(client: httpx.Client) -> list[dict[str, Any]]:
    """Every lead, oldest first, from the admin leads API."""
    leads: list[dict[str, Any]] = []
    after = 0
    for _ in range(1000):
        page = client.get("/api/admin/leads", params={"after": after, "limit": 500}).json()
        leads += page["leads"]
        if page["next_after"] is None:
            return leads
        after = page["next_after"]
    raise AssertionError("the leads list never ran out of pages")


WALK = ("contacted", "qualified", "converted")


def make_leads(client: httpx.Client, prefix: str, count: int) -> list[int]:
    """Create leads and walk each through WALK: 1 + len(WALK) events per lead.
    Every request must be answered 2xx, whatever Pusher is doing."""
    ids = []
    for n in range(count):
        response = client.post("/api/leads", json={"name": f"{prefix} {n}"})
        assert response.status_code == 201, response.text
        ids.append(response.json()["id"])
    for status in WALK:
        for lead_id in ids:
            response = client.patch(f"/api/admin/leads/{lead_id}", json={"status": status})
            assert response.status_code == 200, response.text
    return ids
