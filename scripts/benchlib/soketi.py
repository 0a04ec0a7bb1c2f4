"""A local soketi (Pusher-compatible server) standing in for Pusher Channels."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from benchlib.procs import SCRIPTS_DIR, BenchError, Server, free_port

SOKETI_BIN = SCRIPTS_DIR / "soketi" / "node_modules" / ".bin" / "soketi"

APP_ID = "12345"
APP_KEY = "bench-key"
APP_SECRET = "bench-secret"


@dataclass
class Soketi:
    port: int
    server: Server
    app_id: str = APP_ID
    key: str = APP_KEY
    secret: str = APP_SECRET

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/app/{self.key}?protocol=7&client=bench&version=1"

    def stop(self) -> None:
        self.server.stop()


def start_soketi(log_dir: Path) -> Soketi:
    if not SOKETI_BIN.exists():
        raise BenchError(f"soketi is not installed at {SOKETI_BIN}: run scripts/install-soketi")
    if shutil.which("node") is None:
        raise BenchError("node is not on PATH; soketi needs it")
    port, metrics_port = free_port(), free_port()
    # soketi takes its ports from the environment only; a --port flag is ignored.
    env = {
        "SOKETI_PORT": str(port),
        "SOKETI_METRICS_SERVER_PORT": str(metrics_port),
        "SOKETI_DEFAULT_APP_ID": APP_ID,
        "SOKETI_DEFAULT_APP_KEY": APP_KEY,
        "SOKETI_DEFAULT_APP_SECRET": APP_SECRET,
    }
    server = Server("soketi", [str(SOKETI_BIN), "start"], env=env, log_dir=log_dir).start()
    try:
        server.wait_http(f"http://127.0.0.1:{port}/ready", timeout=30)
    except BaseException:
        server.stop()
        raise
    return Soketi(port=port, server=server)
