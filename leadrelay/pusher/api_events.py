"""The bodies of Pusher's trigger and batch trigger, checked as Pusher checks them.

    POST /apps/{id}/events         {"name", "data", "channels": [...] | "channel",
                                    "socket_id"?, "info"?}
    POST /apps/{id}/batch_events   {"batch": [{"channel", "name", "data", "socket_id"?,
                                               "info"?}, ...]}

Each becomes `PusherApiEvent`s: the channels, the name, the data string exactly as sent
(it may be an SDK's `private-encrypted-` ciphertext), the socket to leave out, the `info`
asked for. Pusher's limits: at most 100 channels a trigger, 10 events a batch, 10 KB of data
an event (bytes of the data string in UTF-8), channel names of at most 164 characters of
`A-Za-z0-9_-=@,.;`. Anything else is a `PusherApiRefused`: 413 for data over the limit,
400 for the rest, worded the way Pusher words its own 400s.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from leadrelay.errors import PusherApiRefused

MAX_CHANNELS = 100
MAX_BATCH = 10
MAX_DATA_BYTES = 10240
MAX_EVENT_NAME = 200
CHANNEL = re.compile(r"[A-Za-z0-9_\-=@,.;]{1,164}")
SOCKET_ID = re.compile(r"[0-9]{1,30}\.[0-9]{1,30}")
INFO = re.compile(r"[A-Za-z0-9_,]{0,200}")


@dataclass(frozen=True, slots=True)
class PusherApiEvent:
    """One event as an app's Pusher SDK triggered it, checked and normalised: channels in
    the order sent, each once."""

    channels: tuple[str, ...]
    name: str
    data: str
    socket_id: str | None = None
    info: str | None = None

    def per_channel(self) -> Iterator[PusherApiEvent]:
        """The same event once per channel (how a batch item looks)."""
        for channel in self.channels:
            yield PusherApiEvent((channel,), self.name, self.data, self.socket_id, self.info)


def parse_trigger(body: Any) -> PusherApiEvent:
    """The body of POST /apps/{id}/events (already decoded from JSON)."""
    if not isinstance(body, dict):
        raise PusherApiRefused(400, "Expected the request body to be a JSON object")
    if "channels" in body and "channel" in body:
        raise PusherApiRefused(400, "Expected either a channels or a channel parameter, not both")
    if "channels" in body:
        channels = body["channels"]
        if not isinstance(channels, list) or not channels:
            raise PusherApiRefused(400, "Expected channels parameter to be a non-empty array")
        if len(channels) > MAX_CHANNELS:
            raise PusherApiRefused(
                400, f"Expected at most {MAX_CHANNELS} channels, got {len(channels)}"
            )
    elif "channel" in body:
        channels = [body["channel"]]
    else:
        raise PusherApiRefused(400, "Expected a channels or a channel parameter")
    return _event(body, tuple(dict.fromkeys(_channel(name) for name in channels)))


def parse_batch(body: Any) -> list[PusherApiEvent]:
    """The body of POST /apps/{id}/batch_events: each item one event on one channel."""
    batch = body.get("batch") if isinstance(body, dict) else None
    if not isinstance(batch, list):
        raise PusherApiRefused(400, "Expected request parameter batch to be an array")
    if not 1 <= len(batch) <= MAX_BATCH:
        raise PusherApiRefused(
            400, f"Expected 1 to {MAX_BATCH} events in a batch, got {len(batch)}"
        )
    events = []
    for item in batch:
        if not isinstance(item, dict):
            raise PusherApiRefused(400, "Expected every batch item to be a JSON object")
        if "channel" not in item:
            raise PusherApiRefused(400, "Expected channel parameter in every batch item")
        events.append(_event(item, (_channel(item["channel"]),)))
    return events


def _event(body: dict[str, Any], channels: tuple[str, ...]) -> PusherApiEvent:
    name, data = body.get("name"), body.get("data")
    if not isinstance(name, str) or not name:
        raise PusherApiRefused(400, "Expected name parameter to be a string")
    if len(name) > MAX_EVENT_NAME:
        raise PusherApiRefused(400, f"Event name too long (at most {MAX_EVENT_NAME} characters)")
    if not isinstance(data, str):
        raise PusherApiRefused(400, "Expected data parameter to be a string")
    if len(data.encode()) > MAX_DATA_BYTES:
        raise PusherApiRefused(
            413,
            f"The data content of this event exceeds the allowed maximum ({MAX_DATA_BYTES} "
            "bytes). See https://pusher.com/docs/channels/server_api/http-api for more info",
        )
    socket_id = _optional(body, "socket_id", SOCKET_ID, "like 1234.5678")
    info = _optional(body, "info", INFO, "a comma-separated list of attributes")
    return PusherApiEvent(channels, name, data, socket_id, info)


def _channel(name: Any) -> str:
    if not isinstance(name, str):
        raise PusherApiRefused(400, "Expected every channel name to be a string")
    if not CHANNEL.fullmatch(name):
        raise PusherApiRefused(
            400,
            f"Invalid channel name {name[:200]!r}: at most 164 characters of "
            "A-Z, a-z, 0-9 and _-=@,.;",
        )
    return name


def _optional(body: dict[str, Any], key: str, pattern: re.Pattern[str], shape: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise PusherApiRefused(400, f"Invalid {key}: expected {shape}")
    return value or None
