"""Settings precedence, the store's group commit and migrations, and the event rules."""

from __future__ import annotations

import asyncio
import json
import os
import stat
from pathlib import Path

import pytest

from leadrelay import events
from leadrelay.config import DEFAULT_STATUSES, Settings, load_settings
from leadrelay.errors import ConfigError, Conflict
from leadrelay.store import open_store
from leadrelay.store.base import Tx
from leadrelay.store.sqlite import Store
from leadrelay.store.sqlite.schema import MIGRATIONS
from support.contract import LEAD_KEYS


def test_settings_precedence_flag_env_file_default(tmp_path: Path) -> None:
    config = tmp_path / "leadrelay.toml"
    config.write_text('[leadrelay]\nport = 9001\nhost = "0.0.0.0"\ndb = "data/lr.db"\n')
    defaults = load_settings(env={})
    assert defaults.port == 8000 and defaults.statuses == DEFAULT_STATUSES
    from_file = load_settings(config_file=config, env={})
    assert from_file.port == 9001 and from_file.host == "0.0.0.0"
    assert from_file.db == tmp_path / "data" / "lr.db"  # relative to the file
    from_env = load_settings(config_file=config, env={"LEADRELAY_PORT": "9002"})
    assert from_env.port == 9002 and from_env.host == "0.0.0.0"
    from_flag = load_settings({"port": 9003}, config_file=config, env={"LEADRELAY_PORT": "9002"})
    assert from_flag.port == 9003
    statuses = load_settings(env={"LEADRELAY_STATUSES": "open, won ,lost"})
    assert statuses.statuses == ("open", "won", "lost")


def test_settings_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="port"):
        load_settings(env={"LEADRELAY_PORT": "eighty"})
    bad = tmp_path / "bad.toml"
    bad.write_text("[leadrelay]\nprot = 1\n")
    with pytest.raises(ConfigError, match="unknown settings: prot"):
        load_settings(config_file=bad, env={})
    with pytest.raises(ConfigError, match="relay"):
        load_settings({"relay": "sideways"}, env={})


def test_settings_file_in_repo_documents_every_setting() -> None:
    text = (Path(__file__).resolve().parents[1] / "leadrelay.toml").read_text()
    import tomllib

    table = tomllib.loads(text)["leadrelay"]
    defaults = Settings()
    from dataclasses import fields

    for field in fields(Settings):
        assert f"{field.name} =" in text, f"leadrelay.toml lacks {field.name}"
        value = getattr(defaults, field.name)
        expected = list(value) if isinstance(value, tuple) else value
        expected = str(expected) if isinstance(value, Path) else expected
        assert table[field.name] == expected, field.name


@pytest.mark.anyio
async def test_store_creates_private_file_and_records_migrations(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    store = await Store.open(path)
    try:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        rows = await store.fetch_all("SELECT version FROM migrations")
        assert [row["version"] for row in rows] == [version for version, _ in MIGRATIONS]
        mode = await store.fetch_one("PRAGMA journal_mode")
        assert mode == {"journal_mode": "wal"}
    finally:
        await store.close()
    again = await Store.open(path)  # reopening applies nothing twice
    await again.close()


@pytest.mark.anyio
@pytest.mark.both_backends
@pytest.mark.parametrize("on_loop", [False, True], ids=["thread", "on_loop"])
async def test_store_group_commit_shares_transactions_and_isolates_failures(
    db: Path | str, on_loop: bool
) -> None:
    # on_loop: the lead writer's and the relay's store, every call on the loop's thread
    store = await open_store(db, on_loop=on_loop)
    commits: list[int] = []
    store.commit_listeners.append(commits.append)

    def add(name: str) -> object:
        def job(tx: Tx) -> int:
            if name == "bad":
                tx.insert_provider("half-written", None, "t")
                tx.insert_provider("dup", 1, "t")  # id 1 exists: IntegrityError
            return tx.insert_provider(name, None, "t")

        return job

    try:
        await store.write(add("first"))  # id 1
        before = store.transactions
        results = await asyncio.gather(
            *(store.write(add(f"p{i}")) for i in range(40)),
            store.write(add("bad")),
            return_exceptions=True,
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        assert len(errors) == 1 and isinstance(errors[0], Conflict)
        names = [row["name"] for row in await store.list_providers()]
        assert "half-written" not in names  # the failing job left nothing behind
        assert len(names) == 41
        # 41 concurrent writes shared a handful of transactions
        assert store.transactions - before <= 4
    finally:
        await store.close()


def test_channels_and_event_types_follow_the_contract() -> None:
    assert set(events.LEAD_FIELDS) == LEAD_KEYS
    assert events.channels_for(None) == ["admin"]
    assert events.channels_for(7) == ["admin", "private-provider.7"]
    before = {"status": "new", "provider_id": 1}
    assert events.change_events(before, dict(before)) == []
    assert events.change_events(before, {**before, "status": "lost"}) == ["lead.status.updated"]
    assert events.change_events(before, {**before, "provider_id": 2}) == ["lead.assigned"]
    both = {"status": "lost", "provider_id": 2}
    assert events.change_events(before, both) == ["lead.assigned", "lead.status.updated"]


def test_event_data_is_shortened_to_fit_pushers_limit() -> None:
    lead = {
        "id": 1,
        "name": "é" * 200,
        "email": None,
        "phone": None,
        "status": "new",
        "provider_id": None,
        "source": "ü" * 9000,  # 18,000 bytes of UTF-8
        "created_at": "t",
        "updated_at": "t",
    }
    event = events.lead_assigned(lead, 1, "t")
    assert len(event.payload.encode()) <= events.MAX_DATA_BYTES
    data = json.loads(event.payload)
    assert data["lead"]["source"].endswith("…")
    assert data["lead"]["name"] == "é" * 200  # only what had to be shortened was
    assert lead["source"] == "ü" * 9000  # never the stored lead
