"""The OpenAPI paths of the console's day at a glance and lead timeline: the stats of the
admin and of a provider, and one lead's events with their delivery."""

from __future__ import annotations

from leadrelay.crm_status import RFC3339
from leadrelay.stats import MAX_WINDOW_DAYS
from leadrelay.web.openapi.parts import Schema, desc, id_param, obj, ok, query, ref

COUNT = {"type": "integer"}
SECONDS = {"type": ["number", "null"]}


def _params() -> list[Schema]:
    return [
        query(
            "since",
            {"type": "string", "pattern": RFC3339},
            'when "today" began on the caller\'s clock (RFC 3339); default 00:00 UTC; '
            "moved into the last 48 hours; counted from its whole hour in UTC",
        ),
        query(
            "window_days",
            {"type": "integer", "minimum": 1, "maximum": MAX_WINDOW_DAYS},
            "speed to contact over this many UTC calendar days up to today (default 7)",
        ),
    ]


def _frame() -> Schema:
    return {
        "generated_at": {"type": "string", "format": "date-time"},
        "since": {"type": "string", "format": "date-time"},
        "window_days": COUNT,
        "statuses": {"type": "object", "additionalProperties": COUNT},
        "open": COUNT,
        "median_contact_seconds": {
            **SECONDS,
            **desc("median time from lead.assigned to the provider's first status change"),
        },
        "contacted": {**COUNT, **desc("first contacts in the window")},
    }


def _delivery() -> Schema:
    return obj(
        ["state", "delivered_at", "attempts", "last_error", "next_attempt_at"],
        {
            "state": {"type": "string", "enum": ["delivered", "pending", "retrying", "dead"]},
            "delivered_at": {"type": ["string", "null"], "format": "date-time"},
            "attempts": COUNT,
            "last_error": {"type": ["string", "null"]},
            "next_attempt_at": {"type": ["string", "null"], "format": "date-time"},
        },
    )


def paths() -> dict[str, Schema]:
    provider = obj(
        ["id", "name", "open", "waiting", "assigned_today", "median_contact_seconds"],
        {
            "id": COUNT,
            "name": {"type": "string"},
            "open": COUNT,
            "waiting": {**COUNT, **desc("open leads still in the first status")},
            "assigned_today": COUNT,
            "median_contact_seconds": SECONDS,
            "contacted": COUNT,
        },
    )
    admin = obj(
        ["statuses", "total", "open", "unassigned", "hours", "providers", "contact"],
        {
            **{
                k: v
                for k, v in _frame().items()
                if k not in ("median_contact_seconds", "contacted")
            },
            "total": COUNT,
            "unassigned": obj(
                ["waiting", "oldest_created_at", "oldest_age_seconds"],
                {
                    "waiting": {**COUNT, **desc("open leads with no provider")},
                    "oldest_created_at": {"type": ["string", "null"], "format": "date-time"},
                    "oldest_age_seconds": SECONDS,
                },
            ),
            "hours": {
                "type": "array",
                "items": obj(
                    ["hour", "created"],
                    {"hour": {"type": "string", "format": "date-time"}, "created": COUNT},
                ),
                **desc("leads created each UTC hour from `since` to now"),
            },
            "providers": {"type": "array", "items": provider},
            "contact": obj(
                ["median_contact_seconds", "contacted"],
                {"median_contact_seconds": SECONDS, "contacted": COUNT},
            ),
        },
    )
    own = obj(
        ["statuses", "open", "waiting", "assigned_today", "median_contact_seconds"],
        {**_frame(), "waiting": COUNT, "assigned_today": COUNT},
    )
    event = {"allOf": [ref("Event"), obj(["delivery"], {"delivery": _delivery()})]}
    return {
        "/api/admin/stats": {
            "get": {
                "summary": "The day at a glance: leads by status, who waits, each provider",
                "parameters": _params(),
                "responses": ok(200, admin, 403, 422, 503),
            }
        },
        "/api/provider/stats": {
            "get": {
                "summary": "The provider's own figures: open, waiting, today, speed to contact",
                "parameters": _params(),
                "responses": ok(200, own, 403, 422, 503),
            }
        },
        "/api/admin/leads/{lead_id}/events": {
            "get": {
                "summary": "One lead and its events, oldest first, each with its delivery",
                "parameters": [id_param()],
                "responses": ok(
                    200,
                    obj(
                        ["lead", "events"],
                        {"lead": ref("Lead"), "events": {"type": "array", "items": event}},
                    ),
                    403,
                    404,
                    422,
                    503,
                ),
            }
        },
    }
