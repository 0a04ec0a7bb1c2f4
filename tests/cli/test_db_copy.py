"""`leadrelay db copy --to postgresql://…`: a SQLite database with delivered, pending and
dead-lettered events moves into an empty PostgreSQL one, and a daemon on it carries on."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest

from leadrelay import accounts, leads
from leadrelay.auth import Principal, hash_token, token_prefix
from leadrelay.pusher import api_store
from leadrelay.pusher.api_events import PusherApiEvent
from leadrelay.store import open_store
from leadrelay.store.base import Tx
from leadrelay.web import webhook_secrets
from support.serve import Serve, cli

pytestmark = pytest.mark.postgres

ADMIN = Principal(role="admin", provider_id=None)


async def _fill(db: Path) -> dict[str, Any]:
    """A database as a running one looks: providers, tokens (one revoked), leads (one with an
    idempotency key, one changed), events delivered, pending, retrying and dead-lettered,
    Pusher settings and a webhook secret."""
    store = await open_store(db)
    try:
        acme = await accounts.add_provider(store, "Acme")
        admin = await accounts.create_admin_token(store)
        provider_token = await accounts.create_provider_token(store, acme["id"])
        spare = await accounts.create_admin_token(store)
        assert admin and spare
        await accounts.revoke_token(store, token_prefix(spare))
        # as the intake stores an Idempotency-Key: scoped to the caller's token
        scope = f"key:{hash_token(admin)[:16]}:"
        created = [
            await leads.create_lead(
                store,
                {**_fields(f"Lead {i}"), "provider_id": acme["id"]},
                status="new",
                idempotency_key=f"{scope}key-{i}",
            )
            for i in range(6)
        ]
        ids = [result.lead["id"] for result in created]
        await leads.change_lead(store, ids[0], {"status": "contacted"}, actor=ADMIN)
        rows = await store.fetch_all("SELECT id FROM events ORDER BY id")
        event_ids = [row["id"] for row in rows]

        def settle(tx: Tx) -> None:
            tx.mark_delivered(event_ids[:3])
            tx.mark_dead([event_ids[3]], "400: too large")
            tx.mark_retry([event_ids[4]], tx.now + 3600, "timeout")
            tx.put_setting("pusher", {"app_id": "1", "key": "k", "enabled": False}, "v1")

        await store.write(settle)
        # an app's Pusher API events: one delivered, one pending, on one channel
        app = [PusherApiEvent(("orders",), "app.event", f'{{"n":{n}}}', "1.2") for n in (1, 2)]
        await api_store.store_events(store, app)
        first = await store.fetch_one("SELECT min(id) AS id FROM events WHERE lead_id IS NULL")
        assert first is not None
        await store.write(lambda tx: tx.mark_delivered([first["id"]]))
        secret = await webhook_secrets.current_secret(store)
        return {
            "admin": admin,
            "provider": provider_token,
            "spare": spare,
            "ids": ids,
            "secret": secret,
            "events": len(event_ids) + len(app),
        }
    finally:
        await store.close()


async def _next_app_seq(db: str) -> int:
    store = await open_store(db)
    try:
        await api_store.store_events(store, [PusherApiEvent(("orders",), "app.event", "{}")])
        row = await store.fetch_one("SELECT max(seq) AS seq FROM events WHERE lead_id IS NULL")
        assert row is not None
        return int(row["seq"])
    finally:
        await store.close()


def _fields(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "email": None,
        "phone": None,
        "source": "crm",
        "notes": None,
        "external_id": None,
    }


def _states(db: Path | str) -> list[tuple[Any, ...]]:
    async def read() -> list[tuple[Any, ...]]:
        store = await open_store(db)
        try:
            rows = await store.fetch_all(
                "SELECT event_id, lead_id, seq, state, attempts, last_error FROM events ORDER BY id"
            )
            return [tuple(row.values()) for row in rows]
        finally:
            await store.close()

    return asyncio.run(read())


def test_db_copy_moves_everything_and_a_daemon_on_postgres_carries_on(
    tmp_path: Path, pg_url: str
) -> None:
    db = tmp_path / "old.db"
    filled = asyncio.run(_fill(db))
    before = _states(db)
    assert {state for _, _, _, state, _, _ in before} == {"pending", "delivered", "dead"}

    done = cli(db, "db", "copy", "--to", pg_url, "--json")
    result = json.loads(done.stdout)
    assert result["copied"] is True
    assert result["leads"] == 6 and result["events"] == filled["events"] == 9
    assert (result["events pending"], result["events delivered"], result["events dead"]) == (
        4,
        4,
        1,
    )
    assert result["pusher_channels"] == 1
    # the admin's, the provider's first and second, and the revoked spare
    assert result["tokens"] == 4 and result["providers"] == 1 and result["idempotency_keys"] == 6
    assert _states(pg_url) == before  # every event in its delivery state, attempts, error

    # run again: nothing to do, and it says so
    again = json.loads(cli(db, "db", "copy", "--to", pg_url, "--json").stdout)
    assert again["copied"] is False and again["events"] == 9
    human = cli(db, "db", "copy", "--to", pg_url)
    assert "the counts match" in human.stderr and "to switch" in human.stderr

    with Serve(pg_url, relay="off") as daemon:
        daemon.admin_token = filled["admin"]
        with httpx.Client(base_url=daemon.url, timeout=10) as c:
            # hashed tokens moved: the old admin and provider tokens work, the revoked not
            assert c.get("/api/admin/leads", headers=daemon.auth()).status_code == 200
            mine = c.get("/api/provider/leads", headers=daemon.auth(filled["provider"]))
            assert mine.status_code == 200 and len(mine.json()["leads"]) == 6
            assert (
                c.get("/api/admin/leads", headers=daemon.auth(filled["spare"])).status_code == 401
            )
            # idempotency keys moved: a retry of an old delivery returns its lead
            replay = c.post(
                "/api/leads",
                json={"name": "Lead 2"},
                headers={**daemon.auth(), "Idempotency-Key": "key-2"},
            )
            assert replay.status_code == 200 and replay.json()["id"] == filled["ids"][2]
            # new rows continue after the copied ids
            fresh = c.post("/api/leads", json={"name": "After the move"}, headers=daemon.auth())
            assert fresh.status_code == 201 and fresh.json()["id"] == max(filled["ids"]) + 1
        # the app's channel goes on from its copied seq
        assert asyncio.run(_next_app_seq(pg_url)) == 3
        secret = cli(pg_url, "webhooks", "secret", "--json")
        assert json.loads(secret.stdout)["secret"] == filled["secret"]


def test_db_copy_refuses_a_target_with_data_and_a_failed_copy_can_run_again(
    tmp_path: Path, pg_url: str
) -> None:
    db = tmp_path / "old.db"
    asyncio.run(_fill(db))
    # a column PostgreSQL does not have: the copy fails whole, and writes nothing
    with sqlite3.connect(db) as conn:
        conn.execute("ALTER TABLE leads ADD COLUMN from_the_future TEXT")
    failed = cli(db, "db", "copy", "--to", pg_url, check=False)
    assert failed.returncode != 0 and "Traceback" not in failed.stderr
    assert "not supported on PostgreSQL yet: leads.from_the_future" in failed.stderr
    assert "nothing was copied" in failed.stderr
    with sqlite3.connect(db) as conn:
        conn.execute("ALTER TABLE leads DROP COLUMN from_the_future")
    assert json.loads(cli(db, "db", "copy", "--to", pg_url, "--json").stdout)["copied"] is True

    other = tmp_path / "other.db"
    asyncio.run(_fill(other))
    with sqlite3.connect(other) as conn:
        conn.execute("DELETE FROM idempotency_keys WHERE rowid = 1")
    refused = cli(other, "db", "copy", "--to", pg_url, check=False)
    assert refused.returncode != 0 and "already holds data" in refused.stderr
    wrong = cli(db, "db", "copy", "--to", str(tmp_path / "x.db"), check=False)
    assert wrong.returncode == 2 and "must be a PostgreSQL URL" in wrong.stderr
