"""The naive port: one commit per request (lead + outbox row), then the stock async Pusher trigger.

What a straight port of a Laravel-style controller does: write, commit with synchronous=FULL in
WAL mode, then `await pusher.trigger(...)` inline with `pusher.aiohttp.AsyncIOBackend` (a new
HTTP session per trigger). Settings come from the environment: NAIVE_DB, PUSHER_APP_ID,
PUSHER_KEY, PUSHER_SECRET, PUSHER_HOST, PUSHER_PORT.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiosqlite
import pusher
from pusher.aiohttp import AsyncIOBackend
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

SCHEMA = """
CREATE TABLE IF NOT EXISTS leads (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT, phone TEXT,
    status TEXT NOT NULL, provider_id INTEGER, source TEXT,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE, type TEXT NOT NULL,
    lead_id INTEGER NOT NULL REFERENCES leads(id), seq INTEGER NOT NULL,
    data TEXT NOT NULL, created_at TEXT NOT NULL, sent_at TEXT);
"""


class State:
    db: aiosqlite.Connection
    lock: asyncio.Lock
    pusher: pusher.Pusher


state = State()


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    state.db = await aiosqlite.connect(os.environ["NAIVE_DB"], isolation_level=None)
    await state.db.execute("PRAGMA journal_mode=WAL")
    await state.db.execute("PRAGMA synchronous=FULL")
    await state.db.executescript(SCHEMA)
    # One connection, so the lock keeps each request's transaction its own: one commit each.
    state.lock = asyncio.Lock()
    state.pusher = pusher.Pusher(
        app_id=os.environ["PUSHER_APP_ID"],
        key=os.environ["PUSHER_KEY"],
        secret=os.environ["PUSHER_SECRET"],
        host=os.environ.get("PUSHER_HOST", "127.0.0.1"),
        port=int(os.environ["PUSHER_PORT"]),
        ssl=False,
        backend=AsyncIOBackend,
    )
    yield
    await state.db.close()


async def create_lead(request: Request) -> JSONResponse:
    body = await request.json()
    now = datetime.now(UTC).isoformat()
    async with state.lock:
        await state.db.execute("BEGIN IMMEDIATE")
        cursor = await state.db.execute(
            "INSERT INTO leads (name, email, phone, status, provider_id, source, created_at,"
            " updated_at) VALUES (?, ?, ?, 'new', ?, ?, ?, ?)",
            (
                body["name"],
                body.get("email"),
                body.get("phone"),
                body.get("provider_id"),
                body.get("source"),
                now,
                now,
            ),
        )
        lead = {
            "id": cursor.lastrowid,
            "name": body["name"],
            "email": body.get("email"),
            "phone": body.get("phone"),
            "status": "new",
            "provider_id": body.get("provider_id"),
            "source": body.get("source"),
            "created_at": now,
            "updated_at": now,
        }
        event = {
            "event_id": str(uuid.uuid4()),
            "type": "lead.assigned",
            "seq": 1,
            "occurred_at": now,
            "lead": lead,
        }
        await state.db.execute(
            "INSERT INTO events (event_id, type, lead_id, seq, data, created_at)"
            " VALUES (?, 'lead.assigned', ?, 1, ?, ?)",
            (event["event_id"], lead["id"], json.dumps(event), now),
        )
        await state.db.execute("COMMIT")
    await state.pusher.trigger("admin", "lead.assigned", event)
    return JSONResponse(lead, status_code=201)


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


app = Starlette(
    routes=[Route("/api/leads", create_lead, methods=["POST"]), Route("/healthz", healthz)],
    lifespan=lifespan,
)
