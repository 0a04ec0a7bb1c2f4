"""Pusher protocol 7 on the client side: URLs, channel auth, frames, close codes, errors.

Exceptions:

    PusherSocketError           base; `str(err)` is one sentence a person can act on
    ├── ConnectError            the connection could not be opened
    │   ├── ConnectRefused      nothing listens at host:port
    │   ├── HostNotFound        the host name does not resolve
    │   ├── ConnectTimeout      no `pusher:connection_established` within `open_timeout`
    │   ├── TLSError            TLS handshake or certificate failure
    │   └── HandshakeRejected   the server answered HTTP instead of upgrading (`.status`)
    ├── ConnectionClosed        the server closed or went silent (`.code`, `.reason`,
    │   │                       `.reconnect`: what the close code asks the client to do)
    │   └── PongTimeout         no reply to our `pusher:ping` within `pong_timeout`
    └── SubscriptionError       `pusher:subscribe` was refused or not answered (`.channel`)

Lower-level errors (OSError, websockets, ssl) are translated at the boundary, `from exc`.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import hashlib
import hmac
import json
import socket
import ssl
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from websockets.exceptions import ConnectionClosed as WsConnectionClosed
from websockets.exceptions import InvalidHandshake, InvalidStatus, InvalidURI

from leadrelay import __version__

PROTOCOL_VERSION: Final = 7
# Used when a server omits activity_timeout; it is Pusher's own default.
DEFAULT_ACTIVITY_TIMEOUT: Final = 120.0
# pusher-js waits 30 s for a pong before it gives a connection up.
DEFAULT_PONG_TIMEOUT: Final = 30.0


def ws_url(key: str, *, host: str, port: int, tls: bool) -> str:
    """The websocket URL a Pusher client opens for app `key`."""
    scheme = "wss" if tls else "ws"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # a bare IPv6 address
    query = f"protocol={PROTOCOL_VERSION}&client=leadrelay&version={__version__}&flash=false"
    return f"{scheme}://{host}:{port}/app/{key}?{query}"


def private_channel_auth(
    key: str, secret: str, socket_id: str, channel: str, channel_data: str | None = None
) -> str:
    """The `auth` value for subscribing `socket_id` to a private (or presence) channel."""
    to_sign = f"{socket_id}:{channel}"
    if channel_data is not None:
        to_sign += f":{channel_data}"
    digest = hmac.new(secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
    return f"{key}:{digest}"


class Reconnect(enum.Enum):
    """What a close code asks of the client (Pusher's close-code ranges)."""

    NEVER = "never"  # 4000-4099: the request itself is wrong; retrying as is cannot help
    BACKOFF = "backoff"  # 4100-4199 and anything unrecognised: wait at least a second
    NOW = "now"  # 4200-4299: the server asks for an immediate reconnect


class PusherSocketError(Exception):
    """Base of every error this module raises."""


class ConnectError(PusherSocketError):
    """The websocket connection could not be opened."""


class ConnectRefused(ConnectError):
    """Nothing accepts connections at the address."""


class HostNotFound(ConnectError):
    """The host name does not resolve."""


class ConnectTimeout(ConnectError):
    """The connection was not established within the time allowed."""


class TLSError(ConnectError):
    """The TLS handshake failed (certificate, protocol, or not TLS at all)."""


class HandshakeRejected(ConnectError):
    """The server answered the upgrade request with an HTTP error status."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ConnectionClosed(PusherSocketError):
    """The connection ended; `reconnect` says what its close code asks the client to do."""

    def __init__(self, code: int | None, reason: str) -> None:
        self.code = code
        self.reason = reason
        shown = f"code {code}" if code is not None else "no close code"
        super().__init__(f"Pusher connection closed ({shown}): {reason or 'no reason given'}")

    @property
    def reconnect(self) -> Reconnect:
        if self.code is not None and 4000 <= self.code <= 4099:
            return Reconnect.NEVER
        if self.code is not None and 4200 <= self.code <= 4299:
            return Reconnect.NOW
        return Reconnect.BACKOFF

    @property
    def should_reconnect(self) -> bool:
        return self.reconnect is not Reconnect.NEVER

    @property
    def min_reconnect_delay(self) -> float:
        """Seconds to wait at least before reconnecting (meaningless for `Reconnect.NEVER`)."""
        return 0.0 if self.reconnect is Reconnect.NOW else 1.0


class PongTimeout(ConnectionClosed):
    """The server did not answer our `pusher:ping`: the connection is presumed dead."""

    def __init__(self, pong_timeout: float) -> None:
        super().__init__(None, f"no pong within {pong_timeout:g} s of our ping")


class SubscriptionError(PusherSocketError):
    """The server refused a subscription, or did not answer it in time."""

    def __init__(self, channel: str, message: str, *, status: int | None = None) -> None:
        super().__init__(f"subscribing to {channel!r} failed: {message}")
        self.channel = channel
        self.status = status


@dataclass(frozen=True, slots=True)
class PusherMessage:
    """One application event; `data` is JSON-decoded when the server sent it as JSON text."""

    channel: str | None
    event: str
    data: Any


def parse_frame(raw: str | bytes) -> PusherMessage | None:
    try:
        frame = json.loads(raw)
    except ValueError:
        return None
    if not isinstance(frame, dict) or not isinstance(frame.get("event"), str):
        return None
    data = frame.get("data")
    # Pusher sends `data` as a JSON string inside the JSON frame; decode the inner layer.
    if isinstance(data, str):
        with contextlib.suppress(ValueError):
            data = json.loads(data)
    channel = frame.get("channel")
    return PusherMessage(channel if isinstance(channel, str) else None, frame["event"], data)


class DecryptError(PusherSocketError):
    """An event on an encrypted channel that the shared secret does not open."""


def decrypt_data(data: Any, secret: bytes) -> Any:
    """Open the `{"nonce", "ciphertext"}` of a `private-encrypted-` event (NaCl secretbox,
    what pusher-js does), JSON-decoding the plaintext when it is JSON."""
    import base64

    import nacl.exceptions
    import nacl.secret

    if not isinstance(data, dict) or not {"nonce", "ciphertext"} <= set(data):
        raise DecryptError("the event on an encrypted channel is not encrypted")
    try:
        nonce = base64.b64decode(str(data["nonce"]), validate=True)
        ciphertext = base64.b64decode(str(data["ciphertext"]), validate=True)
        plain = nacl.secret.SecretBox(secret).decrypt(ciphertext, nonce).decode()
    except (ValueError, nacl.exceptions.CryptoError) as exc:
        raise DecryptError(f"cannot decrypt an event (wrong master key?): {exc}") from None
    try:
        return json.loads(plain)
    except ValueError:
        return plain


def closed_error(exc: WsConnectionClosed, last_error: dict[str, Any] | None) -> ConnectionClosed:
    code = exc.rcvd.code if exc.rcvd is not None else None
    reason = exc.rcvd.reason if exc.rcvd is not None else ""
    if last_error is not None:
        # The pusher:error before the close frame says why in words (uWS sends no reason).
        message = last_error.get("message")
        reason = reason or (message if isinstance(message, str) else "")
        error_code = last_error.get("code")
        if (code is None or not 4000 <= code <= 4999) and isinstance(error_code, int):
            code = error_code
    if code is None and not reason:
        reason = "the connection dropped without a close frame"
    return ConnectionClosed(code, reason)


def announces_close(data: Any) -> bool:
    """Whether a pusher:error carries a close code (4000-4299): the close frame follows."""
    code = data.get("code") if isinstance(data, dict) else None
    return isinstance(code, int) and 4000 <= code <= 4299


def subscription_error(channel: str, data: Any) -> SubscriptionError:
    if not isinstance(data, dict):
        return SubscriptionError(channel, str(data))
    # soketi: {"type", "error", "status"}; Pusher's pusher:error: {"code", "message"}
    text = data.get("error") or data.get("message") or json.dumps(data)
    status = data.get("status", data.get("code"))
    return SubscriptionError(channel, str(text), status=status if isinstance(status, int) else None)


def host_port(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)


def connect_error(url: str, exc: BaseException) -> ConnectError:
    where = host_port(url)
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        return HandshakeRejected(
            f"{where} refused the websocket upgrade with HTTP {status}", status=status
        )
    if isinstance(exc, InvalidURI):
        return ConnectError(f"not a websocket URL: {url!r}")
    if isinstance(exc, InvalidHandshake):
        return ConnectError(f"{where} did not speak the websocket protocol: {exc}")
    if isinstance(exc, ssl.SSLError):
        return TLSError(f"TLS with {where} failed: {exc.reason or exc}")
    if isinstance(exc, socket.gaierror):
        return HostNotFound(f"cannot resolve {urlsplit(url).hostname!r}: {exc.strerror}")
    if _is_refused(exc):
        return ConnectRefused(f"connection refused by {where}: is the Pusher server running?")
    return ConnectError(f"cannot connect to {where}: {exc}")


def _is_refused(exc: BaseException) -> bool:
    if isinstance(exc, ConnectionRefusedError):
        return True
    # asyncio folds one failure per resolved address (::1 and 127.0.0.1 for localhost)
    # into a plain OSError whose text lists them.
    text = str(exc)
    refused = f"[Errno {errno.ECONNREFUSED}]"
    return text.startswith("Multiple exceptions") and text.count("[Errno") == text.count(refused)
