"""`POST /api/leads`, the hot path, as a plain ASGI handler.

Every lead a CRM sends comes through here, so it skips what Starlette does per request for
the other routes (its middleware, router and Request object: about a third of a bare
endpoint's time, measured in docs/dev/performance.md) and reads the few headers it needs straight
off the ASGI scope.  What it checks, in order, and how it answers are the same as any route's:
errors are `ApiError`s answered with the contract's error body.  Under `serve`, the lead itself
is written by the lead writer process (leadrelay/lead_writer/), which answers once it is durable.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from leadrelay import leads, metrics
from leadrelay.auth import Principal, require_admin
from leadrelay.errors import INTERNAL_ERROR_BODY, ApiError, RateLimited, Unauthorized, Unavailable
from leadrelay.web import webhook_secrets
from leadrelay.web.http import (
    check_length,
    collect_body,
    decode_json,
    error_headers,
    require_json,
    socket_id,
    too_large,
)

if TYPE_CHECKING:
    from leadrelay.web.state import AppState

log = logging.getLogger("leadrelay.api")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_JSON_HEADER = (b"content-type", b"application/json")


class ClientGone(Exception):
    """The client closed the connection before it had sent the whole body."""


@dataclass(frozen=True, slots=True)
class Caller:
    """Who sent a write: a token's principal, or the sender of a signed webhook."""

    principal: Principal | None
    webhook: webhook_secrets.Verified | None

    def idempotency_key(self, header: str | None, kind: str = "") -> str | None:
        """The stored key of the request: scoped to the caller, so that two callers' keys
        never meet (a webhook-id within its sender; an Idempotency-Key within its token).
        An Idempotency-Key is scoped to the `kind` of write too, so that a status change
        never replays a lead's answer; a webhook-id is not: it names one delivery, and the
        same id on the other signed endpoint is refused (webhook_id_reused), not applied."""
        if self.webhook is not None:
            return f"webhook:{self.webhook.idempotency_key}"
        if header is None:
            return None
        if not 1 <= len(header) <= 255:
            raise ApiError(
                "Idempotency-Key must be 1 to 255 characters", code="invalid_idempotency_key"
            )
        assert self.principal is not None
        # the token's hash names the caller: 16 of its hex digits are unique enough
        return f"{kind}key:{self.principal.key[:16]}:{header}"


Work = Callable[["AppState", dict[bytes, bytes], bytes, Caller], Awaitable[tuple[int, bytes]]]


async def create_lead(st: AppState, scope: Scope, receive: Receive, send: Send) -> None:
    await handle(st, scope, receive, send, _create)


async def handle(st: AppState, scope: Scope, receive: Receive, send: Send, work: Work) -> None:
    """Read and authorise a write like POST /api/leads, run `work`, and answer."""
    headers = dict(scope["headers"])  # names arrive lower-case
    extra: dict[str, str] = {}
    try:
        raw, caller = await _admit(st, scope, headers, receive)
        status, body = await work(st, headers, raw, caller)
        if status == 503:  # the writer process refused it (database down, say): no headers
            extra = {"Retry-After": str(Unavailable.retry_after)}
            error = orjson.loads(body)["error"]
            st.readiness.write_failed(Unavailable(error["message"], code=error["code"]))
        elif status < 300:
            st.readiness.write_succeeded()
    except ApiError as err:
        status, body, extra = err.status, _encode(err.body()), error_headers(err)
        if err.status == 503:
            st.readiness.write_failed(err)
    except ClientGone:
        return  # nothing was written, and nobody is left to answer
    except Exception as exc:
        log.error("unexpected error on %s %s: %r", scope["method"], scope["path"], exc)
        status, body = 500, _encode(INTERNAL_ERROR_BODY)
    await _answer(send, status, body, extra)


async def _admit(
    st: AppState, scope: Scope, headers: dict[bytes, bytes], receive: Receive
) -> tuple[bytes, Caller]:
    """The body (413 past the limit), who sent it (401/403; 429 for an address past its
    failed checks), within the rate limit (429)."""
    client = scope.get("client")
    address = client[0] if client else "unknown"
    st.auth_failures.check(address)
    limit = st.settings.max_body_bytes
    check_length(_text(headers.get(b"content-length")), limit)
    message = await receive()
    if message["type"] == "http.request" and not message.get("more_body", False):
        raw = message.get("body", b"")  # the usual case: the whole body in one message
        if len(raw) > limit:
            raise too_large(limit)
    else:
        raw = await collect_body(_chunks(message, receive), limit)

    authorization = _text(headers.get(b"authorization"))
    try:
        if authorization or b"webhook-signature" not in headers:
            principal = await st.auth.authenticate(authorization)
            caller = Caller(principal, None)
            rate_key = principal.key
        else:
            text_headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in headers.items()}
            verified = await webhook_secrets.verify_request(
                st.store, st.settings, text_headers, raw
            )
            caller = Caller(None, verified)
            # signed webhooks share no token, so they are limited per client address
            rate_key = address
    except Unauthorized:
        st.auth_failures.failed(address)
        raise
    if caller.principal is not None:
        require_admin(caller.principal)
    wait = st.limiter.check(rate_key)
    if wait > 0:
        retry_after = max(1, int(wait + 0.999))
        raise RateLimited(
            f"too many requests; try again in {retry_after} s", retry_after=retry_after
        )
    require_json(_text(headers.get(b"content-type")) or "")
    return raw, caller


async def _create(
    st: AppState, headers: dict[bytes, bytes], raw: bytes, caller: Caller
) -> tuple[int, bytes]:
    """(201, the lead) when stored; (200, the earlier lead) when its idempotency key was seen."""
    fields = leads.parse_new_lead(decode_json(raw))
    idempotency_key = caller.idempotency_key(_text(headers.get(b"idempotency-key")))
    lead_status = st.settings.statuses[0]
    sid = socket_id(_text(headers.get(b"x-socket-id")))
    if st.lead_writer is not None:  # `serve`: the writer process answers once it is durable
        status, body = await st.lead_writer.create(
            fields, status=lead_status, idempotency_key=idempotency_key, socket_id=sid
        )
    else:
        result = await leads.create_lead(
            st.store, fields, status=lead_status, idempotency_key=idempotency_key, socket_id=sid
        )
        status, body = 201 if result.created else 200, _encode(result.lead)
    if status == 201:
        metrics.LEADS_RECEIVED.inc()
    return status, body


async def _chunks(message: Message, receive: Receive) -> AsyncIterator[bytes]:
    while True:
        if message["type"] == "http.disconnect":
            raise ClientGone
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return
        message = await receive()


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")


def _encode(content: Any) -> bytes:
    return orjson.dumps(content)


async def _answer(send: Send, status: int, body: bytes, extra: dict[str, str]) -> None:
    headers = [_JSON_HEADER, (b"content-length", str(len(body)).encode())]
    headers += [(name.lower().encode(), value.encode()) for name, value in extra.items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
