"""Erasure: a lead's personal fields leave the API and the stored events, on both backends;
on SQLite they leave the bytes on disk too (what PostgreSQL's files keep is its own test's).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest

from leadrelay import erasure, leads
from leadrelay.auth import ADMIN
from leadrelay.store import open_store
from support.database import rows
from support.serve import Serve, cli, cli_json

pytestmark = pytest.mark.both_backends

ERASED = {
    "name": "Zebulon Quixwell",
    "email": "zebulon.quixwell@example.org",
    "phone": "+44 7700 918273",
    "source": "fair-stand-zq",
    "notes": "prefers calls after six, zq-notes",
}
KEPT = {"name": "Henrietta Kept-Lead", "email": "henrietta@example.org"}


def _raw_bytes(db: Path) -> bytes:
    return b"".join(
        path.read_bytes() for path in (db, Path(f"{db}-wal"), Path(f"{db}-shm")) if path.exists()
    )


def _found(data: bytes, fields: dict[str, str]) -> list[str]:
    return [value for value in fields.values() if value.encode() in data]


def test_erase_removes_personal_fields_everywhere_and_broadcasts_nothing(
    db: Path | str, tmp_path: Path
) -> None:
    cli(db, "init")
    provider = cli_json(db, "providers", "add", "Acme")
    with (
        Serve(db, relay="off") as server,
        httpx.Client(base_url=server.url, headers=server.auth()) as admin,
    ):
        lead = admin.post("/api/leads", json={**ERASED, "provider_id": provider["id"]}).json()
        kept = admin.post("/api/leads", json=KEPT).json()
        assert admin.patch(
            f"/api/admin/leads/{lead['id']}", json={"status": "contacted"}
        ).is_success
        if isinstance(db, Path):
            assert _found(_raw_bytes(db), ERASED)  # the values are on disk before
        before = cli_json(db, "outbox", "status")

        refused = httpx.delete(
            f"{server.url}/api/admin/leads/{lead['id']}",
            headers={"Authorization": f"Bearer {provider['token']}"},
        )
        assert refused.status_code == 403
        assert admin.delete("/api/admin/leads/999").json()["error"]["code"] == "lead_not_found"

        erased = admin.delete(f"/api/admin/leads/{lead['id']}")
        assert erased.status_code == 200, erased.text
        body = erased.json()
        assert body["name"] == "" and body["erased_at"]
        assert [body[f] for f in ("email", "phone", "source", "notes")] == [None] * 4
        assert (body["status"], body["provider_id"]) == ("contacted", provider["id"])
        assert body["events_rewritten"] == 2

        shown = admin.get(f"/api/admin/leads/{lead['id']}").json()
        assert shown["name"] == "" and shown["erased_at"] == body["erased_at"]
        mine = httpx.get(
            f"{server.url}/api/provider/leads",
            headers={"Authorization": f"Bearer {provider['token']}"},
        ).json()
        assert [row["name"] for row in mine["leads"]] == [""]
        events = admin.get("/api/admin/events", params={"lead_id": lead["id"]}).json()["events"]
        assert [e["seq"] for e in events] == [1, 2]
        for event in events:
            assert event["data"]["lead"]["name"] == ""
            assert event["data"]["lead"]["email"] is None
            assert event["data"]["lead"]["status"] in ("new", "contacted")
        # no event written, so nothing broadcast; the ledger is what it was
        after = cli_json(db, "outbox", "status")
        counts = ("pending", "delivered", "dead", "total")
        assert [after[c] for c in counts] == [before[c] for c in counts] == [3, 0, 0, 3]

        if isinstance(db, Path):
            assert body["checkpointed"] is True
            data = _raw_bytes(db)  # the daemon still running: db, -wal and -shm
            assert _found(data, ERASED) == []
            assert _found(data, KEPT) == list(KEPT.values())  # the search does find values

            backup = tmp_path / "after.db"
            cli(db, "db", "backup", str(backup))
            assert _found(backup.read_bytes(), ERASED) == []
            assert kept["name"].encode() in backup.read_bytes()

        again = admin.delete(f"/api/admin/leads/{lead['id']}").json()
        assert again["erased_at"] == body["erased_at"]  # erasing twice keeps the first time

    by_cli = cli_json(db, "leads", "erase", str(kept["id"]))
    assert by_cli["name"] == "" and by_cli["email"] is None
    shown = cli_json(db, "leads", "show", str(kept["id"]))
    assert (shown["name"], shown["email"], shown["status"]) == ("", None, "new")
    listed = {lead["id"]: lead["name"] for lead in cli_json(db, "leads", "list")}
    assert listed == {lead["id"]: "", kept["id"]: ""}
    if isinstance(db, Path):
        assert _found(_raw_bytes(db), KEPT) == []
    doctor = json.loads(cli(db, "doctor", "--json", check=False).stdout)["checks"]
    checks = {check["name"]: check["status"] for check in doctor}
    assert checks["database"] == checks["outbox ledger"] == "ok"  # Pusher is not set up here


LEAD_B = {
    "name": "Bartholomew Second-Erasure",
    "email": "bartholomew.second@example.org",
    "source": "second-erasure-stand",
}


def test_erase_after_an_earlier_erase_leaves_no_bytes_and_no_idempotency_rows(
    db: Path | str, tmp_path: Path
) -> None:
    """The review's sequence, found twice: erase A; create B; three more leads; B's status
    changes (its row grows and moves in its page); erase B.  Once a first erasure switched
    secure_delete off for the daemon's life, B's old row stayed in the file.  B was sent
    with its e-mail as the Idempotency-Key, as some CRMs do: that row goes too."""
    cli(db, "init")
    with (
        Serve(db, relay="off") as server,
        httpx.Client(base_url=server.url, headers=server.auth()) as admin,
    ):
        a = admin.post("/api/leads", json={"name": "Alma First-Erasure"}).json()
        assert admin.delete(f"/api/admin/leads/{a['id']}").status_code == 200
        b = admin.post(
            "/api/leads", json=LEAD_B, headers={"Idempotency-Key": LEAD_B["email"]}
        ).json()
        for n in range(3):
            assert admin.post("/api/leads", json={"name": f"Other Lead {n}"}).status_code == 201
        assert admin.patch(f"/api/admin/leads/{b['id']}", json={"status": "qualified"}).is_success
        erased = admin.delete(f"/api/admin/leads/{b['id']}").json()
        assert erased["name"] == ""

        if isinstance(db, Path):
            assert erased["checkpointed"] is True
            assert _found(_raw_bytes(db), LEAD_B) == []
            backup = tmp_path / "after.db"
            cli(db, "db", "backup", str(backup))
            assert _found(backup.read_bytes(), LEAD_B) == []
        keys = rows(db, f"SELECT key FROM idempotency_keys WHERE lead_id = {b['id']}")
        assert keys == []


def test_erase_holds_when_sqlite_starts_connections_without_secure_delete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SQLite built without SECURE_DELETE opens connections with the pragma off: leadrelay
    sets it on at connect, so the copy a status change leaves behind is zeroed too."""
    opened = sqlite3.connect

    def without_secure_delete(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = opened(*args, **kwargs)
        conn.execute("PRAGMA secure_delete = OFF")
        return conn

    monkeypatch.setattr(sqlite3, "connect", without_secure_delete)
    db = tmp_path / "leadrelay.db"

    async def run() -> None:
        store = await open_store(db)
        try:
            created = await leads.create_lead(store, leads.parse_new_lead(LEAD_B), status="new")
            lead_id = created.lead["id"]
            for n in range(3):
                await leads.create_lead(
                    store, leads.parse_new_lead({"name": f"Other Lead {n}"}), status="new"
                )
            await leads.change_lead(store, lead_id, {"status": "qualified"}, actor=ADMIN)
            assert (await erasure.erase_lead(store, lead_id))["checkpointed"] is True
        finally:
            await store.close()

    asyncio.run(run())
    assert _found(_raw_bytes(db), LEAD_B) == []
