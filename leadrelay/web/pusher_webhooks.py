"""POST /pusher/webhooks: Pusher's channel webhooks, which say who is watching.

Pusher (and soketi) sign the raw body with the app secret: `X-Pusher-Key` names the app,
`X-Pusher-Signature` is the hex HMAC-SHA256. Anything unsigned or wrongly signed is a 401.
`channel_occupied` / `channel_vacated` of a provider's channel mark the provider watching or
not; every other event (other channels, member or client events) is accepted and ignored.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from leadrelay import accounts
from leadrelay.errors import Unauthorized, ValidationFailed
from leadrelay.pusher import config as pusher_config
from leadrelay.web.http import JSON, decode_json, read_body
from leadrelay.web.state import state

log = logging.getLogger("leadrelay.api")
PRESENCE = {"channel_occupied": True, "channel_vacated": False}


def signed(body: bytes, key: str, signature: str, app_key: str, secret: str) -> bool:
    """Whether the body carries a valid signature of this app (what
    `pusher.Pusher.validate_webhook` checks, without its JSON decode and time window)."""
    # bytes, not str: compare_digest refuses non-ASCII text, and headers may carry any
    if not (app_key and secret) or not hmac.compare_digest(key.encode(), app_key.encode()):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(signature.lower().encode(), expected.encode())


async def pusher_webhooks(request: Request) -> Response:
    st = state(request)
    body = await read_body(request, st.settings.max_body_bytes)
    config = await pusher_config.load(st.store)
    key = request.headers.get("x-pusher-key", "")
    signature = request.headers.get("x-pusher-signature", "")
    if not signed(body, key, signature, config.key, config.secret):
        raise Unauthorized(
            "the webhook is not signed by this app: Pusher signs with X-Pusher-Key and "
            "X-Pusher-Signature (HMAC-SHA256 of the body with the app secret)",
            code="invalid_webhook_signature",
        )
    payload = decode_json(body)
    events, at_ms = _events(payload), _time_ms(payload)
    applied = 0
    for event in events:
        occupied = PRESENCE.get(str(event.get("name")))
        channel = event.get("channel")
        if occupied is None or not isinstance(channel, str):
            continue
        if await accounts.record_presence(st.store, channel, occupied, at_ms):
            applied += 1
    return JSON({"ok": True, "applied": applied})


def _events(payload: Any) -> list[dict[str, Any]]:
    if not isinstance(payload, dict) or not isinstance(payload.get("events"), list):
        raise ValidationFailed(
            'a Pusher webhook is {"time_ms", "events": [...]}', code="invalid_webhook"
        )
    return [event for event in payload["events"] if isinstance(event, dict)]


def _time_ms(payload: dict[str, Any]) -> int:
    value = payload.get("time_ms")
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**53:
        raise ValidationFailed("'time_ms' must be a time in milliseconds", code="invalid_webhook")
    return value
