"""The OpenAPI 3.1 document describing every route of the API.

It states what the validators in `leads`, `http` and `pusher_config` accept, so that a
request valid by this document is refused only for what a schema cannot say (an unknown
provider, Pusher settings that are incomplete); `tests/test_fuzz.py` holds it to that.
"""

from __future__ import annotations

from typing import Any

from leadrelay import __version__
from leadrelay.config import Settings
from leadrelay.crm_status import RFC3339
from leadrelay.leads import NEW_LEAD_FIELDS
from leadrelay.store.schema import MAX_ID
from leadrelay.web import openapi_console

Schema = dict[str, Any]

# Python's whitespace (str.isspace, re's \s) spelled out: JSON Schema patterns are ECMA-262,
# whose \s differs (it lacks \x1c-\x1f and \x85, and has \ufeff)
SPACE = r"\t\n\v\f\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NO_NUL = r"^[^\x00]*$"
NOT_BLANK = rf"^[^\x00]*[^{SPACE}\x00][^\x00]*$"
EMAIL = rf"^[^@{SPACE}\x00]+@[^@{SPACE}\x00]+\.[^@{SPACE}.\x00]+$"
NO_SPACE = rf"^[^{SPACE}]*$"
SOCKET_ID = r"^[0-9]+\.[0-9]+$"
# signed another way (or not at all): no bearer token
PUBLIC = ("/healthz", "/readyz", "/metrics", "/openapi.json", "/pusher/webhooks")


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: Schema) -> Schema:
    return {"content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Schema]:
    responses: dict[str, Schema] = {}
    for status in sorted({401, *statuses}):
        responses[str(status)] = {"description": "error", **_json(_ref("Error"))}
    if 429 in statuses:
        responses["429"]["headers"] = {
            "Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}
        }
    return responses


def _ok(status: int, schema: Schema, *errors: int) -> dict[str, Schema]:
    return {str(status): {"description": "ok", **_json(schema)}, **_errors(*errors)}


def _id_param(name: str = "lead_id") -> Schema:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
    }


def _query(name: str, schema: Schema, description: str | None = None) -> Schema:
    # an empty value (`?after=`) means the parameter is absent
    param = {"name": name, "in": "query", "required": False, "allowEmptyValue": True}
    param["schema"] = schema
    if description:
        param["description"] = description
    return param


def _header(name: str, schema: Schema, description: str) -> Schema:
    return {"name": name, "in": "header", "required": False, "schema": schema, **_desc(description)}


def _desc(text: str) -> Schema:
    return {"description": text}


def _nullable(schema: Schema) -> Schema:
    return {**schema, "type": [schema["type"], "null"]}


