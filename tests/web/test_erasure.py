"""Erasure: a lead's personal fields leave the API and the stored events, on both backends;
on SQLite they leave the bytes on disk too (what PostgreSQL's files keep is its own test's).
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

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
