"""What every route shares: the app's state (settings, store, auth, limiter, readiness, lead
writer)."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from leadrelay.auth import Authenticator, Principal
from leadrelay.config import Settings
from leadrelay.errors import Unauthorized
from leadrelay.lead_writer import LeadWriter
from leadrelay.store.base import Store
from leadrelay.web.http import socket_id
from leadrelay.web.ratelimit import FailedAuthLimit, RateLimiter
from leadrelay.web.readiness import Readiness

SOCKET_ID_HEADER = "x-socket-id"


@dataclass
class AppState:
    settings: Settings
    store: Store
    auth: Authenticator
    limiter: RateLimiter
    auth_failures: FailedAuthLimit  # failed token checks per client address
    readiness: Readiness  # /readyz, and the health the writes record for it
    lead_writer: LeadWriter | None = None  # None: new leads are written in this process


def state(request: Request) -> AppState:
    app_state: AppState = request.app.state.leadrelay
    return app_state


async def principal(request: Request) -> Principal:
    """The caller of a route, by its token; an address past its failed checks gets 429."""
    st = state(request)
    address = request.client.host if request.client else "unknown"
    st.auth_failures.check(address)
    try:
        return await st.auth.authenticate(request.headers.get("authorization"))
    except Unauthorized:
        st.auth_failures.failed(address)
        raise


def socket_id_of(request: Request) -> str | None:
    return socket_id(request.headers.get(SOCKET_ID_HEADER))
