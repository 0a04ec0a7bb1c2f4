"""The OpenAPI paths of the web console and its API: GET /, /api/me, providers, the outbox."""

from __future__ import annotations

from leadrelay.store.base import MAX_ID
from leadrelay.web.openapi.parts import UUID, Schema, json_body, obj, ok

# the outbox's counts of the Pusher API's events (outbox.status)
API_COUNTS = ("pending", "delivered", "dead", "retrying", "total")
# no token needed: the page and its files (the page asks for the token)
PUBLIC_PATHS = ("/", "/console/{name}")


def _outbox_event() -> Schema:
    return obj(
        ["id", "event_id", "type", "lead_id", "seq", "attempts", "last_error"],
        {
            "id": {"type": "integer"},
            "event_id": {"type": "string"},
            "type": {"type": "string"},
            "lead_id": {
                "type": ["integer", "null"],
                "description": "null for an event an app triggered through Pusher's HTTP API",
            },
            "kind": {"type": "string", "enum": ["lead", "pusher_api"]},
            "channels": {"type": "array", "items": {"type": "string"}},
            "seq": {"type": "integer", "description": "in its lead's order, or its channel's"},
            "attempts": {"type": "integer"},
            "last_error": {"type": ["string", "null"]},
        },
    )


def paths() -> dict[str, Schema]:
    html = {"content": {"text/html": {"schema": {"type": "string"}}}}
    me = obj(
        ["role", "provider_id", "name"],
        {
            "role": {"type": "string", "enum": ["admin", "provider"]},
            "provider_id": {"type": ["integer", "null"]},
            "name": {"type": ["string", "null"]},
            "channel": {"type": "string", "description": "the channel of this token's feed"},
            "events_after": {
                "type": "integer",
                "description": "the events API cursor of this moment",
            },
            "statuses": {"type": "array", "items": {"type": "string"}},
            "closed_statuses": {"type": "array", "items": {"type": "string"}},
        },
    )
    retry_body = {
        "oneOf": [
            obj(
                ["event_id"],
                {
                    "event_id": {
                        "oneOf": [
                            {"type": "integer", "minimum": 1, "maximum": MAX_ID},
                            {"type": "string", "pattern": UUID},
                        ],
                        "description": "the outbox id (from the failed list) or the event_id",
                    }
                },
                closed=True,
            ),
            obj(["all"], {"all": {"const": True}}, closed=True),
        ]
    }
    return {
        "/": {
            "get": {
                "summary": "The web console (sign in with an API token)",
                "responses": {"200": {"description": "the console's page", **html}},
            }
        },
        "/console/{name}": {
            "get": {
                "summary": "One of the console's files",
                "parameters": [
                    {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {
                    "200": {
                        "description": "the file",
                        "content": {"text/javascript": {"schema": {"type": "string"}}},
                    },
                    "404": {
                        "description": "no such file",
                        **json_body({"$ref": "#/components/schemas/Error"}),
                    },
                },
            }
        },
        "/api/me": {
            "get": {
                "summary": "Who the bearer token is",
                "responses": ok(200, me, 503),
            }
        },
        "/api/admin/providers": {
            "get": {
                "summary": "The providers with their lead counts",
                "responses": ok(
                    200, obj(["providers"], {"providers": {"type": "array"}}), 403, 503
                ),
            }
        },
        "/api/admin/outbox": {
            "get": {
                "summary": "The outbox: pending, oldest pending age, dead letters, the relay",
                "responses": ok(
                    200,
                    obj(
                        ["pending", "dead", "oldest_pending_age_seconds", "relay_paused_reason"],
                        {
                            "pending": {"type": "integer"},
                            "dead": {"type": "integer"},
                            "oldest_pending_age_seconds": {"type": ["number", "null"]},
                            "relay_paused_reason": {"type": ["string", "null"]},
                            "pusher_api": {
                                **obj(
                                    list(API_COUNTS), {n: {"type": "integer"} for n in API_COUNTS}
                                ),
                                "description": "of the counts, the events apps triggered "
                                "through Pusher's HTTP API (setting pusher_api)",
                            },
                        },
                    ),
                    403,
                    503,
                ),
            }
        },
        "/api/admin/outbox/failed": {
            "get": {
                "summary": "Dead-lettered events with their reason, and events being retried",
                "parameters": [
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "allowEmptyValue": True,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                    }
                ],
                "responses": ok(
                    200,
                    obj(
                        ["dead", "retrying"],
                        {
                            "dead": {"type": "array", "items": _outbox_event()},
                            "retrying": {"type": "array", "items": _outbox_event()},
                        },
                    ),
                    403,
                    422,
                    503,
                ),
            }
        },
        "/api/admin/outbox/retry": {
            "post": {
                "summary": "Send one dead-lettered event, or all of them, again",
                "requestBody": {"required": True, **json_body(retry_body)},
                "responses": ok(
                    200,
                    obj(["retried"], {"retried": {"type": "integer"}}),
                    400,
                    403,
                    404,
                    413,
                    415,
                    422,
                    503,
                ),
            }
        },
    }
