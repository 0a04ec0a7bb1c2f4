"""The OpenAPI paths of the web console and its API: GET /, /api/me, providers, the outbox."""

from __future__ import annotations

from typing import Any

from leadrelay.store.schema import MAX_ID

Schema = dict[str, Any]
# no token needed: the page and its files (the page asks for the token)
PUBLIC_PATHS = ("/", "/console/{name}")
UUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


def _json(schema: Schema) -> Schema:
    return {"content": {"application/json": {"schema": schema}}}


def _responses(status: int, schema: Schema, *errors: int) -> Schema:
    answers: Schema = {str(status): {"description": "ok", **_json(schema)}}
    for code in sorted({401, *errors}):
        answers[str(code)] = {
            "description": "error",
            **_json({"$ref": "#/components/schemas/Error"}),
        }
    return answers


def _object(required: list[str], properties: Schema, *, closed: bool = False) -> Schema:
    schema = {"type": "object", "required": required, "properties": properties}
    return {**schema, "additionalProperties": False} if closed else schema


def _outbox_event() -> Schema:
    return _object(
        ["id", "event_id", "type", "lead_id", "seq", "attempts", "last_error"],
        {
            "id": {"type": "integer"},
            "event_id": {"type": "string"},
            "type": {"type": "string"},
            "lead_id": {"type": "integer"},
            "seq": {"type": "integer"},
            "attempts": {"type": "integer"},
            "last_error": {"type": ["string", "null"]},
        },
    )


def paths() -> dict[str, Schema]:
    html = {"content": {"text/html": {"schema": {"type": "string"}}}}
    me = _object(
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
        },
    )
    retry_body = {
        "oneOf": [
            _object(
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
            _object(["all"], {"all": {"const": True}}, closed=True),
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
                        **_json({"$ref": "#/components/schemas/Error"}),
                    },
                },
            }
        },
        "/api/me": {
            "get": {
                "summary": "Who the bearer token is",
                "responses": _responses(200, me, 503),
            }
        },
        "/api/admin/providers": {
            "get": {
                "summary": "The providers with their lead counts",
                "responses": _responses(
                    200, _object(["providers"], {"providers": {"type": "array"}}), 403, 503
                ),
            }
        },
        "/api/admin/outbox": {
            "get": {
                "summary": "The outbox: pending, oldest pending age, dead letters, the relay",
                "responses": _responses(
                    200,
                    _object(
                        ["pending", "dead", "oldest_pending_age_seconds", "relay_paused_reason"],
                        {
                            "pending": {"type": "integer"},
                            "dead": {"type": "integer"},
                            "oldest_pending_age_seconds": {"type": ["number", "null"]},
                            "relay_paused_reason": {"type": ["string", "null"]},
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
                "responses": _responses(
                    200,
                    _object(
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
                "requestBody": {"required": True, **_json(retry_body)},
                "responses": _responses(
                    200,
                    _object(["retried"], {"retried": {"type": "integer"}}),
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
