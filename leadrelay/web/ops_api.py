"""The console's own API: who am I, the providers, and the outbox (status, dead letters, retry)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from leadrelay import outbox
from leadrelay.accounts import list_providers
from leadrelay.auth import require_admin
from leadrelay.errors import NotFound, ValidationFailed
from leadrelay.events import Broadcast
from leadrelay.store.base import MAX_ID, Store
from leadrelay.web.http import JSON, query_int, read_json
from leadrelay.web.state import principal, state


async def me(request: Request) -> Response:
    """The bearer token's role, its provider and that provider's name; `channel` is the feed
    the console listens on for this token."""
    caller = await principal(request)
    name = None
    if caller.provider_id is not None:
        providers = await state(request).store.list_providers()
        name = next((p["name"] for p in providers if p["id"] == caller.provider_id), None)
    st = state(request)
    mode = Broadcast.of(st.settings)
    channel = mode.admin if caller.is_admin else mode.provider(caller.provider_id or 0)
    return JSON(
        {
            "role": caller.role,
            "provider_id": caller.provider_id,
            "name": name,
            # what the console needs to follow the feed from now on: its channel, the
            # events API cursor of this moment, and the statuses a lead may take
            "channel": channel,
            "events_after": await st.store.events_since_time(time.time() + 86400),
            "statuses": list(st.settings.statuses),
        }
    )


async def admin_providers(request: Request) -> Response:
    require_admin(await principal(request))
    rows = await list_providers(state(request).store)
    keys = ("id", "name", "leads", "watching", "last_seen")
    return JSON({"providers": [{key: row[key] for key in keys} for row in rows]})


async def outbox_status(request: Request) -> Response:
    require_admin(await principal(request))
    return JSON(await outbox.status(state(request).store))


async def outbox_failed(request: Request) -> Response:
    require_admin(await principal(request))
    limit = query_int(request, "limit", 100, low=1, high=1000)
    return JSON(await outbox.failed(state(request).store, limit))


async def outbox_retry(request: Request) -> Response:
    """`{"event_id": ID}` (the outbox id, or the event's UUID) or `{"all": true}`."""
    require_admin(await principal(request))
    st = state(request)
    data = await read_json(request, st.settings.max_body_bytes)
    if not isinstance(data, dict):
        raise ValidationFailed("the body must be a JSON object", code="invalid_body")
    if not (set(data) == {"event_id"} or data == {"all": True}):
        raise ValidationFailed(
            'send {"event_id": ID} or {"all": true}, and nothing else', code="invalid_body"
        )
    event_id = None if "all" in data else await _outbox_id(st.store, data["event_id"])
    return JSON({"retried": await outbox.retry(st.store, event_id)})


async def _outbox_id(store: Store, target: Any) -> int:
    if isinstance(target, int) and not isinstance(target, bool) and 1 <= target <= MAX_ID:
        return target
    if isinstance(target, str):
        try:
            uuid.UUID(target)
        except ValueError:
            pass
        else:
            row_id: int | None = await store.event_row_id(target)
            if row_id is None:
                raise NotFound(f"no event {target}", code="event_not_found")
            return row_id
    raise ValidationFailed(
        "'event_id' must be the event's id number (from the failed list) or its event_id",
        code="invalid_field",
    )
