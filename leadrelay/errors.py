"""The error hierarchy: every failure leadrelay reports on purpose is one of these.

    LeadrelayError              base; `str(err)` is one sentence a person can act on
    ├── ApiError                carries an HTTP `status` and a snake_case `code`
    │   ├── BadRequest          400  malformed body: not JSON, not UTF-8, too deep
    │   ├── Unauthorized        401  missing or unknown token, bad webhook signature
    │   ├── Forbidden           403  a valid caller asking for what is not theirs
    │   ├── NotFound            404  no such lead or provider (or not yours)
    │   ├── Conflict            409  e.g. a provider id that is taken
    │   │   └── WebhookIdReused 409  a webhook-id already used on the other signed endpoint
    │   ├── RequestTimeout      408  a request that did not arrive whole in time
    │   ├── CursorExpired       410  an events cursor older than what retention keeps
    │   ├── PayloadTooLarge     413  body over the configured limit
    │   ├── UnsupportedMedia    415  not application/json
    │   ├── ValidationFailed    422  well-formed JSON with a bad field
    │   ├── HeadersTooLarge     431  a request's headers past their size or count cap
    │   ├── RateLimited         429  over the intake rate; carries `retry_after`
    │   │   └── TooManyFailedAuth  429  too many failed token checks from one address
    │   ├── Unavailable         503  database locked, read-only, full or down; `retry_after`
    │   │   ├── WriterUnavailable  503  a write not made (in time): not stored
    │   │   └── CommitUnknown      503  the connection was lost during the COMMIT: the write
    │   │                               may or may not be stored
    │   └── LoopDetected        508  the stored Pusher host is this daemon (or another leadrelay)
    ├── ConfigError             a setting or settings file is wrong
    ├── PusherError             talking to Pusher failed; `kind` names the cause class
    └── PusherApiRefused        a request to the daemon's Pusher HTTP API (pusher_api) refused
                                as Pusher refuses it: Pusher's `status`, a plain-text reason

The API turns ApiError into the contract's body `{"error": {"code", "message"}}`, and
PusherApiRefused into the plain text Pusher answers with (what Pusher's SDKs expect); the
CLI prints `str(err)` on one line and exits non-zero.  Lower-level exceptions are
translated at the boundary (`raise Unavailable(...) from exc`).
"""

from __future__ import annotations


class LeadrelayError(Exception):
    """Base of every error leadrelay raises deliberately."""

    exit_code = 1


class ApiError(LeadrelayError):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self)

    def body(self) -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code, "message": self.message}}


class BadRequest(ApiError):
    status, code = 400, "bad_request"


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"


class Forbidden(ApiError):
    status, code = 403, "forbidden"


class NotFound(ApiError):
    status, code = 404, "not_found"


class Conflict(ApiError):
    status, code = 409, "conflict"


class WebhookIdReused(Conflict):
    """A `webhook-id` names one delivery: the same id signed for the other endpoint (a
    create replayed as a status change, or the reverse) is refused, not applied."""

    code = "webhook_id_reused"

    def __init__(self, used_on: str) -> None:
        super().__init__(
            f"this webhook-id was already used for {used_on}; a webhook-id names one "
            "delivery: send this one with a new webhook-id"
        )


class RequestTimeout(ApiError):
    """Answered by the HTTP protocol itself (web/protocol.py), before any route runs."""

    status, code = 408, "request_timeout"


class CursorExpired(ApiError):
    status, code = 410, "cursor_expired"


class PayloadTooLarge(ApiError):
    status, code = 413, "payload_too_large"


class UnsupportedMedia(ApiError):
    status, code = 415, "unsupported_media_type"


class ValidationFailed(ApiError):
    status, code = 422, "validation_failed"


def refuse_nul(what: str, value: str, *, code: str) -> None:
    """No stored or searched text holds a NUL (PostgreSQL's text cannot): a 422 `code`."""
    if "\x00" in value:
        raise ValidationFailed(f"{what} must not contain NUL characters", code=code)


class HeadersTooLarge(ApiError):
    """Answered by the HTTP protocol itself (web/protocol.py), before any route runs."""

    status, code = 431, "headers_too_large"


class RateLimited(ApiError):
    status, code = 429, "rate_limited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TooManyFailedAuth(RateLimited):
    status, code = 429, "too_many_failed_auth"


class Unavailable(ApiError):
    """Nothing was written; the caller may send it again after `retry_after` seconds (the
    answer's Retry-After)."""

    status, code = 503, "unavailable"
    retry_after = 1


class WriterUnavailable(Unavailable):
    """The lead writer did not make the write in time, or too many wait for it: the lead is
    not stored, and the caller may send it again after `retry_after` seconds."""

    status, code = 503, "writer_unavailable"

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class CommitUnknown(Unavailable):
    """The write's outcome is unknown: the connection to the database (or the lead writer
    process) was lost while it committed.  It may be stored: send it again with the same
    Idempotency-Key or webhook-id, which answers the first outcome if there was one."""

    status, code = 503, "commit_unknown"

    def __init__(self, message: str | None = None, *, retry_after: int = 1) -> None:
        super().__init__(
            message
            or "the connection to the database was lost while the write was being committed, "
            "so it may or may not be stored: send it again with the same Idempotency-Key "
            "(or webhook-id), which is safe"
        )
        self.retry_after = retry_after


class LoopDetected(ApiError):
    """A request that a leadrelay sent to its upstream Pusher came back to a leadrelay: the
    stored Pusher settings name a leadrelay, not Pusher. Answered at once, so that a read or
    an event cannot chase itself round the loop."""

    status, code = 508, "pusher_loop"


class ConfigError(LeadrelayError):
    """A setting, the settings file or the stored Pusher settings are wrong."""

    exit_code = 2


class PusherError(LeadrelayError):
    """Talking to Pusher failed.  `kind` is one of PUSHER_ERROR_KINDS."""

    def __init__(self, message: str, *, kind: str, status: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status

    @property
    def exit_code(self) -> int:  # type: ignore[override]
        return PUSHER_ERROR_KINDS.get(self.kind, 10)


class PusherApiRefused(LeadrelayError):
    """A request to the daemon's Pusher HTTP API refused as Pusher refuses it: its `status`
    and the reason as Pusher words it, answered as plain text (Pusher's SDKs raise on the
    status and carry the text as their message)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


# Distinct exit codes for `leadrelay test-connection`, one per cause class.
PUSHER_ERROR_KINDS: dict[str, int] = {
    "not_configured": 3,
    "dns": 10,
    "refused": 11,
    "timeout": 12,
    "tls": 13,
    "auth": 14,  # wrong key or secret, or clock skew
    "unknown_app": 15,  # wrong app id or cluster
    "forbidden": 16,  # app disabled or over quota
    "too_large": 17,
    "rate_limited": 18,
    "server": 19,  # 5xx
    "protocol": 20,  # anything else unexpected from the server
    "websocket": 21,  # round-trip over the websocket failed
}


# the body of a 500: what went wrong is in the log, never in the answer
INTERNAL_ERROR_BODY = {
    "error": {"code": "internal_error", "message": "leadrelay hit an unexpected error"}
}
