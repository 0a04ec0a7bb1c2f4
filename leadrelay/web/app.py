"""The daemon's ASGI app: its routes, error handlers and lifespan (store, writer, relay)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from functools import partial

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from leadrelay.auth import Authenticator
from leadrelay.config import Settings
from leadrelay.errors import INTERNAL_ERROR_BODY, ApiError, PusherApiRefused
from leadrelay.lead_writer import LeadWriter
from leadrelay.pusher import config as pusher_config
from leadrelay.store import open_store, retention
from leadrelay.web import console, intake, ops_api, pusher_api, status_intake
from leadrelay.web.api import (
    admin_change_lead,
    admin_erase_lead,
    admin_events,
    admin_get_lead,
    admin_list_leads,
    broadcasting_auth,
    broadcasting_config,
    get_pusher_settings,
    healthz,
    metrics_endpoint,
    openapi,
    provider_change_lead,
    provider_events,
    provider_get_lead,
    provider_list_leads,
    put_pusher_settings,
    readyz,
    test_pusher_settings,
)
from leadrelay.web.cors import Cors
from leadrelay.web.http import JSON, error_response
from leadrelay.web.presence_sync import keep_presence_in_sync
from leadrelay.web.pusher_webhooks import pusher_webhooks
from leadrelay.web.ratelimit import FailedAuthLimit, RateLimiter
from leadrelay.web.readiness import Readiness
from leadrelay.web.search_indexing import keep_search_indexed
from leadrelay.web.state import AppState

log = logging.getLogger("leadrelay.api")
Handler = Callable[[Request], Awaitable[Response]]


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    if exc.status == 503:  # the database, or the writer, could not do it: /readyz says so
        request.app.state.leadrelay.readiness.write_failed(exc)
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


class StatusEndpoint:
    """POST /api/leads/status, likewise."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await status_intake.change_status(scope["app"].state.leadrelay, scope, receive, send)


ROUTES = [
    # LeadrelayApp sends POST /api/leads to intake.py before Starlette sees it; the route
    # stays so that other methods get the same 405 as elsewhere
    Route("/api/leads", IntakeEndpoint(), methods=["POST"]),
    Route(status_intake.PATH, StatusEndpoint(), methods=["POST"]),
    Route("/api/admin/leads", admin_list_leads, methods=["GET"]),
    Route(
        "/api/admin/leads/{lead_id}",
        by_method(GET=admin_get_lead, PATCH=admin_change_lead, DELETE=admin_erase_lead),
        methods=["GET", "PATCH", "DELETE"],
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
    Route("/api/me", ops_api.me, methods=["GET"]),
    Route("/api/admin/providers", ops_api.admin_providers, methods=["GET"]),
    Route("/pusher/webhooks", pusher_webhooks, methods=["POST"]),
    Route("/api/admin/outbox", ops_api.outbox_status, methods=["GET"]),
    Route("/api/admin/outbox/failed", ops_api.outbox_failed, methods=["GET"]),
    Route("/api/admin/outbox/retry", ops_api.outbox_retry, methods=["POST"]),
    Route("/api/admin/stats", ops_api.admin_stats, methods=["GET"]),
    Route("/api/provider/stats", ops_api.provider_stats, methods=["GET"]),
    Route("/api/admin/leads/{lead_id}/events", ops_api.admin_lead_events, methods=["GET"]),
    Route("/", console.index, methods=["GET"]),
    Route("/console/{name}", console.asset, methods=["GET"]),
    Route("/healthz", healthz, methods=["GET"]),
    Route("/readyz", readyz, methods=["GET"]),
    Route("/metrics", metrics_endpoint, methods=["GET"]),
    Route("/openapi.json", openapi, methods=["GET"]),
]


async def _housekeeping(settings: Settings) -> None:
    """Retention: every `prune_interval_seconds`, delete delivered events older than
    `events_retention_days` and idempotency keys older than their TTL, in small batches on a
    connection and a thread of their own (store/retention.py), so intake never waits long."""
    policy = retention.Policy.of(settings)
    stop = threading.Event()
    # not niced: a thread starved of CPU while it holds the write lock would stall intake
    pool = ThreadPoolExecutor(1, thread_name_prefix="leadrelay-prune")
    loop = asyncio.get_running_loop()
    try:
        while True:
            await asyncio.sleep(settings.prune_interval_seconds)
            try:
                pruned = await loop.run_in_executor(
                    pool, partial(retention.prune, settings.db, policy, stop=stop)
                )
            except ApiError as exc:
                log.warning("pruning failed: %s", exc, extra={"cause": exc.code})
                continue
            if pruned.events or pruned.idempotency_keys:
                log.info(
                    "pruned %d delivered events and %d expired idempotency keys",
                    pruned.events,
                    pruned.idempotency_keys,
                )
    finally:
        stop.set()  # a batch under way finishes; no other starts
        pool.shutdown(wait=False)


class LeadrelayApp(Starlette):
    """Starlette, but the CRMs' writes, the hot paths, go straight to their handlers:
    POST /api/leads to intake.py, POST /api/leads/status to status_intake.py."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            st = self.state.leadrelay
            if scope["path"] == "/api/leads":
                return await intake.create_lead(st, scope, receive, send)
            if scope["path"] == status_intake.PATH:
                return await status_intake.change_status(st, scope, receive, send)
        await super().__call__(scope, receive, send)


def create_app(settings: Settings, *, start_relay: bool = True) -> LeadrelayApp:
    """The daemon's ASGI app; the store opens (and the relay starts) in its lifespan."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        store = await open_store(settings.db)
        await pusher_config.seed_from_env(store, os.environ)
        app_state = AppState(
            settings=settings,
            store=store,
            auth=Authenticator(store),
            limiter=RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst),
            auth_failures=FailedAuthLimit(settings.auth_failures_per_minute),
            readiness=Readiness(settings, store),
        )
        app.state.leadrelay = app_state
        if settings.writer == "process":
            app_state.lead_writer = LeadWriter(
                settings.db,
                settings.log_level,
                timeout=settings.write_timeout_seconds,
                queue_limit=settings.write_queue_limit,
            )
            await app_state.lead_writer.start()
            app_state.readiness.lead_writer = app_state.lead_writer
        housekeeping = asyncio.create_task(_housekeeping(settings))
        presence = asyncio.create_task(keep_presence_in_sync(store, settings))
        indexing = asyncio.create_task(keep_search_indexed(settings))
        runner = None
        if start_relay and settings.relay != "off":
            from leadrelay.relay.runner import RelayRunner

            runner = RelayRunner(settings, store)
            await runner.start()
        try:
            yield
        finally:
            housekeeping.cancel()
            presence.cancel()
            indexing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await indexing
            if app_state.lead_writer is not None:
                await app_state.lead_writer.close()
            if runner is not None:
                await runner.stop()
            await store.close()

    return LeadrelayApp(
        # Pusher's HTTP API only when asked for: off, /apps/… is a 404 like any unknown path
        routes=ROUTES + pusher_api.ROUTES if settings.pusher_api else ROUTES,
        lifespan=lifespan,
        # no origins, no middleware: the default costs nothing
        middleware=[Middleware(Cors, origins=settings.cors_origins)]
        if settings.cors_origins
        else [],
        exception_handlers={
            ApiError: _api_error,
            PusherApiRefused: pusher_api.refused,
            HTTPException: _http_error,
            Exception: _unexpected,
        },
    )
