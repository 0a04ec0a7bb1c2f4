"""The review's smaller findings: a metrics folder any local user could take first, an
idempotency TTL that could reopen a replay window, and unlimited failed token checks."""

from __future__ import annotations

import asyncio
import os
import stat
import tempfile
import time
from pathlib import Path

import httpx
import pytest

from leadrelay.config import Settings, load_settings
from leadrelay.errors import ConfigError
from leadrelay.web import serve
from support.app import running_app

# --- the metrics folder ---------------------------------------------------------------------


def test_the_metrics_folder_is_private_and_unpredictable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another user made the folder's old name first (here: a link to a folder of theirs):
    serve could not start, or would have written where they chose."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (tmp_path / f"leadrelay-metrics-{os.getpid()}").symlink_to(theirs)
    made = [Path(serve._metrics_dir()) for _ in range(2)]
    for path in made:
        info = path.lstat()
        assert stat.S_ISDIR(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o700
        assert info.st_uid == os.getuid() and path.parent == tmp_path
    assert made[0] != made[1] and f"leadrelay-metrics-{os.getpid()}" not in {p.name for p in made}
    assert list(theirs.iterdir()) == []


def test_dead_daemons_metrics_folders_are_swept_but_never_another_users(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = tmp_path / "leadrelay-metrics-999999999-abcd1234"  # no such pid
    dead.mkdir(mode=0o700)
    linked = tmp_path / "leadrelay-metrics-999999998-efgh5678"
    target = tmp_path / "kept"
    target.mkdir()
    (target / "file").write_text("x")
    linked.symlink_to(target)
    serve._metrics_dir()
    assert not dead.exists()
    assert (target / "file").exists()  # a link is not followed


# --- the idempotency TTL against the webhook tolerance ---------------------------------------


def test_idempotency_ttl_must_outlast_twice_the_webhook_tolerance() -> None:
    with pytest.raises(ConfigError, match="idempotency_ttl_hours.*webhook_tolerance_seconds"):
        load_settings({"idempotency_ttl_hours": 0.1, "webhook_tolerance_seconds": 300}, env={})
    with pytest.raises(ConfigError, match="replay"):
        load_settings(
            {"idempotency_ttl_hours": 1}, env={"LEADRELAY_WEBHOOK_TOLERANCE_SECONDS": "7200"}
        )
    assert load_settings({"idempotency_ttl_hours": 1}, env={}).idempotency_ttl_hours == 1


# --- failed token checks, per address ---------------------------------------------------------

LIMIT = 60  # a minute's failures at once, then one a second


def _client(lr_app: object, address: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=lr_app, client=(address, 40000))  # type: ignore[arg-type]
    return httpx.AsyncClient(transport=transport, base_url="http://leadrelay.test")


@pytest.mark.anyio
async def test_failed_token_checks_are_limited_per_address(tmp_path: Path) -> None:
    settings = Settings(db=tmp_path / "leadrelay.db", relay="off", auth_failures_per_minute=LIMIT)
    async with running_app(settings) as lr:
        bad = {"Authorization": "Bearer lr_not-a-token"}
        async with (
            _client(lr.app, "203.0.113.7") as attacker,
            _client(lr.app, "198.51.100.2") as other,
        ):
            started, refused = time.monotonic(), []
            for n in range(2 * LIMIT):
                # the intake and any other route count alike
                if n % 2:
                    answer = await attacker.get("/api/admin/leads", headers=bad)
                else:
                    answer = await attacker.post("/api/leads", json={"name": "x"}, headers=bad)
                if answer.status_code != 401:
                    break
                refused.append(answer)
            # a minute's worth at once, and what came back meanwhile (one a second)
            came_back = int(time.monotonic() - started) + 1
            assert LIMIT <= len(refused) <= LIMIT + came_back, len(refused)
            limited = await attacker.get("/api/admin/leads", headers=bad)
            assert limited.status_code == 429, limited.text
            assert limited.json()["error"]["code"] == "too_many_failed_auth"
            assert 1 <= int(limited.headers["Retry-After"]) <= 2
            # even a good token waits from that address (it might be the guess that worked)
            good = await attacker.get("/api/admin/leads", headers=lr.auth())
            assert good.status_code == 429
            # other addresses are not held up
            assert (await other.get("/api/admin/leads", headers=lr.auth())).status_code == 200
            assert (await other.get("/api/admin/leads", headers=bad)).status_code == 401
            await asyncio.sleep(float(limited.headers["Retry-After"]) + 0.1)
            assert (await attacker.get("/api/admin/leads", headers=lr.auth())).status_code == 200
