"""Driving leadrelay itself through its CLI, as CONTRACT.md describes it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchlib.procs import REPO_ROOT, BenchError, Server, bench_env, free_port
from benchlib.soketi import Soketi


def leadrelay_argv() -> list[str]:
    """The console script beside the bench's interpreter, else on PATH, else `python -m`."""
    beside = Path(sys.executable).parent / "leadrelay"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("leadrelay")
    return [found] if found else [sys.executable, "-m", "leadrelay"]


def run_cli(*args: str, db: Path | None = None, timeout: float = 60) -> str:
    argv = leadrelay_argv() + list(args)
    if db is not None:
        argv += ["--db", str(db)]
    try:
        proc = subprocess.run(
            argv, env=bench_env(), cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"`leadrelay {' '.join(args)}` took over {timeout:.0f} s") from None
    if proc.returncode != 0:
        message = (proc.stderr.strip() or proc.stdout.strip()).splitlines()
        raise BenchError(
            f"`leadrelay {' '.join(args)}` exited {proc.returncode}: "
            f"{message[-1] if message else 'no output'}"
        )
    return proc.stdout


def why_not_ready() -> str | None:
    """None when leadrelay has every command the bench drives, else what is missing, in words."""
    missing = missing_commands()
    if not missing:
        return None
    if missing[0].startswith("leadrelay itself"):
        return f"leadrelay does not run yet: {missing[0].removeprefix('leadrelay itself ')}"
    return f"leadrelay lacks the command(s) {', '.join(missing)}"


def missing_commands() -> list[str]:
    """The commands the bench needs that this leadrelay does not have (yet)."""
    wanted = {
        (): ["serve", "tokens", "pusher", "outbox"],
        ("pusher",): ["set", "enable", "disable"],
        ("outbox",): ["status"],
    }
    missing: list[str] = []
    for group, names in wanted.items():
        try:
            text = run_cli(*group, "--help", timeout=30)
        except BenchError as exc:
            if not group:
                return [f"leadrelay itself {exc}"]
            missing.extend(" ".join((*group, name)) for name in names)
            continue
        missing.extend(" ".join((*group, n)) for n in names if n not in text)
    return missing


class Leadrelay:
    """One leadrelay database with an admin token and Pusher settings pointing at soketi.

    `leadrelay serve` creates the database, so the daemon starts first and the settings are
    stored while it runs: it follows a change within a second, as the contract says.
    """

    FOLLOW_SECONDS = 1.5

    def __init__(self, db: Path, soketi: Soketi, log_dir: Path) -> None:
        self.db = db
        self.soketi = soketi
        self.log_dir = log_dir
        self.token = ""
        self.server: Server | None = None
        self.port = 0
        self.env: dict[str, str] | None = None  # extra LEADRELAY_* settings for serve

    def start(self, name: str, relaying: bool) -> Server:
        """Serve; on the first start also make a token and store soketi's settings."""
        server = self.serve(name)
        try:
            if not self.token:
                self.token = json.loads(
                    run_cli("tokens", "create", "--admin", "--json", db=self.db)
                )["token"]
                run_cli(
                    "pusher",
                    "set",
                    "--app-id",
                    self.soketi.app_id,
                    "--key",
                    self.soketi.key,
                    "--secret",
                    self.soketi.secret,
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.soketi.port),
                    "--scheme",
                    "http",
                    db=self.db,
                )
            self.set_relaying(relaying)
        except BaseException:
            self.stop()
            raise
        return server

    def set_relaying(self, enabled: bool) -> None:
        run_cli("pusher", "enable" if enabled else "disable", db=self.db)
        status = self.outbox_status()
        if status.get("pusher_enabled", enabled) != enabled:
            raise BenchError(f"relaying is {status.get('pusher_enabled')} after the switch")
        time.sleep(self.FOLLOW_SECONDS)

    def outbox_status(self) -> dict[str, Any]:
        status = json.loads(run_cli("outbox", "status", "--json", db=self.db))
        if not isinstance(status, dict) or "pending" not in status:
            raise BenchError(f"`leadrelay outbox status --json` has no 'pending': {status!r}")
        return status

    def pending(self) -> int:
        return int(self.outbox_status()["pending"])

    def wait_pending(
        self, at_most: int, timeout: float, interval: float = 1.0
    ) -> tuple[int, float]:
        """Poll until at most `at_most` events are pending; (pending, seconds waited)."""
        start = time.monotonic()
        while True:
            pending = self.pending()
            waited = time.monotonic() - start
            if pending <= at_most or waited >= timeout:
                return pending, waited
            time.sleep(interval)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def serve(self, name: str) -> Server:
        self.port = free_port()
        argv = leadrelay_argv() + [
            "serve",
            "--db",
            str(self.db),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        self.server = Server(name, argv, env=self.env, log_dir=self.log_dir, cwd=REPO_ROOT).start()
        try:
            self.server.wait_http(f"{self.url}/healthz", timeout=30)
        except BaseException:
            self.server.stop()
            raise
        return self.server

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
