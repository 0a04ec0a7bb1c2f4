"""Search (GET /api/admin/leads?q=, /api/provider/leads?q=) on both backends: what it finds,
before and after the indexer wrote the keys, in order across buckets, and erasure."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from leadrelay.config import Settings
from leadrelay.store import search_index, search_reads
from leadrelay.web import search_indexing
from support.app import InProcess, running_app
from support.database import execute, rows

pytestmark = [pytest.mark.anyio, pytest.mark.both_backends]

LEADS = [
    {"name": "Jan van der Berg", "email": "jan@example.com", "phone": "+1 555 0100"},
    {"name": "Zoë Müller", "phone": "+15550199", "external_id": "CRM-42"},
    {"name": "Ada Lovelace", "email": "ada@analytical.example"},
]
QUERIES = {
    "berg": ["Jan van der Berg"],
    "JAN V": ["Jan van der Berg"],
    "muller": ["Zoë Müller"],
    "zoë": ["Zoë Müller"],
    "555-0199": ["Zoë Müller"],
    "555": ["Jan van der Berg", "Zoë Müller"],
    "crm-4": ["Zoë Müller"],
    "ada@": ["Ada Lovelace"],
    "lace": [],
    "nobody": [],
}


@pytest.fixture(autouse=True)
def no_background_indexer(monkeypatch: pytest.MonkeyPatch) -> None:
    """The daemon's indexer waits this long between rounds: the tests index when they say."""
    monkeypatch.setattr(search_indexing, "INTERVAL_SECONDS", 3600.0)


async def names(lr: InProcess, q: str, token: str | None = None, **params: Any) -> list[str]:
    path = "/api/provider/leads" if token else "/api/admin/leads"
    answer = await lr.client.get(path, params={"q": q, **params}, headers=lr.auth(token))
    assert answer.status_code == 200, answer.text
    return [lead["name"] for lead in answer.json()["leads"]]


async def index(db: Path | str) -> int:
    return await asyncio.to_thread(search_index.index_pending, db, busy_share=1.0)


async def test_search_finds_the_same_leads_before_and_after_indexing(settings: Settings) -> None:
    async with running_app(settings) as lr:
        for lead in LEADS:
            assert (await lr.create_lead(**lead)).status_code == 201
        pending = {q: sorted(await names(lr, q)) for q in QUERIES}
        assert await index(settings.db) == len(LEADS)
        assert rows(settings.db, "SELECT count(*) AS n FROM leads WHERE search_pending = 1") == [
            {"n": 0}
        ]
        indexed = {q: sorted(await names(lr, q)) for q in QUERIES}
        assert pending == indexed == {q: sorted(found) for q, found in QUERIES.items()}


async def test_search_a_provider_finds_only_its_own_leads(settings: Settings) -> None:
    async with running_app(settings) as lr:
        acme, bolt = await lr.add_provider("Acme"), await lr.add_provider("Bolt")
        await lr.create_lead(name="Pat Acme", provider_id=acme["id"])
        await lr.create_lead(name="Pat Bolt", provider_id=bolt["id"])
        for _ in range(2):
            assert await names(lr, "pat", acme["token"]) == ["Pat Acme"]
            assert sorted(await names(lr, "pat")) == ["Pat Acme", "Pat Bolt"]
            assert await names(lr, "pat", provider_id=bolt["id"]) == ["Pat Bolt"]
            await index(settings.db)


