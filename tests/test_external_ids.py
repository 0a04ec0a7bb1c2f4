"""external_id becomes unique on a database that already holds duplicates: the migration keeps
every lead (nothing merged), the first of each external_id stays the CRM's key, and
`doctor` names the rest."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from leadrelay import crm_status, leads
from leadrelay.config import Settings
from leadrelay.doctor import run_checks
from leadrelay.errors import Conflict
from leadrelay.store.sqlite import Store
from leadrelay.store.sqlite.connection import statements
from leadrelay.store.sqlite.schema import MIGRATIONS

pytestmark = pytest.mark.anyio

NOW = "2026-11-30T10:00:00.000Z"


def database_at_version_1(path: Path, external_ids: list[str | None]) -> None:
    """A database as round 1 left it: migration 1 only, leads with these external_ids."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE migrations (version INTEGER PRIMARY KEY, applied_at REAL)")
    version, sql = MIGRATIONS[0]
    assert version == 1
    for statement in statements(sql):
        conn.execute(statement)
    conn.execute("INSERT INTO migrations VALUES (1, ?)", (time.time(),))
    for n, external_id in enumerate(external_ids, 1):
        conn.execute(
            "INSERT INTO leads (name, status, external_id, created_at, updated_at, last_seq) "
            "VALUES (?, 'new', ?, ?, ?, 0)",
            (f"Lead {n}", external_id, NOW, NOW),
        )
    conn.close()


async def test_migration_keeps_duplicates_and_the_first_is_the_key(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    database_at_version_1(db, ["a", "b", "a", None, "a", "b", None, "c"])
    store = await Store.open(db)
    try:
        rows = await store.fetch_all("SELECT id, external_id, external_id_dup FROM leads")
        assert len(rows) == 8  # nothing merged, nothing dropped
        assert [(r["id"], r["external_id_dup"]) for r in rows if r["external_id_dup"]] == [
            (3, 3),
            (5, 5),
            (6, 6),
        ]
        assert (await store.lead_by_external_id("a") or {})["id"] == 1
        assert (await store.lead_by_external_id("b") or {})["id"] == 2
        # a create with a known external_id finds the first lead, whatever came later
        again = await leads.create_lead(
            store, {**_fields("Again"), "external_id": "a"}, status="new"
        )
        assert (again.created, again.lead["id"]) == (False, 1)
        # as does a status webhook
        change = crm_status.parse_status_change(
            {"external_id": "a", "status": "contacted"}, ("new", "contacted")
        )
        result = await crm_status.update_status(store, change)
        assert (result.lead["id"], result.applied) == (1, True)
        # a new external_id is unique from now on, at the index too
        await leads.create_lead(store, {**_fields("New"), "external_id": "d"}, status="new")
        with pytest.raises(Conflict):
            await store.write(
                lambda tx: tx.insert_lead(
                    {
                        "name": "x",
                        "status": "new",
                        "external_id": "d",
                        "created_at": NOW,
                        "updated_at": NOW,
                    }  # fmt: skip
                )
            )
        assert await store.external_id_duplicates(10) == [
            {"external_id": "a", "first_id": 1, "leads": 3},
            {"external_id": "b", "first_id": 2, "leads": 2},
        ]
    finally:
        await store.close()


async def test_doctor_names_duplicate_external_ids(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    database_at_version_1(db, ["a", "a", "b", "b", "b", "c"])
    db.chmod(0o600)
    checks = {c["name"]: c for c in await run_checks(Settings(db=db, relay="off"))}
    found = checks["external ids"]
    assert found["status"] == "warn"
    assert "lead 1 and 1 more" in found["detail"] and "lead 3 and 2 more" in found["detail"]
    assert "Lead 1" not in found["detail"]  # lead ids, never a lead's personal fields


async def test_doctor_external_ids_ok_on_a_fresh_database(tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    store = await Store.open(db)
    await leads.create_lead(store, {**_fields("One"), "external_id": "a"}, status="new")
    await store.close()
    checks = {c["name"]: c for c in await run_checks(Settings(db=db, relay="off"))}
    assert checks["external ids"]["status"] == "ok"


def _fields(name: str) -> dict[str, object]:
    fields: dict[str, object] = dict.fromkeys(leads.NEW_LEAD_FIELDS)
    return {**fields, "name": name, "provider_id": None}
