"""The HTTP API of CONTRACT §2: route handlers for leads, events, broadcasting, settings, health."""

from __future__ import annotations

import base64
import logging
import os
import time
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from leadrelay import erasure, events, leads, metrics
from leadrelay.auth import (
    ADMIN,
    Principal,
    channel_signature,
    require_admin,
    require_provider,
    shared_secret,
)
from leadrelay.errors import (
    ApiError,
    Forbidden,
    NotFound,
    PusherError,
    ValidationFailed,
)
from leadrelay.events import provider_channel
from leadrelay.outbox import relay_lease
from leadrelay.pusher import config as pusher_config
from leadrelay.pusher.http import test_connection
from leadrelay.store import retention
from leadrelay.store.base import RELAY_STATE_KEY, Store
from leadrelay.web.http import (
    JSON,
    path_id,
    query_int,
    query_text,
    read_form_or_json,
    read_json,
)
from leadrelay.web.openapi import document
from leadrelay.web.state import principal, socket_id_of, state

log = logging.getLogger("leadrelay.api")


# --- leads ------------------------------------------------------------------------


async def admin_list_leads(request: Request) -> Response:
    require_admin(await principal(request))
    return await _list_leads(request, ADMIN)


async def provider_list_leads(request: Request) -> Response:
    caller = await principal(request)
    require_provider(caller)
    return await _list_leads(request, caller)


async def _list_leads(request: Request, actor: Principal) -> Response:
    st = state(request)
    status = query_text(request, "status")
    if status is not None:
        leads.parse_status(status, st.settings.statuses)
    provider_filter = query_int(request, "provider_id", 0) or None
    # the CRM's id for a lead is the admin's to search by (providers never see it)
    external_id = query_text(request, "external_id") if actor.is_admin else None
    limit = query_int(request, "limit", 50, low=1, high=500)
    order = query_text(request, "order") or "oldest"
    if order not in ("oldest", "newest"):
        raise ValidationFailed(
            "query parameter 'order' must be 'oldest' or 'newest'", code="invalid_query"
        )
    query = query_text(request, "q")
    after = query_int(request, "after", 0)
    newest_first = order == "newest"
    body: dict[str, Any]
    if query is None or not query.strip():
        rows = await leads.list_leads(
            st.store,
            actor=actor,
            status=status,
            provider_id=provider_filter,
            after=after,
            limit=limit,
            external_id=external_id,
            newest_first=newest_first,
        )
        body = {"leads": rows}
    else:
        rows, partial = await leads.search_leads(
            st.store,
            leads.parse_query(query),
            actor=actor,
            status=status,
            provider_id=provider_filter,
            after=after,
            limit=limit,
            external_id=external_id,
            newest_first=newest_first,
        )
        # partial: leads not indexed yet, more than a search matches one by one, may be missing
        body = {"leads": rows, "partial": partial}
    body["next_after"] = rows[-1]["id"] if len(rows) == limit else None
    return JSON(body)


async def admin_get_lead(request: Request) -> Response:
    require_admin(await principal(request))
    return JSON(await leads.get_lead(state(request).store, path_id(request), actor=ADMIN))


async def admin_erase_lead(request: Request) -> Response:
    """DELETE /api/admin/leads/{id}: erase the lead's personal fields (see erasure.py)."""
    require_admin(await principal(request))
    return JSON(await erasure.erase_lead(state(request).store, path_id(request)))


async def provider_get_lead(request: Request) -> Response:
    caller = await principal(request)
    require_provider(caller)
    return JSON(await leads.get_lead(state(request).store, path_id(request), actor=caller))


async def admin_change_lead(request: Request) -> Response:
    require_admin(await principal(request))
    return await _change_lead(request, ADMIN)


async def provider_change_lead(request: Request) -> Response:
    caller = await principal(request)
    require_provider(caller)
    return await _change_lead(request, caller)


async def _change_lead(request: Request, actor: Principal) -> Response:
    st = state(request)
    lead_id = path_id(request)
    data = await read_json(request, st.settings.max_body_bytes)
    change = leads.parse_change(data, st.settings.statuses, admin=actor.is_admin)
    lead = await leads.change_lead(
        st.store, lead_id, change, actor=actor, socket_id=socket_id_of(request)
    )
    return JSON(lead)


# --- events catch-up ----------------------------------------------------------------


async def admin_events(request: Request) -> Response:
    require_admin(await principal(request))
    return await _events(request, None)


async def provider_events(request: Request) -> Response:
    caller = await principal(request)
    return await _events(request, require_provider(caller))


async def _events(request: Request, provider_id: int | None) -> Response:
    st = state(request)
    after_raw = query_text(request, "after") or ""
    after = await _cursor(st.store, after_raw) if after_raw and not after_raw.isdigit() else None
    if after is None:
        after = query_int(request, "after", 0)
    await retention.check_cursor(st.store, after)
    limit = query_int(request, "limit", 100, low=1, high=1000)
    lead_filter = query_int(request, "lead_id", 0) or None
    rows = await st.store.events_after(
        after, provider_id=provider_id, lead_id=lead_filter, limit=limit
    )
    mode = events.Broadcast.of(st.settings)
    items = [events.event_item(row, provider_id, mode) for row in rows]
    next_after = rows[-1]["id"] if rows else after
    return JSON({"events": items, "next_after": next_after})


