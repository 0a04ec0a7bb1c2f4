"""The ceiling: a bare Starlette JSON endpoint (parse JSON, answer 201 JSON), nothing stored."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

_ids = itertools.count(1)


async def create_lead(request: Request) -> JSONResponse:
    body = await request.json()
    now = datetime.now(UTC).isoformat()
    lead = {
        "id": next(_ids),
        "name": body["name"],
        "email": body.get("email"),
        "phone": body.get("phone"),
        "status": "new",
        "provider_id": body.get("provider_id"),
        "source": body.get("source"),
        "created_at": now,
        "updated_at": now,
    }
    return JSONResponse(lead, status_code=201)


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


app = Starlette(
    routes=[Route("/api/leads", create_lead, methods=["POST"]), Route("/healthz", healthz)]
)
