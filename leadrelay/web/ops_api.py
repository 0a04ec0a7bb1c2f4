"""The console's own API: who am I, the providers, and the outbox (status, dead letters, retry)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from leadrelay import leads, outbox, stats
from leadrelay.accounts import list_providers
from leadrelay.auth import ADMIN, require_admin, require_provider
from leadrelay.errors import NotFound, ValidationFailed
from leadrelay.events import Broadcast
from leadrelay.store.base import MAX_ID, Store
from leadrelay.web.http import JSON, path_id, query_int, query_text, read_json
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
            # a lead in one of these is done (the console's open and waiting counts)
            "closed_statuses": list(st.settings.closed_statuses),
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


async def admin_stats(request: Request) -> Response:
    """The day at a glance: `since` (RFC 3339) is when "today" began on the caller's clock,
    `window_days` the days of speed to contact (stats.py)."""
    require_admin(await principal(request))
    st = state(request)
    now = datetime.now(UTC)
    since = stats.parse_since(query_text(request, "since"), now)
    window = query_int(request, "window_days", 7, low=1, high=stats.MAX_WINDOW_DAYS)
    figures = await stats.admin_stats(
        st.store, st.settings, since=since, window_days=window, now=now
    )
    return JSON(figures)


async def provider_stats(request: Request) -> Response:
    """The provider's own figures, with the same parameters as the admin's."""
    provider_id = require_provider(await principal(request))
    st = state(request)
    now = datetime.now(UTC)
    since = stats.parse_since(query_text(request, "since"), now)
    window = query_int(request, "window_days", 7, low=1, high=stats.MAX_WINDOW_DAYS)
    figures = await stats.provider_stats(
        st.store, st.settings, provider_id, since=since, window_days=window, now=now
    )
    return JSON(figures)


async def admin_lead_events(request: Request) -> Response:
    """One lead and its events, each with its delivery: the timeline of the console's panel."""
    require_admin(await principal(request))
    st = state(request)
    lead = await leads.get_lead(st.store, path_id(request), actor=ADMIN)
    timeline = await outbox.lead_timeline(st.store, lead["id"], Broadcast.of(st.settings))
    return JSON({"lead": lead, "events": timeline})
