"""Shared fixtures: settings on a fresh database, the app in-process, soketi, PostgreSQL.

A module marked `both_backends` runs each of its tests that use `settings` (or `db`) twice:
on a fresh SQLite file and on a fresh PostgreSQL database (`support/postgres.py`), migrated
from the session's template.  `module_settings` and `module_db` are the same, made once a
module for each backend: for modules whose cases share one app and each asserts what it
changed (or that it changed nothing).  A test that needs PostgreSQL and cannot get one
fails; it is never skipped.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from leadrelay.config import Settings
from support.postgres import ENV as POSTGRES_ENV
from support.postgres import Cluster, PostgresUnavailable, Server
from support.soketi import Soketi

# CI replays the same examples every run (a red CI names a real regression); locally,
# every run explores new ones.  HYPOTHESIS_PROFILE=explore forces exploring anywhere.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
hypothesis_settings.register_profile("explore", print_blob=True)
hypothesis_settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "explore")
)


# pytest-xdist's workers get COLUMNS=80 and LINES=24 from it; the CLI reads COLUMNS as the
# width the user asked for, so a worker's commands would wrap where the user's would not
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.pop("COLUMNS", None)
    os.environ.pop("LINES", None)


def pytest_configure(config: pytest.Config) -> None:
    """A suite started as a background job (`scripts/test &`, or from a script run with
    `&`) inherits SIGINT ignored, and so would every daemon it starts: exec keeps an
    ignored signal ignored.  The Ctrl-C tests' SIGINT then never reached a daemon still
    starting up, and they timed out.  A handler instead of SIG_IGN here is reset to the
    default in each child at exec, so the daemons meet Ctrl-C as from a terminal."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if not metafunc.definition.get_closest_marker("both_backends"):
        return
    backends = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
    for name, scope in (("backend", "function"), ("module_backend", "module")):
        if name in metafunc.fixturenames:
            metafunc.parametrize(name, backends, indirect=True, scope=scope)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """ "sqlite" unless the module is marked both_backends (then each in turn)."""
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture(scope="module")
def module_backend(request: pytest.FixtureRequest) -> str:
    """The same, once a module: pytest runs a module's SQLite tests, then its PostgreSQL ones."""
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Server]:
    """The PostgreSQL the tests use: LEADRELAY_TEST_POSTGRES, else a throwaway cluster."""
    url = os.environ.get(POSTGRES_ENV)
    if url:
        server = Server(url)
        yield server
        server.close()
        return
    try:
        cluster = Cluster().start()
    except PostgresUnavailable as exc:
        pytest.fail(f"this test needs PostgreSQL: {exc}")
    try:
        yield Server(cluster.url)
    finally:
        cluster.stop()


@pytest.fixture
def pg_url(pg_server: Server) -> Iterator[str]:
    """A fresh, empty PostgreSQL database of this test's own (migrations not yet run)."""
    url = pg_server.fresh_database()
    yield url
    pg_server.drop(url)


@pytest.fixture
def pg_migrated_url(pg_server: Server) -> Iterator[str]:
    """A fresh PostgreSQL database of this test's own, as leadrelay's first open leaves it."""
    url = pg_server.fresh_database(migrated=True)
    yield url
    pg_server.drop(url)


@pytest.fixture
def db(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> Path | str:
    """A fresh database of the test's backend: a SQLite file's path, or a PostgreSQL URL."""
    if backend == "postgres":
        url: str = request.getfixturevalue("pg_migrated_url")
        return url
    return tmp_path / "leadrelay.db"


@pytest.fixture
def settings(db: Path | str) -> Settings:
    """Settings on a fresh database, relay off (relay tests start their own)."""
    return Settings(db=db, relay="off")


@pytest.fixture(scope="module")
def new_module_db(
    module_backend: str, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Callable[[], Path | str]]:
    """Make fresh databases of the module's backend, kept until the module's end."""
    if module_backend != "postgres":
        yield lambda: tmp_path_factory.mktemp("db") / "leadrelay.db"
        return
    server: Server = request.getfixturevalue("pg_server")
    made: list[str] = []

    def new() -> str:
        made.append(server.fresh_database(migrated=True))
        return made[-1]

    yield new
    for url in made:
        server.drop(url)


@pytest.fixture(scope="module")
def module_db(new_module_db: Callable[[], Path | str]) -> Path | str:
    """A fresh database of the module's backend, shared by the module's tests."""
    return new_module_db()


@pytest.fixture(scope="module")
def module_settings(module_db: Path | str) -> Settings:
    return Settings(db=module_db, relay="off")


@pytest.fixture(scope="session")
def soketi() -> Iterator[Soketi]:
    """One real soketi for the session; tests that stop it use their own."""
    with Soketi() as server:
        yield server
