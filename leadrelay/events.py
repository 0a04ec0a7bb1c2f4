"""The seed's realtime contract: which event, on which channels, with which data."""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from leadrelay.config import Settings

LEAD_ASSIGNED = "lead.assigned"
LEAD_STATUS_UPDATED = "lead.status.updated"
EVENT_TYPES = (LEAD_ASSIGNED, LEAD_STATUS_UPDATED)
ADMIN_CHANNEL = "admin"
PROVIDER_PREFIX = "private-provider."
ENCRYPTED_PREFIX = "private-encrypted-"
PERSONAL_FIELDS = ("name", "email", "phone")
# Pusher refuses event data over 10 KB; stay a little under so nothing is ever stuck.
MAX_DATA_BYTES = 10_000
# encrypted, the data grows: 16 bytes of MAC, then base64 (4/3) and the nonce's JSON around it
MAX_ENCRYPTED_DATA_BYTES = 7_400
LEAD_FIELDS = (
    "id",
    "name",
    "email",
    "phone",
    "status",
    "provider_id",
    "source",
    "created_at",
    "updated_at",
)
_SHORTENABLE = ("source", "name", "email", "phone")


def now_iso() -> str:
    """The current time as the contract writes times: RFC 3339, UTC, milliseconds."""
    return iso_time(time.time())


def iso_time(seconds: float) -> str:
    """A Unix time as the contract writes times: `2026-11-25T01:02:03.456Z`."""
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def provider_channel(provider_id: int) -> str:
    return f"{PROVIDER_PREFIX}{provider_id}"


def provider_of_channel(channel: str) -> int | None:
    """The provider whose feed `channel` is, in any mode (`private-provider.7`,
    `private-encrypted-provider.7`), else None."""
    for prefix in (PROVIDER_PREFIX, ENCRYPTED_PREFIX + "provider."):
        number = channel.removeprefix(prefix)
        if number != channel and number.isascii() and number.isdigit() and len(number) < 19:
            return int(number)
    return None


def channels_for(provider_id: int | None) -> list[str]:
    """`admin` always; the provider's private channel when the lead has a provider.

    These are the seed's names, and what the outbox stores; `Broadcast` maps them to the
    channels of the mode the operator chose when the event goes out or is shown."""
    return (
        [ADMIN_CHANNEL] if provider_id is None else [ADMIN_CHANNEL, provider_channel(provider_id)]
    )


@dataclass(frozen=True)
class Broadcast:
    """Where the events go out and what they carry: the seed's public `admin` and
    `private-provider.{id}` by default, or a private or end-to-end encrypted admin feed,
    with or without the lead's personal data.

    Decided when an event is sent (and when it is shown), not when it is written: a mode
    switched on applies to what waits in the outbox too, so nothing written before
    encryption was turned on still goes out in clear."""

    admin_channel: str = ADMIN_CHANNEL  # "admin" or "private-admin"
    encrypted: bool = False
    personal_data: bool = True

    @classmethod
    def of(cls, settings: Settings) -> Broadcast:
        return cls(
            settings.admin_channel, settings.encrypted_channels, settings.broadcast_personal_data
        )

    @property
    def admin(self) -> str:
        return "private-encrypted-admin" if self.encrypted else self.admin_channel

    def provider(self, provider_id: int) -> str:
        prefix = "private-encrypted-provider." if self.encrypted else PROVIDER_PREFIX
        return f"{prefix}{provider_id}"

    @property
    def provider_template(self) -> str:
        return self.provider(0)[:-1] + "{id}"

    def channel(self, stored: str) -> str:
        """A stored (seed) channel name as this mode names it."""
        if stored == ADMIN_CHANNEL:
            return self.admin
        if stored.startswith(PROVIDER_PREFIX) and self.encrypted:
            return ENCRYPTED_PREFIX + stored.removeprefix("private-")
        return stored

    def channels(self, stored: list[str]) -> list[str]:
        return [self.channel(name) for name in stored]

    @property
    def personal_data_public(self) -> bool:
        """Every lead's name, email and phone on a channel anyone with the app key can read."""
        return self.personal_data and self.admin == ADMIN_CHANNEL

    @property
    def default(self) -> bool:
        return self == Broadcast()

    def data(self, data: dict[str, Any]) -> dict[str, Any]:
        """An event's data as this mode broadcasts it."""
        if self.personal_data or not isinstance(data.get("lead"), dict):
            return data
        lead = {k: v for k, v in data["lead"].items() if k not in PERSONAL_FIELDS}
        return {**data, "lead": lead}

    def payload(self, payload: str) -> str:
        """A stored payload as this mode sends it (the same string in the default mode)."""
        if self.personal_data and not self.encrypted:
            return payload
        data = self.data(orjson.loads(payload))
        if not self.encrypted:  # leaving fields out only shrinks it
            return encode_data(data).decode()
        return fit_to_limit(data, MAX_ENCRYPTED_DATA_BYTES)[1]

    def warning(self) -> str | None:
        """One line for the log and `doctor` when personal data goes out in public."""
        if not self.personal_data_public:
            return None
        return (
            "every lead's name, email and phone is broadcast on the public 'admin' channel, "
            'readable by anyone with the app key: set admin_channel = "private-admin", '
            "encrypted_channels = true or broadcast_personal_data = false"
        )


