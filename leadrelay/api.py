"""The HTTP API of CONTRACT §2 as a Starlette app: routes, auth and error handling."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from leadrelay import intake, leads, metrics, pusher_config
from leadrelay.auth import (
    ADMIN,
    Authenticator,
    Principal,
    channel_signature,
    require_admin,
    require_provider,
)
from leadrelay.config import Settings
from leadrelay.errors import (
    ApiError,
    Forbidden,
    NotFound,
    PusherError,
    ValidationFailed,
)
from leadrelay.events import provider_channel
from leadrelay.http import (
    INTERNAL_ERROR_BODY,
    JSON,
    error_response,
    path_id,
    query_int,
    query_text,
    read_form_or_json,
    read_json,
)
from leadrelay.lead_writer import LeadWriter
from leadrelay.openapi import document
from leadrelay.pusher_http import test_connection
from leadrelay.ratelimit import RateLimiter
from leadrelay.relay import STATE_KEY
from leadrelay.store import Store

log = logging.getLogger("leadrelay.api")
SOCKET_ID_HEADER = "x-socket-id"
Handler = Callable[[Request], Awaitable[Response]]


@dataclass
class AppState:
    settings: Settings
    store: Store
    auth: Authenticator
    limiter: RateLimiter
    lead_writer: LeadWriter | None = None  # None: new leads are written in this process


def state(request: Request) -> AppState:
    app_state: AppState = request.app.state.leadrelay
    return app_state


async def principal(request: Request) -> Principal:
    return await state(request).auth.authenticate(request.headers.get("authorization"))


def socket_id_of(request: Request) -> str | None:
    return intake.socket_id(request.headers.get(SOCKET_ID_HEADER))


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
    limit = query_int(request, "limit", 50, low=1, high=500)
    rows = await leads.list_leads(
        st.store,
        actor=actor,
        status=status,
        provider_id=provider_filter,
        after=query_int(request, "after", 0),
        limit=limit,
    )
    next_after = rows[-1]["id"] if len(rows) == limit else None
    return JSON({"leads": rows, "next_after": next_after})


async def admin_get_lead(request: Request) -> Response:
    require_admin(await principal(request))
    return JSON(await leads.get_lead(state(request).store, path_id(request), actor=ADMIN))


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
    limit = query_int(request, "limit", 100, low=1, high=1000)
    lead_filter = query_int(request, "lead_id", 0) or None
    rows = await st.store.events_after(
        after, provider_id=provider_id, lead_id=lead_filter, limit=limit
    )
    items = [event_item(row, provider_id) for row in rows]
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
        raise NotFound(f"no event {event_id}", code="event_not_found")
    return row_id


def event_item(row: dict[str, Any], provider_id: int | None) -> dict[str, Any]:
    channels = json.loads(row["channels"])
    if provider_id is not None:
        channels = [provider_channel(provider_id)]
    return {
        "id": row["id"],
        "event_id": row["event_id"],
        "event": row["type"],
        "channels": channels,
        "lead_id": row["lead_id"],
        "seq": row["seq"],
        "data": json.loads(row["payload"]),
    }


# --- Pusher: channel auth and settings ---------------------------------------------------


async def broadcasting_config(request: Request) -> Response:
    """What a frontend (or `leadrelay tail`) needs to open the socket: nothing secret, the
    same values pusher-js is configured with in a page."""
    await principal(request)
    config = await pusher_config.load(state(request).store)
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
        }
    )


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
    allowed = caller.is_admin or channel == provider_channel(caller.provider_id or 0)
    if not allowed:
        raise Forbidden(f"you may not subscribe to {channel}", code="channel_forbidden")
    config = await pusher_config.load(st.store)
    if not config.complete:
        raise ApiError(
            "Pusher is not configured; set it with 'leadrelay pusher set'",
            code="pusher_not_configured",
        )
    return JSON({"auth": channel_signature(config.key, config.secret, socket_id, channel)})


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
    st = state(request)
    problems: list[str] = []
    try:
        await st.store.check_writable()
    except ApiError as exc:
        problems.append(str(exc))
    body: dict[str, Any] = {"status": "ready", "problems": problems}
    if st.settings.relay != "off":
        relay = await st.store.get_setting(STATE_KEY) or {}
        if relay.get("paused_reason"):
            problems.append(f"relay paused: {relay['paused_reason']}")
        body["relay"] = relay
    if problems:
        body["status"] = "not_ready"
    return JSON(body, status_code=200 if not problems else 503)


async def metrics_endpoint(request: Request) -> Response:
    st = state(request)
    counts = await st.store.outbox_counts()
    text = metrics.render(counts, time.time())
    return PlainTextResponse(text, media_type=metrics.CONTENT_TYPE)


async def openapi(request: Request) -> Response:
    return JSON(document(state(request).settings))


# --- the app ---------------------------------------------------------------------------


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    codes = {404: "not_found", 405: "method_not_allowed"}
    messages = {
        404: f"there is no route {request.url.path}; see /openapi.json",
        405: f"{request.method} is not allowed on {request.url.path}",
    }
    code = codes.get(exc.status_code, "http_error")
    message = messages.get(exc.status_code, str(exc.detail))
    body = {"error": {"code": code, "message": message}}
    return JSON(body, status_code=exc.status_code, headers=exc.headers)  # keeps 405's Allow


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.error("unexpected error on %s %s: %r", request.method, request.url.path, exc)
    return JSON(INTERNAL_ERROR_BODY, status_code=500)


def by_method(**handlers: Handler) -> Handler:
    """One route for a path with several methods, so a 405's Allow header names them all."""

    async def dispatch(request: Request) -> Response:
        # Starlette answers HEAD wherever GET is allowed
        method = "GET" if request.method == "HEAD" else request.method
        return await handlers[method](request)

    return dispatch


