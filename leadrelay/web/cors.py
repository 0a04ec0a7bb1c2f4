"""CORS for dashboards on another origin: `/broadcasting/*` and the provider and admin APIs.

Only the origins in `cors_origins` are answered, and never with credentials: the API takes
bearer tokens, not cookies, so a page sends `Authorization` itself and needs no
`Access-Control-Allow-Credentials`. The intake (`POST /api/leads`, `/api/leads/status`) is a
CRM's server-to-server path and runs ahead of this middleware: it answers no browser.
"""

from __future__ import annotations

import orjson
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# the paths a dashboard calls from its page
CORS_PREFIXES = ("/broadcasting/", "/api/admin/", "/api/provider/")
CORS_PATHS = ("/api/me",)
ALLOW_METHODS = "GET, POST, PUT, PATCH, DELETE"
ALLOW_HEADERS = "Authorization, Content-Type, X-Socket-ID, Idempotency-Key"
EXPOSE_HEADERS = "Retry-After"
MAX_AGE = "600"


def in_scope(path: str) -> bool:
    return path.startswith(CORS_PREFIXES) or path in CORS_PATHS


class Cors:
    """Answers preflights and marks answers for the allowed origins; refuses the rest."""

    def __init__(self, app: ASGIApp, origins: tuple[str, ...]) -> None:
        self.app = app
        self.origins = frozenset(origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.origins or not in_scope(scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers.get("origin")
        allowed = origin is not None and origin.lower() in self.origins
        preflight = scope["method"] == "OPTIONS" and "access-control-request-method" in headers
        if preflight:
            await self._preflight(origin if allowed else None, send)
            return
        if not allowed:
            await self.app(scope, receive, _with_vary(send))
            return
        assert origin is not None
        await self.app(scope, receive, _with_origin(send, origin))

    async def _preflight(self, origin: str | None, send: Send) -> None:
        if origin is None:
            body = orjson.dumps(
                {
                    "error": {
                        "code": "cors_origin_refused",
                        "message": "this origin may not call leadrelay from a browser; "
                        "add it to the 'cors_origins' setting",
                    }
                }
            )
            head = [(b"content-type", b"application/json"), (b"vary", b"Origin")]
            await _answer(send, 403, head, body)
            return
        head = [
            (b"access-control-allow-origin", origin.encode("latin-1")),
            (b"access-control-allow-methods", ALLOW_METHODS.encode()),
            (b"access-control-allow-headers", ALLOW_HEADERS.encode()),
            (b"access-control-max-age", MAX_AGE.encode()),
            (b"vary", b"Origin"),
        ]
        await _answer(send, 204, head, b"")


async def _answer(send: Send, status: int, head: list[tuple[bytes, bytes]], body: bytes) -> None:
    head = [*head, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


def _with_vary(send: Send) -> Send:
    """Caches must not hand one origin's answer to another."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            MutableHeaders(scope=message).add_vary_header("Origin")
        await send(message)

    return sending


def _with_origin(send: Send, origin: str) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = MutableHeaders(scope=message)
            headers["Access-Control-Allow-Origin"] = origin
            headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
            headers.add_vary_header("Origin")
        await send(message)

    return sending
