"""Who is asking: bearer tokens (hashed at rest), and Pusher's private-channel signature."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from leadrelay.errors import Forbidden, Unauthorized
from leadrelay.store.base import Store

TOKEN_PREFIX = "lr_"
# A cached token stays valid this long after it is revoked; the cache spares the
# intake path a database read per request.
CACHE_SECONDS = 5.0


@dataclass(frozen=True)
class Principal:
    role: str  # "admin" or "provider"
    provider_id: int | None = None
    key: str = ""  # a stable, non-secret key for rate limiting (the token's hash)

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


ADMIN = Principal("admin")


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_prefix(token: str) -> str:
    """Enough of a token to tell it apart in listings, too little to use."""
    return token[:10]


class Authenticator:
    """Turns an Authorization header into a Principal, with a short cache."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._cache: dict[str, tuple[float, Principal]] = {}

    async def authenticate(self, authorization: str | None) -> Principal:
        if not authorization:
            raise Unauthorized(
                "send an 'Authorization: Bearer TOKEN' header (an admin or provider token)",
                code="missing_token",
            )
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized(
                "the Authorization header must be 'Bearer TOKEN'", code="invalid_authorization"
            )
        digest = hash_token(token)
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and cached[0] > now:
            return cached[1]
        row = await self.store.principal_for(digest)
        # the lookup is by hash, so timing reveals nothing of the token; compare anyway
        if row is None or not hmac.compare_digest(row["token_hash"], digest):
            raise Unauthorized(
                "that token is not valid; create one with 'leadrelay tokens create --admin' "
                "or 'leadrelay providers add'",
                code="invalid_token",
            )
        principal = Principal(row["role"], row["provider_id"], digest)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[digest] = (now + CACHE_SECONDS, principal)
        return principal


def require_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise Forbidden("this needs an admin token", code="admin_only")


def require_provider(principal: Principal) -> int:
    if principal.provider_id is None:
        raise Forbidden("this needs a provider's token", code="provider_only")
    return principal.provider_id


def channel_signature(key: str, secret: str, socket_id: str, channel: str) -> str:
    """Pusher's private-channel auth string, `KEY:HMAC-SHA256(socket_id:channel)`."""
    digest = hmac.new(secret.encode(), f"{socket_id}:{channel}".encode(), hashlib.sha256)
    return f"{key}:{digest.hexdigest()}"


def shared_secret(channel: str, master_key: bytes) -> bytes:
    """An encrypted channel's secretbox key, as Pusher's libraries derive it: SHA-256(channel
    + master key). Handed (in base64) to a subscriber the daemon authorised, never logged."""
    return hashlib.sha256(channel.encode() + master_key).digest()