async def test_search_walks_the_buckets_in_order_with_a_cursor(settings: Settings) -> None:
    """Leads far apart in id live in different buckets (4,096 ids each): a search goes
    through them newest first (or oldest first), page by page."""
    ids = [3, 5000, 9000, 13000, 13001]
    async with running_app(settings) as lr:
        for lead_id in ids:
            execute(
                settings.db,
                "INSERT INTO leads (id, name, status, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?)",
                lead_id,
                f"Pat {lead_id}",
                "lost" if lead_id == 9000 else "new",
                "2026-12-06T10:00:00.000Z",
                "2026-12-06T10:00:00.000Z",
            )
        await index(settings.db)
        seen: list[str] = []
        after = 0
        while True:
            params = {"q": "pat", "order": "newest", "limit": 2, "after": after}
            page = (
                await lr.client.get("/api/admin/leads", params=params, headers=lr.auth())
            ).json()
            seen += [lead["name"] for lead in page["leads"]]
            if page["next_after"] is None:
                break
            after = page["next_after"]
        assert seen == [f"Pat {n}" for n in reversed(ids)]
        assert await names(lr, "pat", order="oldest", limit=3) == ["Pat 3", "Pat 5000", "Pat 9000"]
        assert await names(lr, "pat", status="new", order="newest", after=13000) == [
            "Pat 5000",
            "Pat 3",
        ]


async def test_search_says_partial_when_more_leads_wait_than_it_matches_one_by_one(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(search_reads, "SEARCH_TAIL", 2)
    async with running_app(settings) as lr:
        for n in range(4):
            await lr.create_lead(name=f"Burst {n}")
        answer = await lr.client.get("/api/admin/leads", params={"q": "burst"}, headers=lr.auth())
        assert answer.json()["partial"] is True
        await index(settings.db)
        answer = await lr.client.get("/api/admin/leads", params={"q": "burst"}, headers=lr.auth())
        assert answer.json()["partial"] is False
        assert len(answer.json()["leads"]) == 4
        plain = await lr.client.get("/api/admin/leads", headers=lr.auth())
        assert "partial" not in plain.json()  # a list without q says nothing of the index


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"q": "x" * 201}, "invalid_query"),
        ({"q": "a\x00b"}, "invalid_query"),
        ({"q": "a", "order": "sideways"}, "invalid_query"),
        ({"q": ["a", "b"]}, "invalid_query"),
    ],
)
async def test_search_refuses_a_bad_query_with_a_422(
    settings: Settings, params: dict[str, Any], code: str
) -> None:
    async with running_app(settings) as lr:
        answer = await lr.client.get("/api/admin/leads", params=params, headers=lr.auth())
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"]["code"] == code


async def test_search_erasure_deletes_a_leads_keys_in_its_own_transaction(
    settings: Settings,
) -> None:
    erased = {
        "name": "Zebulon Quixwell",
        "email": "zebulon.quixwell@example.org",
        "phone": "+44 7700 918273",
        "external_id": "CRM-ZQ-1",
    }
    async with running_app(settings) as lr:
        lead = (await lr.create_lead(**erased)).json()
        await lr.create_lead(name="Henrietta Kept")
        await index(settings.db)
        keys = f"SELECT key FROM search_keys WHERE lead_id = {lead['id']} ORDER BY key"
        assert "zebulon quixwell" in [row["key"] for row in rows(settings.db, keys)]
        gone = await lr.client.delete(f"/api/admin/leads/{lead['id']}", headers=lr.auth())
        assert gone.status_code == 200
        # at once, before the indexer's next round: no key left, and nothing found by them
        assert rows(settings.db, keys) == []
        for q in ("zebulon", "quixwell", "zebulon.quixwell@", "7700 918273"):
            assert await names(lr, q) == []
        assert await names(lr, "crm-zq") == [""]  # the CRM's id is kept, the name is not
        await index(settings.db)
        assert [row["key"] for row in rows(settings.db, keys)] == ["crm-zq-1"]
        assert await names(lr, "henrietta") == ["Henrietta Kept"]
    if isinstance(settings.db, Path):  # and not on disk either (the answer checkpointed)
        on_disk = b"".join(
            path.read_bytes() for path in (settings.db, Path(f"{settings.db}-wal")) if path.exists()
        )
        for key in ("zebulon quixwell", "quixwell", "zebulon.quixwell@example.org", "447700918273"):
            assert key.encode() not in on_disk, key
        assert b"henrietta kept" in on_disk