def _schemas(settings: Settings) -> dict[str, Schema]:
    text = {"type": ["string", "null"]}
    status = {"type": "string", "enum": list(settings.statuses)}
    new_lead: dict[str, Schema] = {}
    for name, (max_len, required) in NEW_LEAD_FIELDS.items():
        field: Schema = {"type": "string", "maxLength": max_len, "pattern": NO_NUL}
        new_lead[name] = field if required else _nullable(field)
    new_lead["name"] |= {"minLength": 1, "pattern": NOT_BLANK}
    new_lead["email"]["pattern"] = EMAIL
    new_lead["provider_id"] = {
        "type": ["integer", "null"],
        "minimum": 1,
        "maximum": MAX_ID,
        **_desc("an existing provider's id (422 otherwise)"),
    }
    pusher_change: dict[str, Schema] = {
        "app_id": {"type": "string", "pattern": "^[0-9]*$"},
        "key": {"type": "string", "maxLength": 200, "pattern": NO_SPACE},
        "secret": {"type": "string", "maxLength": 200, "pattern": NO_SPACE},
        "cluster": {"type": "string", "pattern": "^[a-z0-9-]{1,40}$"},
        "host": {
            "type": "string",
            "pattern": r"^$|^[A-Za-z0-9.-]{1,253}$|^\[[0-9a-fA-F:]+\]$",
            **_desc("a self-hosted server; empty for Pusher's cluster host"),
        },
        "port": {"type": "integer", "minimum": 1, "maximum": 65535},
        "scheme": {"type": "string", "enum": ["http", "https"]},
        "enabled": {"type": "boolean", **_desc("true needs app_id, key and secret set (422)")},
    }
    return {
        "Lead": {
            "type": "object",
            "required": ["id", "name", "status", "created_at", "updated_at"],
            "properties": {
                "id": {"type": "integer"},
                "name": {"type": "string"},
                "email": text,
                "phone": text,
                "status": status,
                "provider_id": {"type": ["integer", "null"]},
                "source": text,
                "notes": {**text, **_desc("admins only")},
                "external_id": {**text, **_desc("admins only")},
                "created_at": {"type": "string", "format": "date-time"},
                "updated_at": {"type": "string", "format": "date-time"},
                "erased_at": {
                    "type": ["string", "null"],
                    "format": "date-time",
                    **_desc("admins only: when the personal fields were erased (name is then '')"),
                },
            },
        },
        "NewLead": {
            "type": "object",
            "required": ["name"],
            "properties": new_lead,
            "description": "Unknown fields are ignored: CRMs send extra fields. A known "
            "external_id returns that lead (200) and creates nothing; an empty one is none.",
        },
        "StatusChange": _status_change(status, new_lead["provider_id"]),
        "StatusResult": {
            "type": "object",
            "required": ["lead", "applied", "reason"],
            "properties": {
                "lead": _ref("Lead"),
                "applied": {"type": "boolean", **_desc("true exactly when an event fired")},
                "reason": {
                    "type": ["string", "null"],
                    "enum": ["stale", "unchanged", None],
                    **_desc(
                        "stale: changed_at is older than the lead's last change from the CRM; "
                        "unchanged: the lead already had that status and provider"
                    ),
                },
            },
        },
        "AdminChange": {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": False,
            "properties": {"status": status, "provider_id": new_lead["provider_id"]},
        },
        "ProviderChange": {
            "type": "object",
            "required": ["status"],
            "additionalProperties": False,
            "properties": {"status": status},
        },
        "Event": {
            "type": "object",
            "required": ["id", "event_id", "event", "channels", "lead_id", "seq", "data"],
            "properties": {
                "id": {"type": "integer"},
                "event_id": {"type": "string", "format": "uuid"},
                "event": {"type": "string", "enum": ["lead.assigned", "lead.status.updated"]},
                "channels": {"type": "array", "items": {"type": "string"}},
                "lead_id": {"type": "integer"},
                "seq": {"type": "integer"},
                "data": {"type": "object"},
            },
        },
        "PusherSettings": {
            "type": "object",
            "properties": {
                "app_id": {"type": "string"},
                "key": {"type": "string"},
                "secret": {"type": "string", **_desc("masked: at most its last 2 characters")},
                "cluster": {"type": "string"},
                "host": {"type": ["string", "null"]},
                "port": {"type": ["integer", "null"]},
                "scheme": {"type": "string", "enum": ["http", "https"]},
                "enabled": {"type": "boolean"},
            },
        },
        "PusherChange": {
            "type": "object",
            "additionalProperties": False,
            "properties": {name: _nullable(s) for name, s in pusher_change.items()},
            "description": "Absent or null fields keep their stored value.",
        },
        "ChannelAuth": {
            "type": "object",
            "required": ["socket_id", "channel_name"],
            "properties": {
                "socket_id": {"type": "string", "pattern": SOCKET_ID},
                "channel_name": {"type": "string", "pattern": "^private-"},
            },
        },
        "Error": {
            "type": "object",
            "required": ["error"],
            "properties": {
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
                }
            },
        },
    }


def _status_change(status: Schema, provider_id: Schema) -> Schema:
    max_len = NEW_LEAD_FIELDS["external_id"][0]
    external_id = {"type": "string", "minLength": 1, "maxLength": max_len}
    lead_id = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
    return {
        "type": "object",
        "required": ["status"],
        "properties": {
            "external_id": {**_nullable(external_id), **_desc("the CRM's id for the lead")},
            "id": {**_nullable(lead_id), **_desc("leadrelay's id for the lead")},
            "status": status,
            "provider_id": {**provider_id, **_desc("reassign in the same change; null: none")},
            "changed_at": {
                "type": ["string", "null"],
                "format": "date-time",
                "pattern": RFC3339,
                **_desc("when the change happened in the CRM (RFC 3339, with an offset)"),
            },
        },
        # exactly one of external_id and id names the lead
        "oneOf": [
            {
                "required": ["external_id"],
                "properties": {"external_id": external_id, "id": {"type": "null"}},
            },
            {"required": ["id"], "properties": {"id": lead_id, "external_id": {"type": "null"}}},
        ],  # fmt: skip
        "description": "Unknown fields are ignored: CRMs send extra fields.",
    }


