"""Shared fixtures: settings on a fresh SQLite file, the app in-process, soketi."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from leadrelay.config import Settings
from support.soketi import Soketi


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings on a fresh database, relay off (relay tests start their own)."""
    return Settings(db=tmp_path / "leadrelay.db", relay="off")


@pytest.fixture(scope="session")
def soketi() -> Iterator[Soketi]:
    """One real soketi for the session; tests that stop it use their own."""
    with Soketi() as server:
        yield server
