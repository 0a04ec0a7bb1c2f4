"""The OpenAPI 3.1 document describing every route of the API."""

from __future__ import annotations

from typing import Any

from leadrelay import __version__
from leadrelay.config import Settings

Schema = dict[str, Any]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: Schema) -> Schema:
    return {"content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Schema]:
    return {
        str(status): {"description": "error", **_json(_ref("Error"))}
        for status in sorted({401, *statuses})
    }


def _ok(status: int, schema: Schema, *errors: int) -> dict[str, Schema]:
    return {str(status): {"description": "ok", **_json(schema)}, **_errors(*errors)}


def _id_param(name: str = "lead_id") -> Schema:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
    }


def _query(name: str, schema: Schema) -> Schema:
    return {"name": name, "in": "query", "required": False, "schema": schema}


def document(settings: Settings) -> Schema:
    text = {"type": ["string", "null"]}
    lead: Schema = {
        "type": "object",
        "required": ["id", "name", "status", "created_at", "updated_at"],
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "string"},
            "email": text,
            "phone": text,
            "status": {"type": "string", "enum": list(settings.statuses)},
            "provider_id": {"type": ["integer", "null"]},
            "source": text,
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
        },
    }
    new_lead: Schema = {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": r"\S"},
            "email": {"type": ["string", "null"], "format": "email", "maxLength": 254},
            "phone": {"type": ["string", "null"], "maxLength": 50},
            "provider_id": {"type": ["integer", "null"], "minimum": 1},
            "source": {"type": ["string", "null"], "maxLength": 200},
            "notes": {"type": ["string", "null"], "maxLength": 5000},
            "external_id": {"type": ["string", "null"], "maxLength": 200},
        },
    }
    status = {"type": "string", "enum": list(settings.statuses)}
    event: Schema = {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "event_id": {"type": "string", "format": "uuid"},
            "event": {"type": "string", "enum": ["lead.assigned", "lead.status.updated"]},
            "channels": {"type": "array", "items": {"type": "string"}},
            "lead_id": {"type": "integer"},
            "seq": {"type": "integer"},
            "data": {"type": "object"},
        },
    }
    events_page = {
        "type": "object",
        "properties": {
            "events": {"type": "array", "items": _ref("Event")},
            "next_after": {"type": "integer"},
        },
    }
    leads_page = {
        "type": "object",
        "properties": {
            "leads": {"type": "array", "items": _ref("Lead")},
            "next_after": {"type": ["integer", "null"]},
        },
    }
    list_params = [
        _query("status", status),
        _query("after", {"type": "integer", "minimum": 0}),
        _query("limit", {"type": "integer", "minimum": 1, "maximum": 500}),
    ]
    event_params = [
        _query("after", {"type": "integer", "minimum": 0}),
        _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}),
        _query("lead_id", {"type": "integer", "minimum": 1}),
    ]
    pusher: Schema = {
        "type": "object",
        "properties": {
            "app_id": {"type": "string", "pattern": "^[0-9]+$"},
            "key": {"type": "string"},
            "secret": {"type": "string"},
            "cluster": {"type": "string"},
            "host": {"type": ["string", "null"]},
            "port": {"type": ["integer", "null"], "minimum": 1, "maximum": 65535},
            "scheme": {"type": "string", "enum": ["http", "https"]},
            "enabled": {"type": "boolean"},
        },
    }
    change_admin = {
        "type": "object",
        "minProperties": 1,
        "additionalProperties": False,
        "properties": {"status": status, "provider_id": {"type": ["integer", "null"]}},
    }
    change_provider = {
        "type": "object",
        "required": ["status"],
        "additionalProperties": False,
        "properties": {"status": status},
    }
    plain = {"type": "object"}
    paths: Schema = {
        "/api/leads": {
            "post": {
                "summary": "Create a lead (admin token or Standard Webhooks signature)",
                "parameters": [
                    {"name": "Idempotency-Key", "in": "header", "schema": {"type": "string"}}
                ],
                "requestBody": {"required": True, **_json(_ref("NewLead"))},
                "responses": {
                    **_ok(201, _ref("Lead"), 400, 403, 413, 415, 422, 429, 503),
                    "200": {"description": "an idempotent repeat", **_json(_ref("Lead"))},
                },
            }
        },
        "/api/admin/leads": {
            "get": {
                "summary": "List leads",
                "parameters": [*list_params, _query("provider_id", {"type": "integer"})],
                "responses": _ok(200, leads_page, 403, 422),
            }
        },
        "/api/admin/leads/{lead_id}": {
            "get": {
                "summary": "One lead",
                "parameters": [_id_param()],
                "responses": _ok(200, _ref("Lead"), 403, 404, 422),
            },
            "patch": {
                "summary": "Change a lead's status or provider",
                "parameters": [_id_param()],
                "requestBody": {"required": True, **_json(change_admin)},
                "responses": _ok(200, _ref("Lead"), 400, 403, 404, 413, 415, 422),
            },
        },
        "/api/admin/events": {
            "get": {
                "summary": "Events after a cursor, as broadcast",
                "parameters": event_params,
                "responses": _ok(200, events_page, 403, 404, 422),
            }
        },
        "/api/provider/leads": {
            "get": {
                "summary": "The provider's own leads",
                "parameters": list_params,
                "responses": _ok(200, leads_page, 403, 422),
            }
        },
        "/api/provider/leads/{lead_id}": {
            "get": {
                "summary": "One of the provider's leads",
                "parameters": [_id_param()],
                "responses": _ok(200, _ref("Lead"), 403, 404, 422),
            },
            "patch": {
                "summary": "Change the status of one of the provider's leads",
                "parameters": [_id_param()],
                "requestBody": {"required": True, **_json(change_provider)},
                "responses": _ok(200, _ref("Lead"), 400, 403, 404, 413, 415, 422),
            },
        },
        "/api/provider/events": {
            "get": {
                "summary": "Events of the provider's leads after a cursor",
                "parameters": event_params,
                "responses": _ok(200, events_page, 403, 404, 422),
            }
        },
        "/broadcasting/auth": {
            "post": {
                "summary": "Pusher private-channel auth (pusher-js / Laravel Echo)",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/x-www-form-urlencoded": {
                            "schema": {
                                "type": "object",
                                "required": ["socket_id", "channel_name"],
                                "properties": {
                                    "socket_id": {"type": "string"},
                                    "channel_name": {"type": "string"},
                                },
                            }
                        }
                    },
                },
                "responses": _ok(
                    200, {"type": "object", "properties": {"auth": {"type": "string"}}}, 400, 403
                ),
            }
        },
        "/api/admin/settings/pusher": {
            "get": {
                "summary": "Pusher settings, secret masked",
                "responses": _ok(200, pusher, 403),
            },
            "put": {
                "summary": "Change the Pusher settings",
                "requestBody": {"required": True, **_json(pusher)},
                "responses": _ok(200, pusher, 400, 403, 413, 415, 422),
            },
        },
        "/api/admin/settings/pusher/test": {
            "post": {"summary": "Test the connection", "responses": _ok(200, plain, 403)}
        },
        "/healthz": {"get": {"summary": "Liveness", "responses": {"200": {"description": "ok"}}}},
        "/readyz": {
            "get": {
                "summary": "Readiness: database writable, relay not paused",
                "responses": {"200": {"description": "ready"}, "503": {"description": "not"}},
            }
        },
        "/metrics": {
            "get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "ok"}}}
        },
        "/openapi.json": {
            "get": {"summary": "This document", "responses": {"200": {"description": "ok"}}}
        },
    }
    error = {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            }
        },
    }
    public = {"/healthz", "/readyz", "/metrics", "/openapi.json"}
    for path, operations in paths.items():
        if path in public:
            continue
        for operation in operations.values():
            operation["security"] = [{"bearer": []}]
    return {
        "openapi": "3.1.0",
        "info": {"title": "leadrelay", "version": __version__},
        "paths": paths,
        "components": {
            "schemas": {
                "Lead": lead,
                "NewLead": new_lead,
                "Event": event,
                "Error": error,
            },
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
