"""`leadrelay serve`: settings → first-start setup → create_app → uvicorn."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import shutil
import signal
import socket
import stat
import sys
import tempfile
from pathlib import Path
from types import FrameType

import uvicorn

from leadrelay.config import Settings
from leadrelay.errors import ConfigError
from leadrelay.events import Broadcast
from leadrelay.logs import setup_logging
from leadrelay.web.protocol import protocol_for, sweep


async def first_start(settings: Settings) -> str | None:
    """Open (and so create) the database; make an admin token if there is none yet."""
    from leadrelay import accounts
    from leadrelay.store import open_store

    store = await open_store(settings.db)
    try:
        return await accounts.create_admin_token(store, only_if_none=True)
    finally:
        await store.close()


def listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything else starts: a port in use is one line,
    with no relay or writer process started only to be stopped again."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"port {port} on {host} is in use (another leadrelay serve?); "
                "choose another with --port N"
            ) from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise ConfigError(
                f"cannot listen on {host}: no network interface of this machine has that "
                "address; give one it has with --host (127.0.0.1, or 0.0.0.0 for all)"
            ) from None
        raise ConfigError(
            f"cannot listen on {host} port {port} ({exc.strerror}); check --host and --port"
        ) from None
    sock.set_inheritable(False)
    return sock


async def serve(settings: Settings) -> None:
    # the writer and relay processes read the format from here (logs.setup_logging)
    os.environ["LEADRELAY_LOG_FORMAT"] = settings.log_format
    setup_logging(settings.log_level, settings.log_format)
    sock = listen(settings.host, settings.port)
    # the first line of the log (once the port is ours), so an operator cannot miss it
    warning = Broadcast.of(settings).warning()
    if warning is not None:
        logging.getLogger("leadrelay.serve").warning(warning)
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
        metrics_dir = _metrics_dir()
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir

    from leadrelay.web.app import create_app

    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=None,  # uvicorn's loggers keep the handler setup_logging gave them
        # "none" (or ""): no proxy is trusted, X-Forwarded-* is ignored from every peer
        proxy_headers=settings.forwarded_allow_ips.strip().lower() not in ("", "none"),
        forwarded_allow_ips=settings.forwarded_allow_ips,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=10,
        http=protocol_for(settings),  # the header caps and the request deadline
        limit_concurrency=settings.max_connections,
    )
    try:
        await _Server(config).serve(sockets=[sock])
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _metrics_dir() -> str:
    """A fresh private directory (mode 0700) with a name no one can guess or take first
    (mkdtemp: `leadrelay-metrics-PID-RANDOM`), so another local user can neither stop
    `serve` from starting nor choose where its counters go.  Those of dead daemons of this
    user are swept away (a daemon killed outright never removes its own); a link, or
    another user's directory, is never followed or removed."""
    base = Path(tempfile.gettempdir())
    for old in base.glob("leadrelay-metrics-*"):
        pid = old.name.split("-")[2]
        if pid.isdigit() and not _alive(int(pid)) and _ours(old):
            shutil.rmtree(old, ignore_errors=True)
    return tempfile.mkdtemp(prefix=f"leadrelay-metrics-{os.getpid()}-")


def _ours(path: Path) -> bool:
    try:
        info = path.lstat()
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _Server(uvicorn.Server):
    """uvicorn re-raises a caught SIGTERM or SIGINT once it has shut down gracefully, which
    would end the process by the signal (exit 143, or a KeyboardInterrupt) before leadrelay's
    own cleanup: a drained stop, by SIGTERM or Ctrl-C, is a clean stop, exit 0."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if sockets and self.started:
            # uvicorn names the address only for sockets it bound itself; this one was bound
            # before the first start (see listen), and people look for the line
            self._log_started_message(sockets)

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        with self.capture_signals():
            # Before uvicorn's handlers were in place, asyncio's answered Ctrl-C by cancelling
            # this task, and a cancel still pending would land in the app's startup, which
            # uvicorn logs as a failed lifespan, traceback and all. It lands here instead,
            # before anything has started: an interrupted start, exit 130.
            await asyncio.sleep(0)
            await self._serve(sockets)

    async def on_tick(self, counter: int) -> bool:
        if counter % 5 == 0:  # every half second (uvicorn ticks every 0.1 s)
            sweep(self.server_state.connections, asyncio.get_running_loop().time())
        return await super().on_tick(counter)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        while sig in (signal.SIGTERM, signal.SIGINT) and sig in self._captured_signals:
            self._captured_signals.remove(sig)
