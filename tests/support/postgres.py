"""A real PostgreSQL for the tests: the one LEADRELAY_TEST_POSTGRES names, else a throwaway
cluster (initdb + pg_ctl from Debian's postgresql package) on a free 127.0.0.1 port in a
temporary directory, stopped at the end.  Each test gets a fresh, empty database of its own.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import subprocess
import tempfile
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

    def _run(self, *args: str) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if self.user is not None:  # initdb and the server refuse to run as root
            command = ["runuser", "-u", self.user, "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise PostgresUnavailable(f"{args[0]} failed: {done.stderr.strip() or done.stdout}")

    def start(self) -> Self:
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
        return self

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
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

    def _admin(self) -> object:
        import psycopg

        try:
            return psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise PostgresUnavailable(
                f"cannot reach the test PostgreSQL {self.url}: {exc}"
            ) from exc

    def fresh_database(self) -> str:
        """CREATE DATABASE with a name no test has used; return its URL."""
        import psycopg

        name = f"leadrelay_test_{os.getpid()}_{next(self._names)}"
        conn = self._admin()
        assert isinstance(conn, psycopg.Connection)
        with conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
        parts = urlsplit(self.url)
        return urlunsplit(parts._replace(path=f"/{name}"))

    def drop(self, url: str) -> None:
        import psycopg

        name = urlsplit(url).path.lstrip("/")
        conn = self._admin()
        assert isinstance(conn, psycopg.Connection)
        with conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
