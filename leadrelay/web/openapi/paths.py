"""The document's paths for the API of CONTRACT §2 and the status webhook."""

from __future__ import annotations

from leadrelay.config import Settings
from leadrelay.search import MAX_QUERY
from leadrelay.store.base import MAX_ID
from leadrelay.web.openapi.parts import (
    NO_NUL,
    Schema,
    desc,
    header,
    id_param,
    json_body,
    ok,
    query,
    ref,
)


def api_paths(settings: Settings) -> Schema:
    status = {"type": "string", "enum": list(settings.statuses)}
    cursor = {"type": "integer", "minimum": 0, "maximum": MAX_ID}
    socket_id = header(
        "X-Socket-ID",
        {"type": "string"},
        "the sender's Pusher socket id, excluded from the broadcast; ignored when malformed",
    )
    list_params = [
        query("status", status),
        query("after", cursor, "the last lead id seen (the list goes on past it, in its order)"),
        query("limit", {"type": "integer", "minimum": 1, "maximum": 500}),
        query("order", {"type": "string", "enum": ["oldest", "newest"]}, "default: oldest"),
        query(
            "q",
            {"type": "string", "maxLength": MAX_QUERY, "pattern": NO_NUL},
            "search: leads with a name word, email, phone (its digits) or external_id that "
            "starts with this, folded (no case, no accents)",
        ),
    ]
    event_params = [
        query(
            "after",
            {"anyOf": [cursor, {"type": "string", "format": "uuid"}]},
            "the last event's id number, or its event_id (404 when unknown)",
        ),
        query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}),
        query("lead_id", cursor, "only this lead's events; 0 means all"),
    ]
    leads_page = {
        "type": "object",
        "required": ["leads", "next_after"],
        "properties": {
            "leads": {"type": "array", "items": ref("Lead")},
            "next_after": {"type": ["integer", "null"]},
            "partial": {
                "type": "boolean",
                **desc("with q: leads not indexed yet may be missing (a burst of new leads)"),
            },
        },
    }
    events_page = {
        "type": "object",
        "required": ["events", "next_after"],
        "properties": {
            "events": {"type": "array", "items": ref("Event")},
            "next_after": {"type": "integer"},
        },
    }
    body_errors = (400, 403, 404, 413, 415, 422, 503)
    create_headers = [
        header(
            "Idempotency-Key",
            {"type": "string", "minLength": 1, "maxLength": 255},
            "a repeat returns the first lead (200), even with a different body",
        ),
        header("webhook-id", {"type": "string"}, "Standard Webhooks, instead of a token"),
        header("webhook-timestamp", {"type": "string"}, "Standard Webhooks"),
        header("webhook-signature", {"type": "string"}, "Standard Webhooks"),
        socket_id,
    ]
    return {
        "/api/leads": {
            "post": {
                "summary": "Create a lead (admin token or Standard Webhooks signature)",
                "parameters": create_headers,
                "requestBody": {"required": True, **json_body(ref("NewLead"))},
                "responses": {
                    **ok(201, ref("Lead"), 400, 403, 413, 415, 422, 429, 503),
                    "200": {"description": "an idempotent repeat", **json_body(ref("Lead"))},
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
                    header(
                        "Idempotency-Key",
                        {"type": "string", "minLength": 1, "maxLength": 255},
                        "a repeat answers the first applied and reason again, firing nothing",
                    ),
                    *create_headers[1:],
                ],
                "requestBody": {"required": True, **json_body(ref("StatusChange"))},
                "responses": ok(200, ref("StatusResult"), *body_errors, 429),
            }
        },
        "/api/admin/leads": {
            "get": {
                "summary": "List leads",
                "parameters": [
                    *list_params,
                    query("provider_id", cursor, "0 means all"),
                    query(
                        "external_id",
                        {"type": "string", "pattern": NO_NUL},
                        "the CRM's id for the lead",
                    ),
                ],
                "responses": ok(200, leads_page, 403, 422, 503),
            }
        },
        "/api/admin/leads/{lead_id}": {
            "get": {
                "summary": "One lead",
                "parameters": [id_param()],
                "responses": ok(200, ref("Lead"), 403, 404, 422, 503),
            },
            "patch": {
                "summary": "Change a lead's status or provider",
                "parameters": [id_param(), socket_id],
                "requestBody": {"required": True, **json_body(ref("AdminChange"))},
                "responses": ok(200, ref("Lead"), *body_errors),
            },
            "delete": {
                "summary": "Erase a lead's personal fields (the row, status and events stay)",
                "parameters": [id_param()],
                "responses": ok(200, ref("Lead"), 403, 404, 422, 503),
            },
        },
        "/api/admin/events": {
            "get": {
                "summary": "Events after a cursor, as broadcast",
                "parameters": event_params,
                "responses": ok(200, events_page, 403, 404, 422, 503),
            }
        },
        "/api/provider/leads": {
            "get": {
                "summary": "The provider's own leads",
                "parameters": list_params,
                "responses": ok(200, leads_page, 403, 422, 503),
            }
        },
        "/api/provider/leads/{lead_id}": {
            "get": {
                "summary": "One of the provider's leads",
                "parameters": [id_param()],
                "responses": ok(200, ref("Lead"), 403, 404, 422, 503),
            },
            "patch": {
                "summary": "Change the status of one of the provider's leads",
                "parameters": [id_param(), socket_id],
                "requestBody": {"required": True, **json_body(ref("ProviderChange"))},
                "responses": ok(200, ref("Lead"), *body_errors),
            },
        },
        "/api/provider/events": {
            "get": {
                "summary": "Events of the provider's leads after a cursor",
                "parameters": event_params,
                "responses": ok(200, events_page, 403, 404, 422, 503),
            }
        },
        "/broadcasting/auth": {
            "post": {
                "summary": "Pusher private-channel auth (pusher-js / Laravel Echo)",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/x-www-form-urlencoded": {"schema": ref("ChannelAuth")},
                        "application/json": {"schema": ref("ChannelAuth")},
                    },
                },
                "responses": ok(
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
                "responses": ok(
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
                "responses": ok(200, ref("PusherSettings"), 403, 503),
            },
            "put": {
                "summary": "Change the Pusher settings",
                "requestBody": {"required": True, **json_body(ref("PusherChange"))},
                "responses": ok(200, ref("PusherSettings"), 400, 403, 413, 415, 422, 503),
            },
        },
        "/api/admin/settings/pusher/test": {
            "post": {
                "summary": "Test the connection to the stored Pusher server",
                "responses": ok(
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
                        **json_body(
                            {"type": "object", "properties": {"status": {"type": "string"}}}
                        ),
                    }
                },
            }
        },
        "/readyz": {
            "get": {
                "summary": "Readiness, without a write: status and problem codes; the details "
                "with an admin token",
                "responses": {
                    "200": {"description": "ready", **json_body({"type": "object"})},
                    "503": {"description": "not ready", **json_body({"type": "object"})},
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
                "responses": {"200": {"description": "ok", **json_body({"type": "object"})}},
            }
        },
        "/pusher/webhooks": {
            "post": {
                "summary": "Pusher's channel webhooks (X-Pusher-Key, X-Pusher-Signature): "
                "channel_occupied / channel_vacated of provider channels",
                "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}},
                "responses": {
                    "200": {"description": "ok", **json_body({"type": "object"})},
                    **{
                        str(code): {"description": "error", **json_body(ref("Error"))}
                        for code in (400, 401, 413, 422, 503)
                    },
                },
            }
        },
    }
