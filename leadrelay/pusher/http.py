"""Pusher's HTTP API through the `pusher` package, over keep-alive connections of our own.

The package's own async backend opens a session per request and its default one blocks,
so `PooledBackend` plugs a small HTTP/1.1 client into it.  Every failure leaves this
module as a `PusherError` whose `kind` says what a person should do about it.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
import time
import uuid
from collections.abc import Awaitable, Mapping
from typing import Any, cast

import orjson
import pusher.crypto as pusher_crypto
import pusher.http
from pusher.pusher_client import PusherClient as _PusherClient

from leadrelay.errors import PusherError
from leadrelay.events import ENCRYPTED_PREFIX
from leadrelay.pusher.config import PusherConfig


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after", "")
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def status_in_body(body: str) -> int | None:
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


def transport_error(exc: BaseException, where: str) -> PusherError:
    """Name a connection failure in words a person can act on."""
    if isinstance(exc, TimeoutError):
        hint = "; a plain-HTTP server would need --scheme http" if where.startswith("https") else ""
        return PusherError(f"{where} did not answer in time (timeout){hint}", kind="timeout")
    if isinstance(exc, socket.gaierror):
        return PusherError(f"cannot resolve {where}: check the host or cluster (DNS)", kind="dns")
    if isinstance(exc, ConnectionRefusedError):
        return PusherError(
            f"{where} refused the connection: is the server running?", kind="refused"
        )
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return PusherError(f"TLS with {where} failed: {exc}; check the scheme and port", kind="tls")
    if isinstance(exc, _BadResponse):
        return PusherError(f"{where} did not answer in HTTP: {exc}", kind="protocol")
    return PusherError(f"the connection to {where} failed: {exc!r}", kind="refused")


class _BadResponse(Exception):
    """The server's answer is not HTTP/1.x as this client reads it."""


class _StaleConnection(Exception):
    """The server closed the connection after the request was written, without answering."""


MAX_RESPONSE_BYTES = 1 << 20
# a batch item's mark (never sent): its data goes as it is, never sealed (an app's own event,
# relay/batches.py: an SDK seals a private-encrypted- one with the app's key before sending)
AS_SENT = "_leadrelay_as_sent"
VIA = "Via: 1.1 leadrelay"
MAX_IDLE_CONNECTIONS = 64


