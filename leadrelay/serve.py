"""`leadrelay serve`: settings → first-start setup → create_app → uvicorn."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
from types import FrameType

import uvicorn

from leadrelay.config import Settings
from leadrelay.logs import setup_logging


async def first_start(settings: Settings) -> str | None:
    """Open (and so create) the database; make an admin token if there is none yet."""
    from leadrelay import accounts
    from leadrelay.store import Store

    store = await Store.open(settings.db)
    try:
        return await accounts.create_admin_token(store, only_if_none=True)
    finally:
        await store.close()


async def serve(settings: Settings) -> None:
    setup_logging(settings.log_level)
    token = await first_start(settings)
    if token is not None:
        sys.stdout.write(
            "leadrelay: no admin token existed, so one was made. It is shown only this once:\n"
            f"  {token}\n"
            "Use it as 'Authorization: Bearer TOKEN'. More: leadrelay tokens create --admin\n"
        )
        sys.stdout.flush()
    metrics_dir = None
    if settings.relay == "process" and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # the relay process's counters reach /metrics through files in this directory;
        # it must be set before prometheus_client is first imported
        metrics_dir = tempfile.mkdtemp(prefix="leadrelay-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir

    from leadrelay.api import create_app

    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=10,
    )
    try:
        await _Server(config).serve()
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


class _Server(uvicorn.Server):
    """uvicorn re-raises a caught SIGTERM once it has shut down gracefully, which would end
    the process by the signal (exit 143) before leadrelay's own cleanup: a drained SIGTERM
    is a clean stop, exit 0."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        if sig == signal.SIGTERM and sig in self._captured_signals:
            self._captured_signals.remove(sig)
