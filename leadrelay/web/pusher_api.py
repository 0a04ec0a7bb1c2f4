"""Pusher's HTTP API on the daemon's port (setting `pusher_api`): apps keep their Pusher SDK.

POST /apps/{id}/events and /apps/{id}/batch_events are verified as Pusher verifies them
(pusher/api_auth.py) with the stored Pusher app's key and secret, and their bodies checked
as Pusher checks them (pusher/api_events.py). A refusal carries Pusher's status and words
as plain text, so an SDK raises what it raises against Pusher, and stores nothing. The
reads, GET …/channels, …/channels/{name} and …/channels/{name}/users, are verified the same
way, signed afresh and passed to the stored Pusher; its status and body come back, or a 503
while it cannot be reached.

An accepted trigger is stored before it is answered (`store_pusher_events`): each channel of
it (each item of a batch) one row of `events`, all in one transaction that commits (group
commit, fsync; PostgreSQL's writer rules) before the `200 {}`: `type` the name, `channels`
[the channel], `payload` the data untouched, `socket_id` kept, no lead.  Its order is its
channel's (a `pusher_channels` row plays a lead's part: store/ordering.py's ORDER_KEY and
UNBLOCKED, store/transaction.py's take_channel_seqs), and the relay sends it as it came: no
broadcast mode, no trimming, no sealing, re-signed when sent (relay/batches.py).  `info`
is answered `{}`: who is subscribed when the event goes out is not known when it is stored.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from leadrelay import metrics
from leadrelay.errors import ApiError, LoopDetected, PusherApiRefused, PusherError, Unavailable
from leadrelay.pusher import api_auth, api_events, api_store
from leadrelay.pusher import config as pusher_config
from leadrelay.pusher.api_events import PusherApiEvent
from leadrelay.pusher.config import PusherConfig
from leadrelay.pusher.http import PusherClient, status_in_body
from leadrelay.web.http import JSON, collect_body, decode_json
from leadrelay.web.state import AppState, state

# ten events of 10 KB data each, as JSON escapes them at worst, with room to spare
MAX_REQUEST_BYTES = 1 << 20
# what a read may pass on to the upstream: Pusher's `info` and `filter_by_prefix` and the
# like, in characters that need no escaping in a request line
FORWARDED_KEY = re.compile(r"[a-z_]{1,40}")
FORWARDED_VALUE = re.compile(r"[A-Za-z0-9_\-=@,.;:]{0,200}")


async def refused(request: Request, exc: Exception) -> Response:
    """A PusherApiRefused as Pusher answers it: the status, the reason as plain text."""
    assert isinstance(exc, PusherApiRefused)
    return PlainTextResponse(f"{exc}\n", status_code=exc.status)


async def trigger(request: Request) -> Response:
    """POST /apps/{app_id}/events"""
    return await _accept(request, lambda body: [api_events.parse_trigger(body)])


async def trigger_batch(request: Request) -> Response:
    """POST /apps/{app_id}/batch_events"""
    return await _accept(request, api_events.parse_batch)


async def _accept(request: Request, parse: Callable[[Any], list[PusherApiEvent]]) -> Response:
    st, _, body, _ = await _verified(request)
    try:
        payload = decode_json(body)
    except ApiError as exc:
        raise PusherApiRefused(400, f"Invalid JSON in the request body: {exc}") from None
    return await store_pusher_events(st, parse(payload))


async def store_pusher_events(st: AppState, events: list[PusherApiEvent]) -> Response:
    """Store accepted Pusher API events durably, one outbox event per channel, all in one
    transaction (pusher/api_store.py), and answer `200 {}` then only.  Under `serve` the lead
    writer process writes them, group-committed and fsynced with the leads; its refusal
    (a 503 whose body says whether anything may be stored) is passed on as it came."""
    if st.lead_writer is not None:
        status, body = await st.lead_writer.pusher_events(events)
        if status != 200:
            return Response(body, status_code=status, media_type="application/json")
        stored = int(orjson.loads(body)["stored"])
    else:
        stored = await api_store.store_events(st.store, events)
    metrics.PUSHER_API_EVENTS.inc(stored)
    # `info` is not answered: a stored event cannot know who is subscribed when it goes out
    return JSON({})


async def channels(request: Request) -> Response:
    """GET /apps/{app_id}/channels"""
    return await _pass_through(request, "/channels")


async def channel(request: Request) -> Response:
    """GET /apps/{app_id}/channels/{channel}"""
    return await _pass_through(request, "/channels/{channel}")


async def users(request: Request) -> Response:
    """GET /apps/{app_id}/channels/{channel}/users"""
    return await _pass_through(request, "/channels/{channel}/users")


def _channel_name(request: Request) -> str:
    name = str(request.path_params["channel"])
    if not api_events.CHANNEL.fullmatch(name):
        raise PusherApiRefused(400, f"Invalid channel name {name[:200]!r}")
    return name


async def _pass_through(request: Request, template: str) -> Response:
    st, config, _, params = await _verified(request)
    path = template.format(channel=_channel_name(request)) if "{" in template else template
    for key, value in params.items():
        if not (FORWARDED_KEY.fullmatch(key) and FORWARDED_VALUE.fullmatch(value)):
            raise PusherApiRefused(400, f"Invalid query parameter {key[:40]!r}")
    client = PusherClient(config, timeout=st.settings.relay_timeout_seconds)
    try:
        status, headers, body = await client.get_raw(path, params)
    except PusherError as exc:
        raise Unavailable(
            f"the Pusher server this daemon relays to cannot be reached: {exc}",
            code="pusher_unreachable",
        ) from None
    finally:
        await client.aclose()
    if status == 200:  # soketi words some refusals as a 200 with the status in the body
        status = status_in_body(body.decode("utf-8", errors="replace")) or status
    media_type = headers.get("content-type", "application/json")
    return Response(body, status_code=status, media_type=media_type)


async def _verified(request: Request) -> tuple[AppState, PusherConfig, bytes, dict[str, str]]:
    """The app's state, the stored Pusher settings, the raw body and the request's own
    parameters, once the request is known to be signed by the stored app (else refused)."""
    st = state(request)
    if "leadrelay" in request.headers.get("via", "").lower():
        raise LoopDetected(
            "this request came from a leadrelay relaying to its Pusher: the Pusher settings "
            "of that leadrelay name a leadrelay's address, not Pusher's (leadrelay pusher set "
            "--host/--port/--scheme must name Pusher or a Pusher-compatible server)"
        )
    config = await pusher_config.load(st.store)
    app_id = str(request.path_params["app_id"])
    if not config.complete or app_id != config.app_id:
        raise PusherApiRefused(404, f"Unknown app {app_id[:40]!r}")
    body = await _body(request)
    params = api_auth.parse_query(request.scope["query_string"])
    own = api_auth.verify(
        request.method,
        request.scope["path"],
        params,
        body,
        key=config.key,
        secret=config.secret,
        now=time.time(),
    )
    return st, config, body, own


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "").strip()
    if declared and not (declared.isascii() and declared.isdigit()):
        raise PusherApiRefused(400, "Content-Length must be a number")
    if declared and (len(declared) > 19 or int(declared) > MAX_REQUEST_BYTES):
        raise PusherApiRefused(413, f"Request body over {MAX_REQUEST_BYTES} bytes")
    try:
        return await collect_body(request.stream(), MAX_REQUEST_BYTES)
    except ApiError:
        raise PusherApiRefused(413, f"Request body over {MAX_REQUEST_BYTES} bytes") from None


ROUTES = [
    Route("/apps/{app_id}/events", trigger, methods=["POST"]),
    Route("/apps/{app_id}/batch_events", trigger_batch, methods=["POST"]),
    Route("/apps/{app_id}/channels", channels, methods=["GET"]),
    Route("/apps/{app_id}/channels/{channel}", channel, methods=["GET"]),
    Route("/apps/{app_id}/channels/{channel}/users", users, methods=["GET"]),
]
