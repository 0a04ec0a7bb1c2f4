"""Standard Webhooks (https://www.standardwebhooks.com) signing and verification, stdlib only."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets as _random
import time
from collections.abc import Mapping, Sequence
from typing import Final, Literal

__all__ = [
    "DEFAULT_TOLERANCE_SECONDS",
    "SECRET_PREFIX",
    "WebhookErrorCode",
    "WebhookVerificationError",
    "decode_secret",
    "generate_secret",
    "sign",
    "sign_headers",
    "verify",
    "verify_and_match",
]

SECRET_PREFIX: Final = "whsec_"
DEFAULT_TOLERANCE_SECONDS: Final = 300

_ID_HEADER: Final = "webhook-id"
_TIMESTAMP_HEADER: Final = "webhook-timestamp"
_SIGNATURE_HEADER: Final = "webhook-signature"
_REQUIRED_HEADERS: Final = (_ID_HEADER, _TIMESTAMP_HEADER, _SIGNATURE_HEADER)
_SECRET_BYTES: Final = 32
# The spec's timestamp is an integer in seconds; the cap keeps int() cheap on hostile input
# while still allowing any date a real clock will produce.
_TIMESTAMP_PATTERN: Final = re.compile(r"[0-9]{1,15}")

WebhookErrorCode = Literal[
    "webhook_headers_missing",
    "webhook_timestamp_invalid",
    "webhook_timestamp_out_of_tolerance",
    "webhook_signature_invalid",
]


class WebhookVerificationError(Exception):
    """A signed webhook was rejected; `code` is stable, `message` tells the sender what to fix."""

    def __init__(self, code: WebhookErrorCode, message: str) -> None:
        super().__init__(message)
        self.code: WebhookErrorCode = code
        self.message = message

    def __repr__(self) -> str:
        return f"WebhookVerificationError(code={self.code!r}, message={self.message!r})"


def generate_secret() -> str:
    """A new signing secret: `whsec_` and 32 random bytes in base64 (the spec asks for >= 24)."""
    return SECRET_PREFIX + base64.b64encode(_random.token_bytes(_SECRET_BYTES)).decode("ascii")


def decode_secret(secret: str) -> bytes:
    """The HMAC key inside a `whsec_…` secret; ValueError (never showing it) if malformed."""
    encoded = secret.strip().removeprefix(SECRET_PREFIX)
    # Some senders hand out unpadded base64; padding it back costs nothing and keeps them working.
    encoded += "=" * (-len(encoded) % 4)
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(
            "the webhook secret is not valid base64 after 'whsec_'; "
            "copy it again from the sender or create one with generate_secret()"
        ) from None
    if not key:
        raise ValueError("the webhook secret is empty; configure a 'whsec_…' secret")
    return key


def _signature(key: bytes, msg_id: str, timestamp: str, body: bytes) -> bytes:
    signed_content = f"{msg_id}.{timestamp}.".encode() + body
    return hmac.new(key, signed_content, hashlib.sha256).digest()


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `v1,<base64 HMAC-SHA256>` signature of `{msg_id}.{timestamp}.{body}`."""
    digest = _signature(decode_secret(secret), msg_id, str(timestamp), body)
    return "v1," + base64.b64encode(digest).decode("ascii")


def sign_headers(
    secret: str,
    body: bytes,
    *,
    msg_id: str | None = None,
    timestamp: int | None = None,
) -> dict[str, str]:
    """The three Standard Webhooks headers for sending `body`, signed with `secret`."""
    if msg_id is None:
        msg_id = "msg_" + _random.token_urlsafe(18)
    if timestamp is None:
        timestamp = int(time.time())
    return {
        _ID_HEADER: msg_id,
        _TIMESTAMP_HEADER: str(timestamp),
        _SIGNATURE_HEADER: sign(secret, msg_id, timestamp, body),
    }


def _lowercase_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {
        name.lower(): value for name, value in headers.items() if name.lower() in _REQUIRED_HEADERS
    }


def _v1_signatures(header: str) -> list[bytes]:
    """The decoded `v1` signatures in a space-separated header, skipping anything else."""
    found: list[bytes] = []
    for entry in header.split():
        version, _, encoded = entry.partition(",")
        # v1a (ed25519) and future versions are for other verifiers; skipping them is what the
        # spec's forward compatibility asks for.
        if version != "v1" or not encoded:
            continue
        try:
            found.append(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            continue
    return found


def verify(
    secrets: Sequence[str],
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float | None = None,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> str:
    """Check a signed webhook and return its `webhook-id` (see `verify_and_match`)."""
    return verify_and_match(secrets, headers, body, now=now, tolerance=tolerance)[0]


def verify_and_match(
    secrets: Sequence[str],
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: float | None = None,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> tuple[str, int]:
    """Check a signed webhook; return its `webhook-id` and the index in `secrets` of the
    secret that signed it (the first, if several did).

    Passes when any of `secrets` (the current one and, after a rotation, old ones still in
    their grace period) produced any `v1` signature in `webhook-signature`, and
    `webhook-timestamp` is within `tolerance` seconds of `now` (default: the wall clock).
    Raises WebhookVerificationError otherwise, and ValueError for a misconfiguration
    (no secrets, a malformed secret, a negative tolerance).
    """
    if not secrets:
        raise ValueError("no webhook secrets are configured, so no signature can be verified")
    if tolerance < 0:
        raise ValueError(f"tolerance must be 0 or more seconds, not {tolerance}")
    keys = [decode_secret(secret) for secret in secrets]

    found = _lowercase_headers(headers)
    missing = [name for name in _REQUIRED_HEADERS if not found.get(name)]
    if missing:
        raise WebhookVerificationError(
            "webhook_headers_missing",
            f"missing {', '.join(missing)}: a signed webhook needs the headers "
            "webhook-id, webhook-timestamp and webhook-signature",
        )
    msg_id = found[_ID_HEADER]
    timestamp_text = found[_TIMESTAMP_HEADER].strip()

    if not _TIMESTAMP_PATTERN.fullmatch(timestamp_text):
        raise WebhookVerificationError(
            "webhook_timestamp_invalid",
            "webhook-timestamp must be the send time as whole seconds since the Unix epoch, "
            "e.g. 1700000000",
        )
    current = time.time() if now is None else now
    skew = int(timestamp_text) - current
    if abs(skew) > tolerance:
        direction = "in the future" if skew > 0 else "in the past"
        raise WebhookVerificationError(
            "webhook_timestamp_out_of_tolerance",
            f"webhook-timestamp is {abs(skew):.0f} seconds {direction}; it must be within "
            f"{tolerance} seconds of this server's clock: sign each attempt afresh and check "
            "the sender's clock",
        )

    candidates = _v1_signatures(found[_SIGNATURE_HEADER])
    if not candidates:
        raise WebhookVerificationError(
            "webhook_signature_invalid",
            "webhook-signature holds no v1 signature; send 'v1,<base64 HMAC-SHA256>' "
            "(space-separated if there are several)",
        )
    # The raw timestamp text is what the sender signed, so it is hashed as received.
    expected = [_signature(key, msg_id, timestamp_text, body) for key in keys]
    # Every pair is compared, with no early exit, so timing reveals nothing about which matched.
    matched = -1
    for index, digest in enumerate(expected):
        for candidate in candidates:
            if hmac.compare_digest(digest, candidate) and matched < 0:
                matched = index
    if matched < 0:
        raise WebhookVerificationError(
            "webhook_signature_invalid",
            "no signature in webhook-signature matches the configured secret: check that the "
            "sender uses the current whsec_ secret and signs the exact raw body, unmodified",
        )
    return msg_id, matched