def _paths(settings: Settings) -> Schema:
    status = {"type": "string", "enum": list(settings.statuses)}
    cursor = {"type": "integer", "minimum": 0, "maximum": MAX_ID}
    socket_id = _header(
        "X-Socket-ID",
        {"type": "string"},
        "the sender's Pusher socket id, excluded from the broadcast; ignored when malformed",
    )
    list_params = [
        _query("status", status),
        _query("after", cursor, "the last lead id seen"),
        _query("limit", {"type": "integer", "minimum": 1, "maximum": 500}),
    ]
    event_params = [
        _query(
            "after",
            {"anyOf": [cursor, {"type": "string", "format": "uuid"}]},
            "the last event's id number, or its event_id (404 when unknown)",
        ),
        _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}),
        _query("lead_id", cursor, "only this lead's events; 0 means all"),
    ]
    leads_page = {
        "type": "object",
        "required": ["leads", "next_after"],
        "properties": {
            "leads": {"type": "array", "items": _ref("Lead")},
            "next_after": {"type": ["integer", "null"]},
        },
    }
    events_page = {
        "type": "object",
        "required": ["events", "next_after"],
        "properties": {
            "events": {"type": "array", "items": _ref("Event")},
            "next_after": {"type": "integer"},
        },
    }
    body_errors = (400, 403, 404, 413, 415, 422, 503)
    create_headers = [
        _header(
            "Idempotency-Key",
            {"type": "string", "minLength": 1, "maxLength": 255},
            "a repeat returns the first lead (200), even with a different body",
        ),
        _header("webhook-id", {"type": "string"}, "Standard Webhooks, instead of a token"),
        _header("webhook-timestamp", {"type": "string"}, "Standard Webhooks"),
        _header("webhook-signature", {"type": "string"}, "Standard Webhooks"),
        socket_id,
    ]
    return {
        "/api/leads": {
            "post": {
                "summary": "Create a lead (admin token or Standard Webhooks signature)",
                "parameters": create_headers,
                "requestBody": {"required": True, **_json(_ref("NewLead"))},
                "responses": {
                    **_ok(201, _ref("Lead"), 400, 403, 413, 415, 422, 429, 503),
                    "200": {"description": "an idempotent repeat", **_json(_ref("Lead"))},
                },
            }
        },
        "/api/leads/status": {
            "post": {
                "summary": "A CRM's status change (admin token or Standard Webhooks signature)",
                "description": "Fires lead.assigned (when the provider changes) then "
                "lead.status.updated with changed_by.role 'crm'. A lead not known yet is a "
                "404 lead_not_found: send it again once its create has landed.",
                "parameters": [
                    _header(
                        "Idempotency-Key",
                        {"type": "string", "minLength": 1, "maxLength": 255},
                        "a repeat answers the first applied and reason again, firing nothing",
                    ),
                    *create_headers[1:],
                ],
                "requestBody": {"required": True, **_json(_ref("StatusChange"))},
                "responses": _ok(200, _ref("StatusResult"), *body_errors, 429),
            }
        },
        "/api/admin/leads": {
            "get": {
                "summary": "List leads",
                "parameters": [
                    *list_params,
                    _query("provider_id", cursor, "0 means all"),
                    _query("external_id", {"type": "string"}, "the CRM's id for the lead"),
                ],
                "responses": _ok(200, leads_page, 403, 422, 503),
            }
        },
        "/api/admin/leads/{lead_id}": {
            "get": {
                "summary": "One lead",
                "parameters": [_id_param()],
                "responses": _ok(200, _ref("Lead"), 403, 404, 422, 503),
            },
            "patch": {
                "summary": "Change a lead's status or provider",
                "parameters": [_id_param(), socket_id],
                "requestBody": {"required": True, **_json(_ref("AdminChange"))},
                "responses": _ok(200, _ref("Lead"), *body_errors),
            },
            "delete": {
                "summary": "Erase a lead's personal fields (the row, status and events stay)",
                "parameters": [_id_param()],
                "responses": _ok(200, _ref("Lead"), 403, 404, 422, 503),
            },
        },
        "/api/admin/events": {
            "get": {
                "summary": "Events after a cursor, as broadcast",
                "parameters": event_params,
                "responses": _ok(200, events_page, 403, 404, 422, 503),
            }
        },
        "/api/provider/leads": {
            "get": {
                "summary": "The provider's own leads",
                "parameters": list_params,
                "responses": _ok(200, leads_page, 403, 422, 503),
            }
        },
        "/api/provider/leads/{lead_id}": {
            "get": {
                "summary": "One of the provider's leads",
                "parameters": [_id_param()],
                "responses": _ok(200, _ref("Lead"), 403, 404, 422, 503),
            },
            "patch": {
                "summary": "Change the status of one of the provider's leads",
                "parameters": [_id_param(), socket_id],
                "requestBody": {"required": True, **_json(_ref("ProviderChange"))},
                "responses": _ok(200, _ref("Lead"), *body_errors),
            },
        },
        "/api/provider/events": {
            "get": {
                "summary": "Events of the provider's leads after a cursor",
                "parameters": event_params,
                "responses": _ok(200, events_page, 403, 404, 422, 503),
            }
        },
        "/broadcasting/auth": {
            "post": {
                "summary": "Pusher private-channel auth (pusher-js / Laravel Echo)",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/x-www-form-urlencoded": {"schema": _ref("ChannelAuth")},
                        "application/json": {"schema": _ref("ChannelAuth")},
                    },
                },
                "responses": _ok(
                    200,
                    {
                        "type": "object",
                        "required": ["auth"],
                        "properties": {
                            "auth": {"type": "string"},
                            # private-encrypted- channels: the channel's key, in base64
                            "shared_secret": {"type": "string"},
                        },
                    },
                    400,
                    403,
                    413,
                    415,
                    422,
                ),
            }
        },
        "/broadcasting/config": {
            "get": {
                "summary": "The socket's public settings: key, cluster, host, port, TLS",
                "responses": _ok(
                    200,
                    {
                        "type": "object",
                        "required": ["key", "cluster", "ws_host", "ws_port", "tls"],
                        "properties": {
                            "key": {"type": "string"},
                            "cluster": {"type": "string"},
                            "ws_host": {"type": "string"},
                            "ws_port": {"type": "integer"},
                            "tls": {"type": "boolean"},
                            # where this daemon broadcasts, in its mode (CONTRACT §4)
                            "channels": {
                                "type": "object",
                                "required": ["admin", "provider"],
                                "properties": {
                                    "admin": {"type": "string"},
                                    "provider": {"type": "string"},
                                },
                            },
                            "encrypted": {"type": "boolean"},
                            "personal_data": {"type": "boolean"},
                        },
                    },
                    400,
                    503,
                ),
            }
        },
        "/api/admin/settings/pusher": {
            "get": {
                "summary": "Pusher settings, secret masked",
                "responses": _ok(200, _ref("PusherSettings"), 403, 503),
            },
            "put": {
                "summary": "Change the Pusher settings",
                "requestBody": {"required": True, **_json(_ref("PusherChange"))},
                "responses": _ok(200, _ref("PusherSettings"), 400, 403, 413, 415, 422, 503),
            },
        },
        "/api/admin/settings/pusher/test": {
            "post": {
                "summary": "Test the connection to the stored Pusher server",
                "responses": _ok(
                    200,
                    {
                        "type": "object",
                        "required": ["ok"],
                        "properties": {"ok": {"type": "boolean"}},
                    },
                    403,
                    503,
                ),
            }
        },
        "/healthz": {
            "get": {
                "summary": "Liveness",
                "responses": {
                    "200": {
                        "description": "ok",
                        **_json({"type": "object", "properties": {"status": {"type": "string"}}}),
                    }
                },
            }
        },
        "/readyz": {
            "get": {
                "summary": "Readiness: database writable, relay not paused",
                "responses": {
                    "200": {"description": "ready", **_json({"type": "object"})},
                    "503": {"description": "not ready", **_json({"type": "object"})},
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "responses": {
                    "200": {
                        "description": "ok",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "responses": {"200": {"description": "ok", **_json({"type": "object"})}},
            }
        },
        "/pusher/webhooks": {
            "post": {
                "summary": "Pusher's channel webhooks (X-Pusher-Key, X-Pusher-Signature): "
                "channel_occupied / channel_vacated of provider channels",
                "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}},
                "responses": {
                    "200": {"description": "ok", **_json({"type": "object"})},
                    **{
                        str(code): {"description": "error", **_json(_ref("Error"))}
                        for code in (400, 401, 413, 422, 503)
                    },
                },
            }
        },
    }


def document(settings: Settings) -> Schema:
    paths = {**_paths(settings), **openapi_console.paths()}
    for path, operations in paths.items():
        if path in PUBLIC or path in openapi_console.PUBLIC_PATHS:
            continue
        for operation in operations.values():
            operation["security"] = [{"bearer": []}]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "leadrelay",
            "version": __version__,
            "description": 'Every error is {"error": {"code", "message"}} with a 4xx status.',
        },
        "paths": paths,
        "components": {
            "schemas": _schemas(settings),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
