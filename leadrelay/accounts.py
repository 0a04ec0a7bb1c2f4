"""Providers and tokens: who may call the API, and as whom."""

from __future__ import annotations

from datetime import datetime

from leadrelay import events
from leadrelay.auth import hash_token, new_token, token_prefix
from leadrelay.errors import Conflict, ValidationFailed
from leadrelay.store.base import Row, Store, Tx


def _check_name(name: str) -> str:
    name = name.strip()
    if not 1 <= len(name) <= 200:
        raise ValidationFailed("a provider's name must be 1 to 200 characters", code="invalid_name")
    return name


async def add_provider(store: Store, name: str, provider_id: int | None = None) -> Row:
    """Create a provider and its first token; the token is shown only now."""
    name = _check_name(name)
    token = new_token()

    def add(tx: Tx) -> Row:
        if provider_id is not None and tx.provider_exists(provider_id):
            raise Conflict(f"provider {provider_id} already exists", code="provider_exists")
        now = events.now_iso()
        new_id = tx.insert_provider(name, provider_id, now)
        tx.insert_token(hash_token(token), token_prefix(token), "provider", new_id, now)
        return {"id": new_id, "name": name, "token": token}

    return await store.write(add)


async def create_provider_token(store: Store, provider_id: int) -> str:
    token = new_token()

    def add(tx: Tx) -> None:
        if not tx.provider_exists(provider_id):
            raise ValidationFailed(
                f"provider {provider_id} does not exist", code="unknown_provider"
            )
        tx.insert_token(
            hash_token(token), token_prefix(token), "provider", provider_id, events.now_iso()
        )

    await store.write(add)
    return token


async def create_admin_token(store: Store, *, only_if_none: bool = False) -> str | None:
    """A new admin token; with `only_if_none`, only when no admin token exists yet."""
    token = new_token()

    def add(tx: Tx) -> str | None:
        if only_if_none and tx.count_admin_tokens() > 0:
            return None
        tx.insert_token(hash_token(token), token_prefix(token), "admin", None, events.now_iso())
        return token

    return await store.write(add)


async def revoke_token(store: Store, prefix: str) -> int:
    return await store.write(lambda tx: tx.revoke_token(prefix, events.now_iso()))


async def list_providers(store: Store) -> list[Row]:
    """Providers with their lead counts and who is watching: `watching` (their channel is
    occupied now) and `last_seen` (when it was last occupied or vacated; None: never)."""
    rows = await store.list_providers()
    return [{**row, "watching": bool(row["watching"])} for row in rows]


def watching_in_words(provider: Row, now: float) -> str:
    """'watching now', 'last seen 3 min ago' or 'never seen': a bare time read as
    "watching since" to the first user who saw it."""
    if provider["watching"]:
        return "watching now"
    if not provider["last_seen"]:
        return "never seen"
    seen = datetime.fromisoformat(provider["last_seen"]).timestamp()
    return f"last seen {_ago(max(0.0, now - seen))}"


def _ago(seconds: float) -> str:
    for unit, size, up_to in (("s", 1, 60), ("min", 60, 3600), ("h", 3600, 48 * 3600)):
        if seconds < up_to:
            return f"{int(seconds // size)} {unit} ago"
    days = int(seconds // 86400)
    return f"{days} days ago"


async def sync_presence(store: Store, occupied_channels: list[str], at_ms: int) -> int:
    """Who is watching, from Pusher's list of the occupied channels (see Tx.sync_presence)."""
    occupied = {events.provider_of_channel(channel) for channel in occupied_channels}
    ids = {provider_id for provider_id in occupied if provider_id is not None}
    at_iso = events.iso_time(at_ms / 1000)
    return await store.write(lambda tx: tx.sync_presence(ids, at_ms, at_iso))


async def record_presence(store: Store, channel: str, occupied: bool, at_ms: int) -> bool:
    """A provider channel's channel_occupied / channel_vacated webhook; False when the
    channel is no provider's, the provider is unknown, or a newer webhook came first."""
    provider_id = events.provider_of_channel(channel)
    if provider_id is None:
        return False
    at_iso = events.iso_time(at_ms / 1000)
    return await store.write(lambda tx: tx.set_presence(provider_id, occupied, at_ms, at_iso))
