"""The document's paths for Pusher's HTTP API (setting `pusher_api`): Pusher's own shapes."""

from __future__ import annotations

from leadrelay.pusher.api_events import MAX_BATCH, MAX_CHANNELS, MAX_DATA_BYTES
from leadrelay.web.openapi.parts import Schema, desc, json_body, query, ref

CHANNEL = {"type": "string", "pattern": r"^[A-Za-z0-9_\-=@,.;]{1,164}$"}
# what the SDKs sign: verified with the stored Pusher app's key and secret
SIGNED = [
    query("auth_key", {"type": "string"}),
    query("auth_timestamp", {"type": "string"}, "Unix seconds; within 600 s of the daemon's"),
    query("auth_version", {"const": "1.0"}),
    query("body_md5", {"type": "string"}, "hex MD5 of the raw body"),
    query("auth_signature", {"type": "string"}, "hex HMAC-SHA256, as Pusher signs"),
]
APP_ID = {"name": "app_id", "in": "path", "required": True, "schema": {"type": "string"}}
NAME = {"name": "channel", "in": "path", "required": True, "schema": CHANNEL}
DATA = {"type": "string", "description": f"at most {MAX_DATA_BYTES} bytes in UTF-8; kept as is"}
EVENT = {
    "name": {"type": "string", "minLength": 1, "maxLength": 200},
    "data": DATA,
    "socket_id": {"type": "string", "pattern": r"^[0-9]+\.[0-9]+$"},
    "info": {"type": "string", "description": "accepted, answered {}: see docs/pusher-api.md"},
}
PLAIN = {"content": {"text/plain": {"schema": {"type": "string"}}}}
REFUSALS = {
    "400": {"description": "malformed, too many channels or events, bad channel name", **PLAIN},
    "401": {"description": "bad signature, unknown key, timestamp off by over 600 s", **PLAIN},
    "404": {"description": "another app id than the stored Pusher app's", **PLAIN},
    "413": {"description": f"data over {MAX_DATA_BYTES} bytes", **PLAIN},
    # until phase 2 of issue 26 stores them, every valid trigger: pusher_api_not_ready
    "503": {"description": "not stored (send it again later)", **json_body(ref("Error"))},
    "508": {
        "description": "sent by a leadrelay: its Pusher settings name a leadrelay",
        **json_body(ref("Error")),
    },
}


def pusher_api_paths() -> Schema:
    def accepted(summary: str, body: Schema) -> Schema:
        return {
            "summary": summary,
            **desc("Refusals are plain text in Pusher's words, as Pusher's SDKs expect."),
            "parameters": [APP_ID, *SIGNED],
            "requestBody": {"required": True, **json_body(body)},
            "responses": {"200": {"description": "stored, {}", **json_body({"type": "object"})}}
            | REFUSALS,
        }

    def read(summary: str, *params: Schema) -> Schema:
        return {
            "get": {
                "summary": summary + " (the upstream Pusher's answer, passed through)",
                "parameters": [APP_ID, *params, *SIGNED],
                "responses": {"200": {"description": "the upstream's answer"}, **REFUSALS},
            }
        }

    single = {"type": "object", "required": ["name", "data"], "properties": EVENT}
    trigger = {
        **single,
        "properties": {
            **EVENT,
            "channels": {"type": "array", "items": CHANNEL, "maxItems": MAX_CHANNELS},
            "channel": CHANNEL,
        },
    }
    item = {**single, "required": ["channel", "name", "data"]}
    item["properties"] = {**EVENT, "channel": CHANNEL}
    batch = {"type": "array", "items": item, "minItems": 1, "maxItems": MAX_BATCH}
    info = query("info", {"type": "string"})
    return {
        "/apps/{app_id}/events": {"post": accepted("Trigger an event (Pusher's API)", trigger)},
        "/apps/{app_id}/batch_events": {
            "post": accepted(
                "Trigger a batch of events (Pusher's API)",
                {"type": "object", "required": ["batch"], "properties": {"batch": batch}},
            )
        },
        "/apps/{app_id}/channels": read(
            "Occupied channels", query("filter_by_prefix", {"type": "string"}), info
        ),
        "/apps/{app_id}/channels/{channel}": read("One channel", NAME, info),
        "/apps/{app_id}/channels/{channel}/users": read("A presence channel's users", NAME),
    }