async def _cursor(store: Store, event_id: str) -> int:
    try:
        uuid.UUID(event_id)
    except ValueError:
        raise ValidationFailed(
            "'after' must be an event's id number or its event_id", code="invalid_query"
        ) from None
    row_id = await store.event_row_id(event_id)
    if row_id is None:
        await retention.check_missing_event_id(store, event_id)
        raise NotFound(f"no event {event_id}", code="event_not_found")
    return row_id


# --- Pusher: channel auth and settings ---------------------------------------------------


async def broadcasting_config(request: Request) -> Response:
    """What a frontend (or `leadrelay tail`) needs to open the socket: nothing secret, the
    same values pusher-js is configured with in a page."""
    await principal(request)
    st = state(request)
    config = await pusher_config.load(st.store)
    if not config.key:
        raise ApiError(
            "Pusher is not configured; set it with 'leadrelay pusher set'",
            code="pusher_not_configured",
        )
    return JSON(
        {
            "key": config.key,
            "cluster": config.cluster,
            "ws_host": config.ws_host,
            "ws_port": config.server_port,
            "tls": config.tls,
            # where this daemon broadcasts (CONTRACT §4's modes), so a client needs no guess
            "channels": _channels(events.Broadcast.of(st.settings)),
            "encrypted": st.settings.encrypted_channels,
            "personal_data": st.settings.broadcast_personal_data,
        }
    )


def _channels(mode: events.Broadcast) -> dict[str, str]:
    return {"admin": mode.admin, "provider": mode.provider_template}


async def broadcasting_auth(request: Request) -> Response:
    st = state(request)
    caller = await principal(request)
    form = await read_form_or_json(request, st.settings.max_body_bytes)
    socket_id = str(form.get("socket_id") or "")
    channel = str(form.get("channel_name") or "")
    left, dot, right = socket_id.partition(".")
    if not (dot and left.isdigit() and right.isdigit() and left.isascii() and right.isascii()):
        raise ApiError("socket_id must look like '1234.5678'", code="invalid_socket_id")
    if not channel.startswith("private-"):
        raise ApiError("only private channels need auth; 'admin' is public", code="invalid_channel")
    if not may_subscribe(caller, channel):
        raise Forbidden(f"you may not subscribe to {channel}", code="channel_forbidden")
    config = await pusher_config.load(st.store)
    if not config.complete:
        raise ApiError(
            "Pusher is not configured; set it with 'leadrelay pusher set'",
            code="pusher_not_configured",
        )
    answer = {"auth": channel_signature(config.key, config.secret, socket_id, channel)}
    if channel.startswith(events.ENCRYPTED_PREFIX):
        key = config.master_key
        if key is None:
            raise ApiError(
                "encrypted channels need an encryption master key; set it with "
                "'leadrelay pusher set --encryption-master-key -'",
                code="encryption_not_configured",
            )
        answer["shared_secret"] = base64.b64encode(shared_secret(channel, key)).decode()
    return JSON(answer)


def may_subscribe(caller: Principal, channel: str) -> bool:
    """Admins: any private channel (private-admin among them); a provider: its own channel,
    encrypted or not."""
    if caller.is_admin:
        return True
    own = provider_channel(caller.provider_id or 0)
    return channel in (own, events.ENCRYPTED_PREFIX + own.removeprefix("private-"))


async def get_pusher_settings(request: Request) -> Response:
    require_admin(await principal(request))
    config = await pusher_config.load(state(request).store)
    return JSON(config.masked())


async def put_pusher_settings(request: Request) -> Response:
    require_admin(await principal(request))
    st = state(request)
    data = await read_json(request, st.settings.max_body_bytes)
    if not isinstance(data, dict):
        raise ValidationFailed("the body must be a JSON object", code="invalid_body")
    config = await pusher_config.update(st.store, data)
    return JSON(config.masked())


async def test_pusher_settings(request: Request) -> Response:
    require_admin(await principal(request))
    config = await pusher_config.load(state(request).store)
    try:
        result = await test_connection(config)
    except PusherError as exc:
        return JSON({"ok": False, "kind": exc.kind, "message": str(exc)})
    return JSON({"ok": True, **result})


# --- operations -------------------------------------------------------------------


async def healthz(request: Request) -> Response:
    return JSON({"status": "ok"})


async def readyz(request: Request) -> Response:
    """Ready or not, and the problems' codes; their details to an admin (readiness.py)."""
    st = state(request)
    report = await st.readiness.report()
    admin = False
    if request.headers.get("authorization"):
        admin = (await principal(request)).is_admin
    body = report.body(admin=admin, this_pid=os.getpid())
    return JSON(body, status_code=503 if report.problems else 200)


async def metrics_endpoint(request: Request) -> Response:
    st = state(request)
    counts = await st.store.outbox_counts()
    relay = await st.store.get_setting(RELAY_STATE_KEY) or {}
    lease = await relay_lease(st.store)
    text = metrics.render(
        counts,
        time.time(),
        await st.store.count_watching(),
        relay_paused=bool(relay.get("paused_reason")),
        # PostgreSQL has no lease to hold: every daemon relays, claiming each event
        lease_held=None if lease.get("claims_per_event") else lease["held"],
    )
    return PlainTextResponse(text, media_type=metrics.CONTENT_TYPE)


async def openapi(request: Request) -> Response:
    return JSON(document(state(request).settings))
