"""A real PostgreSQL for the tests: the one LEADRELAY_TEST_POSTGRES names, else a throwaway
cluster (initdb + pg_ctl from Debian's postgresql package) on a free 127.0.0.1 port in a
temporary directory, stopped at the end.  Each test gets a fresh database of its own:
empty (`fresh_database()`, for the tests of migrations and `db copy`), or a copy of one that
leadrelay itself opened and migrated once per session (`fresh_database(migrated=True)`:
CREATE DATABASE … TEMPLATE copies its files: 10-40 ms less a database here than migrating
each afresh, and more as migrations are added).
"""

from __future__ import annotations

import asyncio
import glob
import itertools
import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Self
from urllib.parse import urlsplit, urlunsplit

from support.soketi import free_port

ENV = "LEADRELAY_TEST_POSTGRES"


class PostgresUnavailable(RuntimeError):
    pass


def _bin_dir() -> Path:
    found = shutil.which("initdb") or shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    if versions:
        return Path(versions[0])
    raise PostgresUnavailable(
        "no PostgreSQL server binaries (initdb, pg_ctl): run scripts/test, which installs "
        f"Debian's postgresql package when root, or set {ENV}=postgresql://user@host:port/db"
    )


class Cluster:
    """initdb in a temporary directory, started on a free port; `stop` removes it."""

    def __init__(self, *, fsync: bool = False) -> None:
        self.bin = _bin_dir()
        self.dir = Path(tempfile.mkdtemp(prefix="leadrelay-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.fsync = fsync
        self.user = "postgres" if os.geteuid() == 0 else None
        self.running = False

    def _run(self, *args: str) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if self.user is not None:  # initdb and the server refuse to run as root
            command = ["runuser", "-u", self.user, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise PostgresUnavailable(f"{args[0]} failed: {done.stderr.strip() or done.stdout}")

    def start(self) -> Self:
        """initdb (the first time), then start the server on its port."""
        if not self.data.exists():
            if self.user is not None:
                shutil.chown(self.dir, self.user)
            self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8")
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
            "-c max_connections=200 -c shared_buffers=64MB "
            f"-c fsync={'on' if self.fsync else 'off'}"
        )
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.dir / "log"), "-o", options, "-w",
            "start",
        )  # fmt: skip
        self.running = True
        return self

    def halt(self, mode: str = "fast") -> None:
        """Stop the server and keep its data: `start` brings it back on the same port.
        "fast" ends every session (as an operator's restart does), "immediate" kills the
        server without a checkpoint (as a crash would; the next start recovers from WAL)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")
        self.running = False

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        try:
            if self.running:
                self.halt()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Server:
    """A server to make databases on: its admin URL, and a counter for fresh names."""

    _names = itertools.count(1)

    def __init__(self, url: str) -> None:
        self.url = url
        self._template: str | None = None

    def _admin(self) -> object:
        import psycopg

        try:
            return psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise PostgresUnavailable(
                f"cannot reach the test PostgreSQL {self.url}: {exc}"
            ) from exc

    def _url_of(self, name: str) -> str:
        return urlunsplit(urlsplit(self.url)._replace(path=f"/{name}"))

    def _create(self, name: str, template: str) -> str:
        import psycopg

        conn = self._admin()
        assert isinstance(conn, psycopg.Connection)
        with conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return self._url_of(name)

    def fresh_database(self, *, migrated: bool = False) -> str:
        """CREATE DATABASE with a name no test has used; return its URL.  `migrated`: a copy
        of the session's template, which leadrelay's own open_store has migrated."""
        name = f"leadrelay_test_{os.getpid()}_{next(self._names)}"
        return self._create(name, self._migrated_template() if migrated else "template0")

    def _migrated_template(self) -> str:
        if self._template is None:
            name = f"leadrelay_template_{os.getpid()}"
            url = self._create(name, "template0")
            # on a thread of its own: a fixture may ask for it while an event loop runs
            with ThreadPoolExecutor(1) as thread:
                thread.submit(asyncio.run, _open_and_close(url)).result()
            self._template = name
        return self._template

    def drop(self, url: str) -> None:
        self._drop(urlsplit(url).path.lstrip("/"))

    def _drop(self, name: str) -> None:
        import psycopg

        conn = self._admin()
        assert isinstance(conn, psycopg.Connection)
        with conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        """Drop the session's template (a throwaway cluster goes whole anyway)."""
        if self._template is not None:
            self._drop(self._template)
            self._template = None


async def _open_and_close(url: str) -> None:
    """What a daemon's first start does to a new database: migrate it."""
    from leadrelay.store import open_store

    store = await open_store(url)
    await store.close()
