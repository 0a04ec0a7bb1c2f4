"""Shared fixtures: settings on a fresh database, the app in-process, soketi, PostgreSQL.

A module marked `both_backends` runs each of its tests that use `settings` twice: on a
fresh SQLite file and on a fresh PostgreSQL database (`support/postgres.py`).  A test that
needs PostgreSQL and cannot get one fails; it is never skipped.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
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


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames and metafunc.definition.get_closest_marker(
        "both_backends"
    ):
        metafunc.parametrize(
            "backend",
            ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)],
            indirect=True,
        )


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """ "sqlite" unless the module is marked both_backends (then each in turn)."""
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Server]:
    """The PostgreSQL the tests use: LEADRELAY_TEST_POSTGRES, else a throwaway cluster."""
    url = os.environ.get(POSTGRES_ENV)
    if url:
        yield Server(url)
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
    """A fresh, empty PostgreSQL database of this test's own."""
    url = pg_server.fresh_database()
    yield url
    pg_server.drop(url)


@pytest.fixture
def db(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> Path | str:
    """A fresh database of the test's backend: a SQLite file's path, or a PostgreSQL URL."""
    if backend == "postgres":
        url: str = request.getfixturevalue("pg_url")
        return url
    return tmp_path / "leadrelay.db"


@pytest.fixture
def settings(db: Path | str) -> Settings:
    """Settings on a fresh database, relay off (relay tests start their own)."""
    return Settings(db=db, relay="off")


@pytest.fixture(scope="session")
def soketi() -> Iterator[Soketi]:
    """One real soketi for the session; tests that stop it use their own."""
    with Soketi() as server:
        yield server
