"""The app in-process over httpx's ASGI transport, with its lifespan run as uvicorn would."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from starlette.applications import Starlette

from leadrelay import accounts
from leadrelay.config import Settings
from leadrelay.store.base import Store
from leadrelay.web.app import create_app
from leadrelay.web.state import AppState

# columns leadrelay's own background work moves whatever a request did: the search indexer
# clears a new or changed lead's search_pending within a second (store/search_index.py)
BACKGROUND_COLUMNS = frozenset({"search_pending"})


@dataclass
class InProcess:
    app: Starlette
    client: httpx.AsyncClient
    admin_token: str

    @property
    def state(self) -> AppState:
        state: AppState = self.app.state.leadrelay
        return state

    @property
    def store(self) -> Store:
        return self.state.store

    def auth(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.admin_token}"}

    async def add_provider(
        self, name: str = "Acme", provider_id: int | None = None
    ) -> dict[str, Any]:
        return await accounts.add_provider(self.store, name, provider_id)

    async def stored_lead(self, lead_id: int) -> dict[str, Any] | None:
        """Lead `lead_id`'s row, every column but BACKGROUND_COLUMNS: what a refused request
        must leave exactly as it was (a snapshot with them races the indexer)."""
        row = await self.store.fetch_one("SELECT * FROM leads WHERE id = ?", (lead_id,))
        if row is None:
            return None
        return {name: value for name, value in row.items() if name not in BACKGROUND_COLUMNS}

    async def create_lead(self, token: str | None = None, **fields: Any) -> httpx.Response:
        body = {"name": "Ada Lovelace", **fields}
        return await self.client.post("/api/leads", json=body, headers=self.auth(token))


@asynccontextmanager
async def running_app(settings: Settings) -> AsyncIterator[InProcess]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        token = await accounts.create_admin_token(app.state.leadrelay.store)
        assert token is not None
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://leadrelay.test"
        ) as client:
            yield InProcess(app, client, token)
