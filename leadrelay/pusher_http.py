"""Pusher's HTTP API through the `pusher` package, over one pooled keep-alive client.

The package's own async backend opens a session per request and its default one blocks,
so `PooledBackend` plugs an `httpx.AsyncClient` into it.  Every failure leaves this
module as a `PusherError` whose `kind` says what a person should do about it.
"""

from __future__ import annotations

import json
import socket
import ssl
import time
import uuid
from collections.abc import Awaitable, Mapping
from typing import Any, cast

import aiohttp
import pusher.http
from pusher.pusher_client import PusherClient as _PusherClient

from leadrelay.errors import PusherError
from leadrelay.pusher_config import PusherConfig


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _status_in_body(body: str) -> int | None:
    """soketi (as installed here) answers some errors with HTTP 200 and the real status in
    the body — `{"error": "...", "code": 401}` — which would pass for success."""
    if not body.startswith('{"error"'):
        return None
    try:
        code = json.loads(body).get("code")
    except ValueError:
        return None
    return code if isinstance(code, int) and 400 <= code <= 599 else None


class PusherStatusError(PusherError):
    """Pusher answered with a status other than 200/202."""

    def __init__(self, message: str, *, kind: str, status: int, retry_after: float | None) -> None:
        super().__init__(message, kind=kind, status=status)
        self.retry_after = retry_after


def status_error(status: int, body: str, retry_after: float | None = None) -> PusherStatusError:
    detail = body.strip()[:200]
    if status == 401:
        kind, why = "auth", "the key or secret is wrong, or this machine's clock is off by >10 min"
    elif status == 404:
        kind, why = "unknown_app", "the app id is unknown here: check the app id and the cluster"
    elif status == 403:
        kind, why = "forbidden", "the app is disabled or over its daily message quota"
    elif status == 413:
        kind, why = "too_large", "the event is over Pusher's 10 KB limit"
    elif status == 429:
        kind, why = "rate_limited", "Pusher is rate limiting this app"
    elif status >= 500:
        kind, why = "server", "the Pusher server failed; it will be retried"
    else:
        kind, why = "protocol", "Pusher refused the request"
    return PusherStatusError(
        f"{why} (HTTP {status}: {detail})", kind=kind, status=status, retry_after=retry_after
    )


def transport_error(exc: Exception, where: str) -> PusherError:
    """Name a connection failure in words a person can act on."""
    text = f"{exc} {exc.__cause__ or ''}".lower()
    cause = getattr(exc, "os_error", None) or exc.__cause__
    if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
        hint = "; a plain-HTTP server would need --scheme http" if where.startswith("https") else ""
        return PusherError(f"{where} did not answer in time (timeout){hint}", kind="timeout")
    if isinstance(exc, aiohttp.ClientConnectorDNSError) or isinstance(cause, socket.gaierror):
        return PusherError(f"cannot resolve {where}: check the host or cluster (DNS)", kind="dns")
    # aiohttp names "ssl:default" in every connection error, so TLS goes by type alone
    if isinstance(cause, ConnectionRefusedError) or "connect call failed" in text:
        return PusherError(
            f"{where} refused the connection: is the server running?", kind="refused"
        )
    if isinstance(exc, aiohttp.ClientSSLError) or isinstance(cause, ssl.SSLError):
        return PusherError(f"TLS with {where} failed: {exc}; check the scheme and port", kind="tls")
    return PusherError(f"the connection to {where} failed: {exc}", kind="refused")


