"""Where `leadrelay tail` reads stored events: the database, or a daemon's events API.

TailError              tail cannot go on (a LeadrelayError: one line, exit 1)
├── DaemonError        the daemon answered with an error status (`.status`)
└── DaemonUnavailable  no answer, or a 5xx, from the daemon; retried once tail is following
"""

from __future__ import annotations

import json
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, Protocol

from leadrelay import events
from leadrelay.cli.tail.output import parse_time
from leadrelay.errors import LeadrelayError
from leadrelay.store import retention

if TYPE_CHECKING:
    import httpx

    from leadrelay.store.base import Store

Cursor = int | str  # an events row id, or an event_id (UUID) that the source resolves


class TailError(LeadrelayError):
    """Tail cannot go on; the message says why in one line."""


class DaemonError(TailError):
    """The daemon answered with an error status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class DaemonUnavailable(TailError):
    """No answer, or a 5xx, from the daemon: worth retrying once tail is following."""


class History(Protocol):
    name: str

    async def page(
        self, after: Cursor, *, lead_id: int | None, limit: int
    ) -> tuple[list[dict[str, Any]], int]: ...

    async def cursor_at(self, when: float) -> int: ...


class StoreHistory:
    """The database itself, read as the events API reads it."""

    name = "the database"

    def __init__(
        self, store: Store, provider_id: int | None, mode: events.Broadcast | None = None
    ) -> None:
        self.store = store
        self.provider_id = provider_id
        self.mode = mode or events.Broadcast()

    async def page(
        self, after: Cursor, *, lead_id: int | None, limit: int
    ) -> tuple[list[dict[str, Any]], int]:
        after = await self._row_cursor(after)
        rows = await self.store.events_after(
            after, provider_id=self.provider_id, lead_id=lead_id, limit=limit
        )
        items = [events.event_item(row, None, self.mode) for row in rows]
        return items, (rows[-1]["id"] if rows else after)

    async def cursor_at(self, when: float) -> int:
        return await self.store.events_since_time(when)

    async def _row_cursor(self, after: Cursor) -> int:
        """The events row id a cursor names, once it is known to be kept."""
        if isinstance(after, str):
            row_id = await self.store.event_row_id(after)
            if row_id is None:
                await _expired(retention.check_missing_event_id(self.store, after))
                raise TailError(f"there is no event {after} in the database")
            after = row_id
        await _expired(retention.check_cursor(self.store, after))
        return after


class ChannelHistory(StoreHistory):
    """The database's events of apps' channels (`tail --channel`): what leadrelay's Pusher
    API stored, as the events API would show it if it listed them, the data as sent (JSON
    decoded when it is JSON)."""

    def __init__(self, store: Store, channels: list[str]) -> None:
        super().__init__(store, None)
        self.channels = channels

    async def page(
        self, after: Cursor, *, lead_id: int | None, limit: int
    ) -> tuple[list[dict[str, Any]], int]:
        after = await self._row_cursor(after)
        rows = await self.store.channel_events_after(after, self.channels, limit)
        items = [
            {
                "id": row["id"],
                "event": row["type"],
                "channels": json.loads(row["channels"]),
                "data": _decoded(row["payload"]),
            }
            for row in rows
        ]
        return items, (rows[-1]["id"] if rows else after)


def _decoded(payload: str) -> Any:
    """An app's data string as a Pusher client shows it: decoded when it is JSON."""
    try:
        return json.loads(payload)
    except ValueError:
        return payload


async def _expired(check: Coroutine[Any, Any, None]) -> None:
    from leadrelay.errors import CursorExpired

    try:
        await check
    except CursorExpired as exc:
        raise TailError(f"{exc}; {EXPIRED_HINT}") from None


EXPIRED_HINT = "start tail with a later --since, or none, to follow from what is kept"


class ApiHistory:
    """A daemon's `/api/admin/events` or `/api/provider/events`."""

    name = "the daemon"

    def __init__(self, client: httpx.AsyncClient, path: str) -> None:
        self.client = client
        self.path = path

    async def page(
        self, after: Cursor, *, lead_id: int | None, limit: int
    ) -> tuple[list[dict[str, Any]], int]:
        params = {"after": str(after), "limit": str(limit)}
        if lead_id is not None:
            params["lead_id"] = str(lead_id)
        body = await request(self.client, "GET", self.path, params=params)
        return list(body["events"]), int(body["next_after"])

    async def cursor_at(self, when: float) -> int:
        """The cursor before the first event at or after `when`, found by bisecting ids.

        The API pages by id only; ids grow with time, so about 2·log2(newest id) requests
        find the boundary without reading every event.
        """

        async def older(after: int) -> bool:
            items, _ = await self.page(after, lead_id=None, limit=1)
            occurred = parse_time(items[0]["data"].get("occurred_at")) if items else None
            return occurred is not None and occurred.timestamp() < when

        if not await older(0):
            return 0
        low, high = 0, 1
        while await older(high):
            low, high = high, high * 2
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (middle, high) if await older(middle) else (low, middle)
        return high


async def request(client: httpx.AsyncClient, method: str, path: str, **kwargs: Any) -> Any:
    import httpx

    where = f"the daemon at {client.base_url}".rstrip("/")
    try:
        response = await client.request(method, path, **kwargs)
    except httpx.ConnectError as exc:
        raise DaemonUnavailable(f"cannot reach {where}: is 'leadrelay serve' running?") from exc
    except httpx.HTTPError as exc:
        raise DaemonUnavailable(f"no answer from {where}: {exc or type(exc).__name__}") from exc
    if response.status_code >= 400:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:200] or response.reason_phrase
        text = f"{where} refused {path} (HTTP {response.status_code}): {message}"
        if response.status_code == 410:
            raise DaemonError(f"{message}; {EXPIRED_HINT}", 410)
        if response.status_code >= 500:
            raise DaemonUnavailable(text)
        raise DaemonError(text, response.status_code)
    return response.json()