class PooledBackend:
    """A backend for the `pusher` package (any class with `send_request` will do): HTTP/1.1
    over asyncio streams, keeping connections alive for the next request.

    Pusher's API needs one kind of exchange: a small POST or GET with a Content-Length,
    answered with a small body.  A general client costs more than that exchange: aiohttp
    took 245–323 µs of CPU a request here, this ~100 µs, and the relay makes ~2,000 a
    second in a drain (docs/dev/performance.md).  A connection is reused only when the answer
    allows it; one the server closed while idle is replaced once, before any answer.
    """

    def __init__(self, client: Any) -> None:
        self.client = client
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self._tls = ssl.create_default_context() if client.ssl else None

    async def send_request(self, request: Any) -> Any:
        status, headers, body = await self.exchange(request)
        text = body.decode("utf-8", errors="replace")
        if status in (200, 202):
            status = status_in_body(text) or status
        if status not in (200, 202):
            raise status_error(status, text, _retry_after(headers))
        return pusher.http.process_response(status, text)

    async def exchange(self, request: Any) -> tuple[int, dict[str, str], bytes]:
        """Send a signed `pusher.http.Request`; its answer as it came (status, headers, body)."""
        try:
            async with asyncio.timeout(self.client.timeout):
                return await self._exchange(self._encode(request))
        except (OSError, TimeoutError, ssl.CertificateError, _BadResponse) as exc:
            raise transport_error(exc, request.base_url) from None

    def _encode(self, request: Any) -> bytes:
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        target = request.signed_path
        # Via: a leadrelay's Pusher API refuses what a leadrelay sent (settings naming one)
        lines = [f"{request.method} {target} HTTP/1.1", f"Host: {self._host_header()}", VIA]
        lines += [f"{name}: {value}" for name, value in request.headers.items()]
        lines.append(f"Content-Length: {len(body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body

    def _host_header(self) -> str:
        host, port = self.client.host, self.client.port
        default = 443 if self._tls else 80
        return host if port == default else f"{host}:{port}"

    async def _exchange(self, data: bytes) -> tuple[int, dict[str, str], bytes]:
        """Send `data` once: on a kept-alive connection the server has not closed, else on
        a new one.  A request is never sent twice: one written to a connection that then
        closed without an answer may have been received and acted on (an event broadcast),
        so that is an error for the relay's own retry, not a silent second send."""
        if self._idle:
            await asyncio.sleep(0)  # let the loop read any goodbye already on the sockets
        while self._idle:
            reader, writer = self._idle.pop()
            if reader.at_eof() or writer.is_closing():
                writer.close()  # closed while idle, before anything was written to it
                continue
            try:
                return await self._over(reader, writer, data)
            except _StaleConnection:
                raise _BadResponse(
                    "the connection closed before an answer (the request may have been received)"
                ) from None
        reader, writer = await asyncio.open_connection(
            self.client.host,
            self.client.port,
            ssl=self._tls,
            server_hostname=self.client.host if self._tls else None,
            limit=64 * 1024,
        )
        try:
            return await self._over(reader, writer, data)
        except _StaleConnection:
            raise _BadResponse("the connection closed before an answer") from None

    async def _over(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        keep = False
        try:
            writer.write(data)
            try:
                status_line = await reader.readline()
            except ConnectionResetError:
                status_line = b""
            if not status_line:
                raise _StaleConnection
            status, headers = await self._head(status_line, reader)
            body, delimited = await self._body(headers, reader)
            keep = delimited and headers.get("connection", "").lower() != "close"
            return status, headers, body
        finally:
            if keep and len(self._idle) < MAX_IDLE_CONNECTIONS:
                self._idle.append((reader, writer))
            else:
                writer.close()

    @staticmethod
    async def _head(status_line: bytes, reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
        version, _, rest = status_line.decode("latin-1").partition(" ")
        code = rest[:3]
        if not version.startswith("HTTP/1.") or not code.isdigit():
            raise _BadResponse(f"unexpected status line {status_line[:80]!r}")
        headers: dict[str, str] = {}
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n"):
                return int(code), headers
            if not line:
                raise _BadResponse("the connection closed inside the headers")
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()

    @staticmethod
    async def _body(headers: dict[str, str], reader: asyncio.StreamReader) -> tuple[bytes, bool]:
        """The body, and whether its end was marked (so the connection may be reused)."""
        if headers.get("transfer-encoding", "").lower() == "chunked":
            parts: list[bytes] = []
            size = 0
            while True:
                line = await reader.readline()
                try:
                    length = int(line.split(b";")[0].strip(), 16)
                except ValueError:
                    raise _BadResponse(f"bad chunk size {line[:40]!r}") from None
                size += length
                if size > MAX_RESPONSE_BYTES:
                    raise _BadResponse("the answer is too long")
                if length == 0:
                    while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts), True
                parts.append(await reader.readexactly(length))
                await reader.readexactly(2)
        declared = headers.get("content-length")
        if declared is not None:
            if not declared.isdigit() or int(declared) > MAX_RESPONSE_BYTES:
                raise _BadResponse(f"bad Content-Length {declared[:20]!r}")
            return await reader.readexactly(int(declared)), True
        body = await reader.read(MAX_RESPONSE_BYTES + 1)
        while len(body) <= MAX_RESPONSE_BYTES and not reader.at_eof():
            more = await reader.read(MAX_RESPONSE_BYTES + 1 - len(body))
            if not more:
                break
            body += more
        if len(body) > MAX_RESPONSE_BYTES:
            raise _BadResponse("the answer is too long")
        return body, False

    async def aclose(self) -> None:
        while self._idle:
            self._idle.pop()[1].close()


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
        """Send up to 10 `{channel, name, data(str), socket_id?}` items in one request.

        Items on `private-encrypted-` channels are sealed with the master key first (one
        channel an item: Pusher refuses one event to several channels when one is encrypted),
        except an app's own events (AS_SENT), which its SDK sealed already.
        """
        if any(AS_SENT in item or item["channel"].startswith(ENCRYPTED_PREFIX) for item in items):
            items = [self._prepared(item) for item in items]
        # already_encoded: our data is a JSON string measured in UTF-8 bytes, which the
        # package's own check (sys.getsizeof) gets wrong for non-ASCII text
        await cast(Awaitable[Any], self._pusher.trigger_batch(items, already_encoded=True))

    def _prepared(self, item: dict[str, Any]) -> dict[str, Any]:
        """The item as it goes out: an app's own (AS_SENT) as it came, never sealed again;
        one of ours sealed when its channel is encrypted."""
        if AS_SENT in item:
            return {name: value for name, value in item.items() if name != AS_SENT}
        return self._sealed(item)

    def _sealed(self, item: dict[str, Any]) -> dict[str, Any]:
        if not item["channel"].startswith(ENCRYPTED_PREFIX):
            return item
        key = self.config.master_key
        if key is None:
            raise PusherError(
                "encrypted_channels is on but no encryption master key is set: run "
                "'openssl rand -base64 32 | leadrelay pusher set --encryption-master-key -'",
                kind="not_configured",
            )
        sealed = pusher_crypto.encrypt(item["channel"], item["data"], key)
        return {**item, "data": orjson.dumps(sealed).decode()}

    async def channels(self, prefix: str | None = None) -> dict[str, Any]:
        """The occupied channels (`{"channels": {name: {...}}}`), those starting with
        `prefix` when given."""
        info = self._pusher.channels_info(prefix_filter=prefix)
        return cast(dict[str, Any], await cast(Awaitable[Any], info))

    async def get_raw(self, path: str, params: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        """GET /apps/{app id}{path}, signed now; the answer as it came (status, headers, body)."""
        app_path = f"/apps/{self.config.app_id}{path}"
        return await self._backend.exchange(
            pusher.http.Request(self._pusher, "GET", app_path, params)
        )

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
    """Subscribe to a fresh channel, trigger an event on it, time its arrival.

    With an encryption master key stored, the channel is an encrypted one and the event must
    come back opened with the key: the whole encrypted path, not only the server, is tried.
    """
    from leadrelay.auth import shared_secret
    from leadrelay.pusher.protocol import (
        DecryptError,
        PusherSocketError,
        decrypt_data,
        private_channel_auth,
        ws_url,
    )
    from leadrelay.pusher.socket import PusherSocket

    key = config.master_key
    channel = f"leadrelay-test-{uuid.uuid4().hex[:12]}"
    if key is not None:
        channel = ENCRYPTED_PREFIX + channel
    url = ws_url(config.key, host=config.ws_host, port=config.server_port, tls=config.tls)
    try:
        socket = await PusherSocket.connect(url)
    except PusherSocketError as exc:
        raise PusherError(f"the websocket connection failed: {exc}", kind="websocket") from None
    try:
        auth = None
        if key is not None:
            auth = private_channel_auth(config.key, config.secret, socket.socket_id, channel)
        await socket.subscribe(channel, auth=auth)
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
                        if message.channel != channel:
                            continue
                        elapsed = round((time.perf_counter() - started) * 1000, 1)
                        if key is not None:
                            opened = decrypt_data(message.data, shared_secret(channel, key))
                            if opened != {"test": True, "attempt": attempt}:
                                raise DecryptError("the test event came back changed")
                        return elapsed
            except TimeoutError:
                continue
        raise PusherError(
            "the test event did not arrive over the websocket within 5 s", kind="websocket"
        )
    except DecryptError as exc:
        raise PusherError(f"the encrypted round trip failed: {exc}", kind="protocol") from None
    except PusherSocketError as exc:
        raise PusherError(f"the websocket round trip failed: {exc}", kind="websocket") from None
    finally:
        await socket.close()