def lead_view(row: dict[str, Any]) -> dict[str, Any]:
    """LEAD as the contract shows it (notes and external_id stay private)."""
    return {name: row.get(name) for name in LEAD_FIELDS}


@dataclass(slots=True)
class Event:
    event_id: str
    type: str
    lead_id: int
    seq: int
    channels: list[str]
    provider_id: int | None
    data: dict[str, Any]
    payload: str  # the data as broadcast, encoded once

    def row(self, socket_id: str | None) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "lead_id": self.lead_id,
            "seq": self.seq,
            "type": self.type,
            "channels": self.channels,
            "provider_id": self.provider_id,
            "payload": self.payload,
            "socket_id": socket_id,
        }


def event_item(
    row: dict[str, Any], provider_id: int | None, mode: Broadcast | None = None
) -> dict[str, Any]:
    """A stored event as the events API and `tail` show it: on the channels and with the data
    it is broadcast with in `mode` (a provider sees only its own channel)."""
    mode = mode or Broadcast()
    channels = mode.channels(json.loads(row["channels"]))
    if provider_id is not None:
        channels = [mode.provider(provider_id)]
    data = json.loads(row["payload"])
    return {
        "id": row["id"],
        "event_id": row["event_id"],
        "event": row["type"],
        "channels": channels,
        "lead_id": row["lead_id"],
        "seq": row["seq"],
        "data": mode.data(data),
    }


def encode_data(data: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON (what Pusher carries); orjson is a fifth of the json module's time."""
    return orjson.dumps(data)


def _build(
    event_type: str, lead: dict[str, Any], seq: int, occurred_at: str, extra: dict[str, Any]
) -> Event:
    event_id = uuid7()
    data = {
        "event_id": event_id,
        "type": event_type,
        "seq": seq,
        "occurred_at": occurred_at,
        "lead": lead_view(lead),
        **extra,
    }
    provider_id = lead.get("provider_id")
    data, payload = fit_to_limit(data)
    return Event(
        event_id=event_id,
        type=event_type,
        lead_id=int(lead["id"]),
        seq=seq,
        channels=channels_for(provider_id),
        provider_id=provider_id,
        data=data,
        payload=payload,
    )


def uuid7() -> str:
    """A time-ordered UUID (version 7): new ids land at the end of the event_id index."""
    # unique, not secret: the fast generator serves (os.urandom is a system call per id)
    value = (time.time_ns() // 1_000_000) << 80 | random.getrandbits(76)
    value = value & ~(0xF << 76) | 0x7 << 76  # version 7
    value = value & ~(0x3 << 62) | 0x2 << 62  # RFC 4122 variant
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def lead_assigned(lead: dict[str, Any], seq: int, occurred_at: str) -> Event:
    """A lead was created, or an admin gave it to another provider."""
    return _build(LEAD_ASSIGNED, lead, seq, occurred_at, {})


def lead_status_updated(
    lead: dict[str, Any],
    seq: int,
    occurred_at: str,
    *,
    old_status: str,
    changed_by_provider: int | None,
    crm: bool = False,
) -> Event:
    """The status changed; `changed_by_provider` is None when an admin changed it, or a CRM
    (`crm`, by its status webhook)."""
    role = "crm" if crm else "admin" if changed_by_provider is None else "provider"
    changed_by = {"role": role, "provider_id": changed_by_provider}
    extra = {"old_status": old_status, "new_status": lead["status"], "changed_by": changed_by}
    return _build(LEAD_STATUS_UPDATED, lead, seq, occurred_at, extra)


def change_events(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """The event types a change from `before` to `after` fires, in the order they happen.

    A new provider is told of the lead first, then of its status, so a provider never sees a
    status change of a lead it was not given.  No event when nothing the contract covers changed.
    """
    fired = []
    if after.get("provider_id") != before.get("provider_id"):
        fired.append(LEAD_ASSIGNED)
    if after["status"] != before["status"]:
        fired.append(LEAD_STATUS_UPDATED)
    return fired


def fit_to_limit(data: dict[str, Any], limit: int = MAX_DATA_BYTES) -> tuple[dict[str, Any], str]:
    """Shorten the lead's free text in the broadcast (never in the database) to fit `limit`.

    Returns the data and its encoding, so the JSON is encoded once.
    """
    payload = encode_data(data)
    if len(payload) <= limit:
        return data, payload.decode()
    lead = dict(data["lead"])
    for name in _SHORTENABLE:
        value = lead.get(name)
        if not isinstance(value, str) or not value:
            continue
        excess = len(payload) - limit
        keep = max(0, len(value.encode()) - excess - 16)
        shortened = value.encode()[:keep].decode("utf-8", "ignore") + "…"
        lead[name] = shortened
        payload = encode_data({**data, "lead": lead})
        if len(payload) <= limit:
            break
    return {**data, "lead": lead}, payload.decode()