class PooledBackend:
    """A backend for the `pusher` package (any class with `send_request` will do) over one
    aiohttp session: keep-alive connections reused by every request.  aiohttp rather than
    httpx: in a drain of 30,000 events httpx's per-request overhead was a third of the
    relay's time (it probes for the async library on every request)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:  # created on first use, inside the running loop
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=64, keepalive_timeout=30),
                timeout=aiohttp.ClientTimeout(total=self.client.timeout),
            )
        return self._session

    async def send_request(self, request: Any) -> Any:
        where = request.base_url
        try:
            async with self.session.request(
                request.method,
                f"{request.base_url}{request.path}",
                params=request.query_params,
                data=request.body,
                headers=request.headers,
            ) as response:
                status = response.status
                body = await response.text("utf-8", errors="replace")
                retry_after = _retry_after(response.headers)
        except aiohttp.InvalidURL as exc:
            raise PusherError(f"the Pusher address is not valid: {exc}", kind="protocol") from None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise transport_error(exc, where) from None
        if status in (200, 202):
            status = _status_in_body(body) or status
        if status not in (200, 202):
            raise status_error(status, body, retry_after)
        return pusher.http.process_response(status, body)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


class PusherClient:
    """The calls leadrelay makes to Pusher's HTTP API."""

    def __init__(self, config: PusherConfig, *, timeout: float = 5.0) -> None:
        if not config.complete:
            raise PusherError(
                "Pusher is not configured: run 'leadrelay pusher set --app-id … --key … "
                "--secret …'",
                kind="not_configured",
            )
        self.config = config
        try:
            # PusherClient, not pusher.Pusher: the latter builds a second backend we never use
            self._pusher = _PusherClient(
                app_id=config.app_id,
                key=config.key,
                secret=config.secret,
                cluster=None if config.host else config.cluster,
                host=config.server_host,
                port=config.server_port,
                ssl=config.tls,
                timeout=float(timeout),
                backend=PooledBackend,
            )
        except ValueError as exc:
            raise PusherError(
                f"the Pusher settings are not valid: {exc}", kind="protocol"
            ) from None
        self._backend = cast(PooledBackend, self._pusher.http)

    async def trigger_batch(self, items: list[dict[str, Any]]) -> None:
        """Send up to 10 `{channel, name, data(str), socket_id?}` items in one request."""
        # already_encoded: our data is a JSON string measured in UTF-8 bytes, which the
        # package's own check (sys.getsizeof) gets wrong for non-ASCII text
        await cast(Awaitable[Any], self._pusher.trigger_batch(items, already_encoded=True))

    async def channels(self) -> dict[str, Any]:
        return cast(dict[str, Any], await cast(Awaitable[Any], self._pusher.channels_info()))

    async def aclose(self) -> None:
        await self._backend.aclose()


async def test_connection(config: PusherConfig, *, roundtrip: bool = False) -> dict[str, Any]:
    """A signed GET /apps/{id}/channels, then optionally an event received back over a socket."""
    client = PusherClient(config)
    try:
        started = time.perf_counter()
        await client.channels()
        result: dict[str, Any] = {
            "server": config.base_url,
            "app_id": config.app_id,
            "http_ms": round((time.perf_counter() - started) * 1000, 1),
        }
        if roundtrip:
            result["roundtrip_ms"] = await _roundtrip(client, config)
        return result
    finally:
        await client.aclose()


async def _roundtrip(client: PusherClient, config: PusherConfig) -> float:
    """Subscribe to a fresh public channel, trigger an event on it, time its arrival."""
    import asyncio

    from leadrelay import pusher_ws

    channel = f"leadrelay-test-{uuid.uuid4().hex[:12]}"
    url = pusher_ws.ws_url(config.key, host=config.ws_host, port=config.server_port, tls=config.tls)
    try:
        socket = await pusher_ws.PusherSocket.connect(url)
    except pusher_ws.PusherSocketError as exc:
        raise PusherError(f"the websocket connection failed: {exc}", kind="websocket") from None
    try:
        await socket.subscribe(channel)
        # a server may confirm a subscription a moment before it routes events to it, so
        # an event that does not come back within a second is sent again
        for attempt in range(5):
            started = time.perf_counter()
            data = f'{{"test":true,"attempt":{attempt}}}'
            await client.trigger_batch(
                [{"channel": channel, "name": "leadrelay.test", "data": data}]
            )
            try:
                async with asyncio.timeout(1.0):
                    # a fresh iterator per try: a timed-out one is closed
                    async for message in socket.events():
                        if message.channel == channel:
                            return round((time.perf_counter() - started) * 1000, 1)
            except TimeoutError:
                continue
        raise PusherError(
            "the test event did not arrive over the websocket within 5 s", kind="websocket"
        )
    except pusher_ws.PusherSocketError as exc:
        raise PusherError(f"the websocket round trip failed: {exc}", kind="websocket") from None
    finally:
        await socket.close()
