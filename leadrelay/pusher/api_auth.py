"""Pusher's HTTP API signatures, checked on the server side the way Pusher checks them.

A request to Pusher's HTTP API carries five query parameters: `auth_key`, `auth_timestamp`
(Unix seconds), `auth_version=1.0`, `body_md5` (the hex MD5 of the raw body, on every POST)
and `auth_signature`, the hex HMAC-SHA256 with the app secret of

    METHOD "\\n" PATH "\\n" every other parameter, keys lower-cased and sorted, k=v joined by &

with the values as sent, not URL-escaped. That is what `pusher.http.Request` (PyPI) and
pusher-http-node sign, and what Pusher checks, with a 600 s window on the timestamp.
Every refusal is a `PusherApiRefused` carrying Pusher's status and words.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from urllib.parse import unquote_to_bytes

from leadrelay.errors import PusherApiRefused

SIGNATURE_WINDOW_SECONDS = 600
REQUIRED = ("auth_key", "auth_timestamp", "auth_version", "auth_signature")
AUTH_PARAMS = frozenset((*REQUIRED, "body_md5"))
MAX_PARAMS = 32


def parse_query(query: bytes) -> dict[str, str]:
    """The query's parameters, percent-decoded, keys lower-cased.

    `+` stays `+`: the SDKs put values in the URL as they signed them, unescaped, and a
    form decoder would turn a `+` into a space and break the signature. A repeated key is
    refused rather than guessed at."""
    params: dict[str, str] = {}
    for part in query.split(b"&"):
        if not part:
            continue
        raw_key, _, raw_value = part.partition(b"=")
        key = unquote_to_bytes(raw_key).decode("utf-8", "replace").lower()
        if key in params:
            raise PusherApiRefused(400, f"Query parameter {key!r} is given more than once")
        if len(params) == MAX_PARAMS:
            raise PusherApiRefused(400, f"Too many query parameters (at most {MAX_PARAMS})")
        params[key] = unquote_to_bytes(raw_value).decode("utf-8", "replace")
    return params


def string_to_sign(method: str, path: str, params: Mapping[str, str]) -> str:
    query = "&".join(f"{key}={params[key]}" for key in sorted(params) if key != "auth_signature")
    return f"{method}\n{path}\n{query}"


def signature(secret: str, method: str, path: str, params: Mapping[str, str]) -> str:
    message = string_to_sign(method, path, params).encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify(
    method: str,
    path: str,
    params: Mapping[str, str],
    body: bytes,
    *,
    key: str,
    secret: str,
    now: float,
) -> dict[str, str]:
    """Check a request signed for the app (`key`, `secret`); return the parameters that are
    not part of the signature's machinery (`info`, `filter_by_prefix`, …).

    Raises PusherApiRefused(401) for anything Pusher answers 401: a parameter missing, an
    unknown key, another auth_version, a timestamp off by more than 600 s either way, a
    body whose MD5 is not `body_md5`, a wrong signature."""
    missing = [name for name in REQUIRED if not params.get(name)]
    if missing:
        raise PusherApiRefused(401, f"Missing authentication parameters: {', '.join(missing)}")
    if not hmac.compare_digest(params["auth_key"].encode(), key.encode()):
        raise PusherApiRefused(401, "Unknown auth_key")
    if params["auth_version"] != "1.0":
        raise PusherApiRefused(401, "Unsupported auth_version: only 1.0 is supported")
    timestamp = params["auth_timestamp"]
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        raise PusherApiRefused(401, "Invalid auth_timestamp: expected Unix time in seconds")
    if abs(now - int(timestamp)) > SIGNATURE_WINDOW_SECONDS:
        raise PusherApiRefused(
            401,
            f"Timestamp expired: Given timestamp ({_iso(int(timestamp))}) not within "
            f"{SIGNATURE_WINDOW_SECONDS}s of server time ({_iso(int(now))})",
        )
    _check_body_md5(method, params.get("body_md5"), body)
    expected = signature(secret, method, path, params)
    sent = params["auth_signature"]
    if not hmac.compare_digest(sent.lower().encode(), expected.encode()):
        shown = string_to_sign(method, path, params).replace("\\", "\\\\").replace("\n", "\\n")
        raise PusherApiRefused(
            401,
            f'Invalid signature: you should have sent HmacSHA256Hex("{shown}", '
            f'your_secret_key), but you sent "{sent[:100]}"',
        )
    return {name: value for name, value in params.items() if name not in AUTH_PARAMS}


def _check_body_md5(method: str, sent: str | None, body: bytes) -> None:
    if sent is None:
        if method == "POST" or body:
            raise PusherApiRefused(401, "Missing body_md5: a request with a body must sign it")
        return
    if sent.lower() != hashlib.md5(body).hexdigest():
        raise PusherApiRefused(401, "Invalid body_md5: it is not the MD5 of the body sent")


def _iso(seconds: int) -> str:
    try:
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return str(seconds)
