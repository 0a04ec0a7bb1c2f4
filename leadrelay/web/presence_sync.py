"""Who is watching, corrected from Pusher's own list of occupied provider channels.

The channel webhooks (pusher_webhooks.py) say it as it happens, but nobody sends one twice:
one lost while the daemon was down would leave a provider "watching" for good. Every
`presence_sync_seconds` the daemon asks Pusher (GET /apps/{id}/channels) which provider
channels are occupied and corrects the providers it disagrees with.
"""

from __future__ import annotations

import asyncio
import logging
import time

from leadrelay import accounts
from leadrelay.config import Settings
from leadrelay.errors import ApiError, PusherError
from leadrelay.events import ENCRYPTED_PREFIX, PROVIDER_PREFIX
from leadrelay.pusher import config as pusher_config
from leadrelay.pusher.http import PusherClient
from leadrelay.store.base import Store

log = logging.getLogger("leadrelay.presence")
PREFIXES = (PROVIDER_PREFIX, ENCRYPTED_PREFIX + "provider.")


async def sync_once(store: Store, settings: Settings) -> int | None:
    """One correction; None when Pusher is not set up or relaying is off."""
    config = await pusher_config.load(store)
    if not (config.enabled and config.complete):
        return None
    asked_ms = int(time.time() * 1000)
    client = PusherClient(config, timeout=settings.relay_timeout_seconds)
    try:
        occupied: list[str] = []
        for prefix in PREFIXES:
            found = await client.channels(prefix)
            occupied.extend(found.get("channels") or {})
    finally:
        await client.aclose()
    return await accounts.sync_presence(store, occupied, asked_ms)


async def keep_presence_in_sync(store: Store, settings: Settings) -> None:
    """Soon after start, then every interval; never raises."""
    interval = settings.presence_sync_seconds
    if interval <= 0:
        return
    await asyncio.sleep(min(interval, 5.0))
    while True:
        try:
            changed = await sync_once(store, settings)
            if changed:
                log.info("who is watching: %d providers corrected from Pusher's channels", changed)
        except (PusherError, ApiError) as exc:
            log.warning("who is watching could not be checked with Pusher: %s", exc)
        await asyncio.sleep(interval)
