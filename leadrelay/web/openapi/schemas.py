"""The document's component schemas: leads, events, changes, settings, errors."""

from __future__ import annotations

from leadrelay.config import Settings
from leadrelay.crm_status import RFC3339
from leadrelay.leads import NEW_LEAD_FIELDS
from leadrelay.store.base import MAX_ID
from leadrelay.web.openapi.parts import (
    EMAIL,
    NO_NUL,
    NO_SPACE,
    NOT_BLANK,
    SOCKET_ID,
    Schema,
    desc,
    nullable,
    ref,
)


def components(settings: Settings) -> dict[str, Schema]:
    text = {"type": ["string", "null"]}
    status = {"type": "string", "enum": list(settings.statuses)}
    new_lead: dict[str, Schema] = {}
    for name, (max_len, required) in NEW_LEAD_FIELDS.items():
        field: Schema = {"type": "string", "maxLength": max_len, "pattern": NO_NUL}
        new_lead[name] = field if required else nullable(field)
    new_lead["name"] |= {"minLength": 1, "pattern": NOT_BLANK}
    new_lead["email"]["pattern"] = EMAIL
    new_lead["provider_id"] = {
        "type": ["integer", "null"],
        "minimum": 1,
        "maximum": MAX_ID,
        **desc("an existing provider's id (422 otherwise)"),
    }
    pusher_change: dict[str, Schema] = {
        "app_id": {"type": "string", "pattern": "^[0-9]*$"},
        "key": {"type": "string", "maxLength": 200, "pattern": NO_SPACE},
        "secret": {"type": "string", "maxLength": 200, "pattern": NO_SPACE},
        "cluster": {"type": "string", "pattern": "^[a-z0-9-]{1,40}$"},
        "host": {
            "type": "string",
            "pattern": r"^$|^[A-Za-z0-9.-]{1,253}$|^\[[0-9a-fA-F:]+\]$",
            **desc("a self-hosted server; empty for Pusher's cluster host"),
        },
        "port": {"type": "integer", "minimum": 1, "maximum": 65535},
        "scheme": {"type": "string", "enum": ["http", "https"]},
        "enabled": {"type": "boolean", **desc("true needs app_id, key and secret set (422)")},
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
                "notes": {**text, **desc("admins only")},
                "external_id": {**text, **desc("admins only")},
                "created_at": {"type": "string", "format": "date-time"},
                "updated_at": {"type": "string", "format": "date-time"},
                "erased_at": {
                    "type": ["string", "null"],
                    "format": "date-time",
                    **desc("admins only: when the personal fields were erased (name is then '')"),
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
        "StatusChange": status_change(status, new_lead["provider_id"]),
        "StatusResult": {
            "type": "object",
            "required": ["lead", "applied", "reason"],
            "properties": {
                "lead": ref("Lead"),
                "applied": {"type": "boolean", **desc("true exactly when an event fired")},
                "reason": {
                    "type": ["string", "null"],
                    "enum": ["stale", "unchanged", None],
                    **desc(
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
                "secret": {"type": "string", **desc("masked: at most its last 2 characters")},
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
            "properties": {name: nullable(s) for name, s in pusher_change.items()},
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


def status_change(status: Schema, provider_id: Schema) -> Schema:
    max_len = NEW_LEAD_FIELDS["external_id"][0]
    external_id = {"type": "string", "minLength": 1, "maxLength": max_len}
    lead_id = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
    return {
        "type": "object",
        "required": ["status"],
        "properties": {
            "external_id": {**nullable(external_id), **desc("the CRM's id for the lead")},
            "id": {**nullable(lead_id), **desc("leadrelay's id for the lead")},
            "status": status,
            "provider_id": {**provider_id, **desc("reassign in the same change; null: none")},
            "changed_at": {
                "type": ["string", "null"],
                "format": "date-time",
                "pattern": RFC3339,
                **desc("when the change happened in the CRM (RFC 3339, with an offset)"),
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