class IntakeEndpoint:
    """POST /api/leads as an ASGI endpoint, for when it does come through the router."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await intake.create_lead(scope["app"].state.leadrelay, scope, receive, send)


ROUTES = [
    # LeadrelayApp sends POST /api/leads to intake.py before Starlette sees it; the route
    # stays so that other methods get the same 405 as elsewhere
    Route("/api/leads", IntakeEndpoint(), methods=["POST"]),
    Route("/api/admin/leads", admin_list_leads, methods=["GET"]),
    Route(
        "/api/admin/leads/{lead_id}",
        by_method(GET=admin_get_lead, PATCH=admin_change_lead),
        methods=["GET", "PATCH"],
    ),
    Route("/api/admin/events", admin_events, methods=["GET"]),
    Route("/api/provider/leads", provider_list_leads, methods=["GET"]),
    Route(
        "/api/provider/leads/{lead_id}",
        by_method(GET=provider_get_lead, PATCH=provider_change_lead),
        methods=["GET", "PATCH"],
    ),
    Route("/api/provider/events", provider_events, methods=["GET"]),
    Route("/broadcasting/auth", broadcasting_auth, methods=["POST"]),
    Route("/broadcasting/config", broadcasting_config, methods=["GET"]),
    Route(
        "/api/admin/settings/pusher",
        by_method(GET=get_pusher_settings, PUT=put_pusher_settings),
        methods=["GET", "PUT"],
    ),
    Route("/api/admin/settings/pusher/test", test_pusher_settings, methods=["POST"]),
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics_endpoint, methods=["GET"]),
    Route("/openapi.json", openapi, methods=["GET"]),
]


async def _housekeeping(store: Store, settings: Settings) -> None:
    """Forget idempotency keys older than their TTL, every ten minutes."""
    ttl = settings.idempotency_ttl_hours * 3600
    while True:
        try:
            forgotten = await store.write(lambda tx: tx.forget_keys_before(tx.now - ttl))
            if forgotten:
                log.info("forgot %d idempotency keys older than the TTL", forgotten)
        except ApiError as exc:
            log.warning("housekeeping failed: %s", exc)
        await asyncio.sleep(600)


class LeadrelayApp(Starlette):
    """Starlette, but POST /api/leads, the hot path, goes straight to intake.py."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == "/api/leads":
            await intake.create_lead(self.state.leadrelay, scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def create_app(settings: Settings, *, start_relay: bool = True) -> LeadrelayApp:
    """The daemon's ASGI app; the store opens (and the relay starts) in its lifespan."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        store = await Store.open(settings.db)
        await pusher_config.seed_from_env(store, os.environ)
        app_state = AppState(
            settings=settings,
            store=store,
            auth=Authenticator(store),
            limiter=RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst),
        )
        app.state.leadrelay = app_state
        if settings.writer == "process":
            app_state.lead_writer = LeadWriter(settings.db, settings.log_level)
            await app_state.lead_writer.start()
        housekeeping = asyncio.create_task(_housekeeping(store, settings))
        runner = None
        if start_relay and settings.relay != "off":
            from leadrelay.relay_runner import RelayRunner

            runner = RelayRunner(settings, store)
            await runner.start()
        try:
            yield
        finally:
            housekeeping.cancel()
            if app_state.lead_writer is not None:
                await app_state.lead_writer.close()
            if runner is not None:
                await runner.stop()
            await store.close()

    return LeadrelayApp(
        routes=ROUTES,
        lifespan=lifespan,
        exception_handlers={
            ApiError: _api_error,
            HTTPException: _http_error,
            Exception: _unexpected,
        },
    )
