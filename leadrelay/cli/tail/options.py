"""What `leadrelay tail` was asked for: `--since`, `--event`, `--pusher`, filters, channels."""

from __future__ import annotations

import contextlib
import re
import uuid
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from leadrelay import events
from leadrelay.cli.tail.history import Cursor, TailError
from leadrelay.pusher.protocol import ws_url

SINCE_HELP: Final = (
    "--since takes a duration like 30s, 10m, 2h, 1d or 1h30m, or an event's id or event_id"
)
DURATION = re.compile(r"(?:\d+(?:\.\d+)?[smhd])+")
DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Since:
    """Where `--since` starts: `seconds` back from now, or after the event `cursor`."""

    seconds: float | None = None
    cursor: Cursor | None = None
    text: str = ""


def parse_since(text: str) -> Since:
    raw = text.strip().lower()
    if raw.isascii() and raw.isdigit():
        return Since(cursor=int(raw), text=f"event {raw}" if int(raw) else "the start")
    with contextlib.suppress(ValueError):
        return Since(cursor=str(uuid.UUID(raw)), text=f"event {uuid.UUID(raw)}")
    if DURATION.fullmatch(raw):
        seconds = sum(float(n) * UNIT_SECONDS[u] for n, u in DURATION_PART.findall(raw))
        return Since(seconds=seconds, text=f"{raw} ago")
    raise TailError(f"{SINCE_HELP}, not {text!r}")


def parse_channels(names: list[str]) -> tuple[str, ...]:
    """--channel NAME: a channel name as Pusher takes it; not a presence channel, which
    needs a member of its own to subscribe."""
    from leadrelay.pusher.api_events import CHANNEL

    for name in names:
        if not CHANNEL.fullmatch(name):
            raise TailError(
                f"--channel takes a Pusher channel name (1–164 characters of A-Z, a-z, 0-9 "
                f"and _-=@,.;), not {name!r}"
            )
        if name.startswith("presence-"):
            raise TailError(
                f"tail cannot follow the presence channel {name!r}: it would join it as a member"
            )
    return tuple(names)


def parse_event_names(names: list[str]) -> frozenset[str]:
    """`lead.assigned` or `assigned`: what the human output shows can be typed back."""
    chosen = set()
    for name in names:
        full = name if name in events.EVENT_TYPES else f"lead.{name}"
        if full not in events.EVENT_TYPES:
            known = ", ".join(events.EVENT_TYPES)
            raise TailError(f"unknown event {name!r}: use {known}")
        chosen.add(full)
    return frozenset(chosen)


@dataclass(frozen=True)
class PusherTarget:
    url: str
    key: str


def parse_pusher_url(text: str) -> PusherTarget:
    parts = urlsplit(text)
    key = parts.path.removeprefix("/app/").strip("/")
    tls = parts.scheme in ("wss", "https")
    if parts.scheme not in ("ws", "wss", "http", "https") or not parts.hostname or not key:
        raise TailError(
            "--pusher takes the websocket address, e.g. wss://ws-eu.pusher.com/app/KEY "
            f"or ws://127.0.0.1:6001/app/KEY, not {text!r}"
        )
    port = parts.port or (443 if tls else 80)
    return PusherTarget(ws_url(key, host=parts.hostname, port=port, tls=tls), key)


@dataclass(frozen=True)
class Filters:
    events: frozenset[str] = frozenset()
    lead_id: int | None = None

    def match(self, event: str, data: Any) -> bool:
        if self.events and event not in self.events:
            return False
        return self.lead_id is None or lead_id_of(data) == self.lead_id


@dataclass(frozen=True)
class TailOptions:
    providers: tuple[int, ...] = ()
    # --channel: any channels, as named (an app's, through leadrelay's Pusher API)
    app_channels: tuple[str, ...] = ()
    filters: Filters = Filters()
    since: Since | None = None
    as_json: bool = False
    server: str | None = None
    token: str | None = None
    pusher_url: str | None = None
    activity_timeout: float | None = None

    @property
    def channels(self) -> list[str]:
        return self.channels_in(events.Broadcast())

    def channels_in(self, mode: events.Broadcast) -> list[str]:
        """The channels to follow, as the daemon's broadcast mode names them (--channel's
        as they are named)."""
        if self.app_channels:
            return list(dict.fromkeys(self.app_channels))
        if not self.providers:
            return [mode.admin]
        return [mode.provider(p) for p in dict.fromkeys(self.providers)]


def lead_id_of(data: Any) -> int | None:
    lead = data.get("lead") if isinstance(data, dict) else None
    value = lead.get("id") if isinstance(lead, dict) else None
    return value if isinstance(value, int) else None
