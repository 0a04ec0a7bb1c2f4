"""A real soketi server on free loopback ports, for tests that need Pusher over the wire.

    with Soketi() as server:
        client = pusher.Pusher(app_id=server.app_id, key=server.key, secret=server.secret,
                               host=server.host, port=server.port, ssl=False)

soketi is installed by `scripts/install-soketi`; its output goes to a temp file that
`logs()` returns, so a failing test can show what the server said.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import IO, Self

REPO = Path(__file__).resolve().parents[2]
SOKETI_DIR = REPO / "scripts" / "soketi"
SOKETI_BIN = SOKETI_DIR / "node_modules" / ".bin" / "soketi"


class SoketiError(RuntimeError):
    """soketi is missing or would not start; the message carries its log."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (another process may still take it later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class Soketi:
    """One soketi process in its own process group, stopped by killing that group."""

    host = "127.0.0.1"

    def __init__(
        self,
        *,
        app_id: str = "12345",
        key: str | None = None,
        secret: str | None = None,
        port: int | None = None,
        start_timeout: float = 15.0,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        if not app_id.isdigit():
            raise ValueError("app_id must be digits: the pusher package rejects anything else")
        self.app_id = app_id
        # Prefixed so that soketi's env parsing (it JSON-decodes every value) keeps a string.
        self.key = key or f"key-{secrets.token_hex(8)}"
        self.secret = secret or f"secret-{secrets.token_hex(16)}"
        self.port = port or 0
        self.metrics_port = 0
        self.start_timeout = start_timeout
        self.extra_env = dict(extra_env or {})
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        """The HTTP API base, e.g. http://127.0.0.1:40123."""
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> Self:
        """Start soketi and wait until its HTTP API answers; keeps the port across restarts."""
        if self.running:
            return self
        if not SOKETI_BIN.exists():
            raise SoketiError(
                f"soketi is not installed ({SOKETI_BIN} missing): run scripts/install-soketi"
            )
        # A port picked by free_port() can be taken before soketi binds it: try afresh.
        attempts = 1 if self.port else 3
        for attempt in range(attempts):
            if not self.port or attempt:
                self.port = free_port(self.host)
            self.metrics_port = free_port(self.host)
            try:
                self._spawn()
                self._wait_ready()
                return self
            except SoketiError:
                self._kill_group(signal.SIGKILL)
                if attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")

    def stop(self, *, graceful: bool = True, timeout: float = 10.0) -> None:
        """Stop soketi and every process of its group, and wait for them.

        Graceful: SIGTERM, so clients get a 4200 close first (SIGKILL after `timeout`).
        Not graceful: SIGKILL, as a crash looks to clients (no close frame).
        """
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            self._kill_group(signal.SIGTERM if graceful else signal.SIGKILL)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                self._kill_group(signal.SIGKILL)
                process.wait(5)
        # soketi forks a soketi-server child that outlives its parent: reap the group too.
        self._kill_group(signal.SIGKILL)
        self._process = None

    def restart(self, *, graceful: bool = True) -> Self:
        """Stop and start again on the same port, as a server restart looks to clients."""
        self.stop(graceful=graceful)
        return self.start()

    def pause(self) -> None:
        """Freeze soketi (SIGSTOP): connections stay open but nothing answers."""
        self._kill_group(signal.SIGSTOP)

    def resume(self) -> None:
        self._kill_group(signal.SIGCONT)

    def logs(self) -> str:
        """Everything soketi printed so far, across restarts."""
        if self._log is None:
            return ""
        self._log.flush()
        return Path(self._log.name).read_text(errors="replace")

    def close(self) -> None:
        """Stop soketi and delete its log."""
        self.stop(graceful=False)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Soketi(port={self.port}, app_id={self.app_id!r}, running={self.running})"

    def _spawn(self) -> None:
        if self._log is None:
            self._log = tempfile.NamedTemporaryFile(prefix="soketi-", suffix=".log")
        env = {
            **os.environ,
            "SOKETI_HOST": self.host,
            "SOKETI_PORT": str(self.port),
            "SOKETI_METRICS_HOST": self.host,
            "SOKETI_METRICS_SERVER_PORT": str(self.metrics_port),
            "SOKETI_DEFAULT_APP_ID": self.app_id,
            "SOKETI_DEFAULT_APP_KEY": self.key,
            "SOKETI_DEFAULT_APP_SECRET": self.secret,
            # The default 3 s pause between closing sockets and exiting only slows tests.
            "SOKETI_SHUTDOWN_GRACE_PERIOD": "100",
            **self.extra_env,
        }
        self._process = subprocess.Popen(
            [str(SOKETI_BIN), "start"],
            cwd=SOKETI_DIR,  # soketi loads ./.env: keep it away from the caller's directory
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                raise SoketiError(f"soketi exited while starting; its log:\n{self.logs()}")
            try:
                with urllib.request.urlopen(f"{self.url}/", timeout=1) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        raise SoketiError(
            f"soketi did not answer on {self.url} within {self.start_timeout:g} s; "
            f"its log:\n{self.logs()}"
        )

    def _kill_group(self, sig: signal.Signals) -> None:
        if self._process is None:
            return
        try:
            os.killpg(self._process.pid, sig)
        except ProcessLookupError:
            pass
