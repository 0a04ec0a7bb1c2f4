"""A real `leadrelay serve` process on a free port, and the CLI run as a user would."""

from __future__ import annotations

import contextlib
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


def processes() -> list[tuple[int, int, int, bytes]]:
    """(pid, parent pid, process group, command line) of every process, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue  # it exited meanwhile
        ppid, pgrp = (int(n) for n in stat.rsplit(")", 1)[1].split()[1:3])
        found.append((int(entry.name), ppid, pgrp, cmdline))
    return found


def children_of(pid: int, marker: str) -> list[int]:
    """The child processes of `pid` whose command line holds `marker`."""
    return [p for p, ppid, _, cmd in processes() if ppid == pid and marker.encode() in cmd]


def group_members(pgid: int) -> list[int]:
    """The processes in the group `pgid` (a daemon's children keep its group when they
    outlive it)."""
    return [p for p, _, pgrp, _ in processes() if pgrp == pgid]


def await_group_gone(pgid: int, timeout: float = 60.0) -> list[int]:
    """Wait until no process is left in the group `pgid`; return those still there at the
    deadline."""
    deadline = time.monotonic() + timeout
    while (left := group_members(pgid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


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

    def start(self, timeout: float = 60.0) -> Self:
        """Start the daemon and wait until /healthz answers (seconds on a loaded machine).
        If it exits or never answers, its group is killed and reaped before the error."""
        if self.process is not None and self.process.returncode is None:
            raise RuntimeError("this serve was started and not stopped")
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
        try:
            self._await_health(self.process, timeout)
        except BaseException:
            self.kill()
            raise
        if self.admin_token is None:
            # the first start prints its token before it listens, so it is there by now
            match = TOKEN.search("".join(self.stdout))
            if match:
                self.admin_token = match.group(0)
            else:
                self.admin_token = cli_json(self.db, "tokens", "create", "--admin")["token"]
        return self

    def _await_health(self, process: subprocess.Popen[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"leadrelay serve exited {process.returncode}:\n{self.logs()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError(f"leadrelay serve did not answer within {timeout}s:\n{self.logs()}")

    def _read_stdout(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        with process.stdout:
            for line in process.stdout:
                self.stdout.append(line)

    def children(self, marker: str) -> list[int]:
        """The daemon's child processes whose command line holds `marker` (e.g.
        "leadrelay.lead_writer")."""
        assert self.process is not None
        return children_of(self.process.pid, marker)

    def logs(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read()

    def signal(self, sig: signal.Signals) -> None:
        """Send `sig` to the daemon's whole group (its lead writer and relay too), as long as
        the daemon is not reaped: until then its pid, and so its group, are still ours."""
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM and wait: the graceful path.  A daemon that does not exit in time is
        killed and reaped before the TimeoutExpired."""
        assert self.process is not None
        self.signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        self.close()
        return code

    def kill(self) -> None:
        """SIGKILL the whole group (daemon, lead writer, relay): a crash.  The daemon is
        reaped and its log closed whatever state it was in (exited already, or never
        answered), so no test leaves a process or a file for a later one to be warned of."""
        if self.process is not None:
            self.signal(signal.SIGKILL)  # a daemon that died first may leave its children
            self.process.wait()  # SIGKILL cannot be caught or ignored: no timeout needed
            self.close()

    def close(self) -> None:
        reader = getattr(self, "_reader", None)
        if reader is not None:
            reader.join(5)
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
