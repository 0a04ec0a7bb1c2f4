"""The building blocks of the OpenAPI document: shared patterns and small schema makers."""

from __future__ import annotations

from typing import Any

from leadrelay.store.base import MAX_ID

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


UUID = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def json_body(schema: Schema) -> Schema:
    return {"content": {"application/json": {"schema": schema}}}


def error_responses(*statuses: int) -> dict[str, Schema]:
    """An authenticated operation's errors: 401 for a bad token, and 429 for an address past
    its failed token checks (auth_failures_per_minute), besides `statuses`."""
    responses: dict[str, Schema] = {}
    for status in sorted({401, 429, *statuses}):
        responses[str(status)] = {"description": "error", **json_body(ref("Error"))}
    responses["429"]["headers"] = {
        "Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}
    }
    return responses


def ok(status: int, schema: Schema, *errors: int) -> dict[str, Schema]:
    return {str(status): {"description": "ok", **json_body(schema)}, **error_responses(*errors)}


def id_param(name: str = "lead_id") -> Schema:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
    }


def query(name: str, schema: Schema, description: str | None = None) -> Schema:
    # an empty value (`?after=`) means the parameter is absent
    param = {"name": name, "in": "query", "required": False, "allowEmptyValue": True}
    param["schema"] = schema
    if description:
        param["description"] = description
    return param


def header(name: str, schema: Schema, description: str) -> Schema:
    return {"name": name, "in": "header", "required": False, "schema": schema, **desc(description)}


def desc(text: str) -> Schema:
    return {"description": text}


def nullable(schema: Schema) -> Schema:
    return {**schema, "type": [schema["type"], "null"]}


def obj(required: list[str], properties: Schema, *, closed: bool = False) -> Schema:
    schema = {"type": "object", "required": required, "properties": properties}
    return {**schema, "additionalProperties": False} if closed else schema
