"""Shared fixtures: settings on a fresh SQLite file, the app in-process, soketi."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from leadrelay.config import Settings
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


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings on a fresh database, relay off (relay tests start their own)."""
    return Settings(db=tmp_path / "leadrelay.db", relay="off")


@pytest.fixture(scope="session")
def soketi() -> Iterator[Soketi]:
    """One real soketi for the session; tests that stop it use their own."""
    with Soketi() as server:
        yield server
