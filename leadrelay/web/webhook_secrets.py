"""The stored Standard Webhooks secrets: the current one, and rotated ones in their grace period.

Each secret belongs to a sender, named by a `scope`: a webhook's `webhook-id` is unique within
its sender only, so idempotency keys are scoped by it (two senders may both send `msg_1`).  A
rotation hands the sender's scope on to the new secret, so a redelivery signed with it still
finds the first delivery's answer.  A secret stored without a scope has the scope of its hash.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from leadrelay import events
from leadrelay.config import Settings
from leadrelay.errors import Unauthorized
from leadrelay.store.base import Store, Tx
from leadrelay.web import webhooks

SETTING_KEY = "webhook_secrets"
# The stored secrets, read at most once a second per database: a signed webhook then costs
# no database read (a rotation made by another process is seen within the second)
CACHE_SECONDS = 1.0
_cache: dict[str, tuple[float, Any]] = {}  # by the `db` setting


@dataclass(frozen=True)
class Verified:
    """A signed webhook that passed: its `webhook-id`, and the scope of the secret it matched."""

    webhook_id: str
    scope: str

    @property
    def idempotency_key(self) -> str:
        return f"{self.scope}:{self.webhook_id}"


def scope_of(entry: dict[str, Any]) -> str:
    scope = entry.get("scope")
    if isinstance(scope, str) and scope:
        return scope
    return hashlib.sha256(str(entry["secret"]).encode()).hexdigest()[:16]


def _live(entries: Any, now: float) -> list[dict[str, Any]]:
    if not isinstance(entries, list):
        return []
    return [e for e in entries if e.get("expires_at") is None or e["expires_at"] > now]


async def current_secret(store: Store, *, rotate: bool = False, grace_hours: float = 24.0) -> str:
    """The secret integrators sign with; made on first use, or anew with `rotate`."""

    def get(tx: Tx) -> str:
        now = time.time()
        entries = _live(tx.get_setting(SETTING_KEY), now)
        current = [e for e in entries if e.get("expires_at") is None]
        if current and not rotate:
            return str(current[0]["secret"])
        for entry in current:  # the old secret keeps working through the grace period
            entry["expires_at"] = now + grace_hours * 3600
        secret = webhooks.generate_secret()
        entry = {"secret": secret, "expires_at": None, "created_at": now}
        if current:  # the same sender, a new secret
            entry["scope"] = scope_of(current[0])
        entries.insert(0, entry)
        tx.put_setting(SETTING_KEY, entries, events.now_iso())
        return secret

    try:
        return await store.write(get)
    finally:
        _cache.clear()  # this process sees its own change at once


async def _stored(store: Store, db: str) -> Any:
    now = time.monotonic()
    cached = _cache.get(db)
    if cached is not None and cached[0] > now:
        return cached[1]
    entries = await store.get_setting(SETTING_KEY)
    if entries:  # "not set up yet" is read afresh, so the first secret works at once
        _cache[db] = (now + CACHE_SECONDS, entries)
    return entries


async def verify_request(
    store: Store, settings: Settings, headers: Mapping[str, str], body: bytes
) -> Verified:
    """The request's webhook-id and sender when its signature is good; 401 otherwise."""
    entries = _live(await _stored(store, str(settings.db)), time.time())
    secrets = [e["secret"] for e in entries]
    if not secrets:
        raise Unauthorized(
            "signed webhooks are not set up; run 'leadrelay webhooks secret' first",
            code="webhooks_not_configured",
        )
    try:
        webhook_id, matched = webhooks.verify_and_match(
            secrets, headers, body, tolerance=settings.webhook_tolerance_seconds
        )
    except webhooks.WebhookVerificationError as exc:
        raise Unauthorized(exc.message, code=exc.code) from None
    if not 1 <= len(webhook_id) <= 255:
        raise Unauthorized("webhook-id must be 1 to 255 characters", code="webhook_id_invalid")
    return Verified(webhook_id, scope_of(entries[matched]))
