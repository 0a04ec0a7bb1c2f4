"""The reads both backends make with the same SQL, written once against `fetch_one` and
`fetch_all` (whose `?` marks a parameter on every backend).

A backend's Store inherits `Reads` and keeps only the queries whose SQL really differs
(the outbox's due events and counters, claims, the integrity check, scrubbing).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from leadrelay.store.base import EVENT_COLUMNS, LEAD_COLUMNS, MAX_ID, Row, Tx, key_row
from leadrelay.store.search_reads import SearchReads
from leadrelay.store.stats_reads import StatsReads

T = TypeVar("T")

# the lead that owns an external_id: its duplicates from before it was unique have
# external_id_dup set (see sqlite/schema.py's migration 4)
BY_EXTERNAL_ID = f"SELECT {LEAD_COLUMNS} FROM leads WHERE external_id = ? AND external_id_dup = 0"


class Reads(SearchReads, StatsReads):
    """The shared reads; a backend provides fetch_one, fetch_all and write."""

    async def write(self, fn: Callable[[Tx], T]) -> T:
        raise NotImplementedError

    async def get_lead(self, lead_id: int) -> Row | None:
        return await self.fetch_one(f"SELECT {LEAD_COLUMNS} FROM leads WHERE id = ?", (lead_id,))

    async def lead_by_external_id(self, external_id: str) -> Row | None:
        return await self.fetch_one(BY_EXTERNAL_ID, (external_id,))

    async def _page(
        self,
        select: str,
        after: int,
        limit: int,
        equal: dict[str, Any],
        where: str = "",
        *,
        newest_first: bool = False,
    ) -> list[Row]:
        """Rows past an id cursor, oldest first (or newest first), where each given column
        equals its value (None means no filter on that column), and `where` holds if given."""
        if newest_first:
            sql, params = f"{select} WHERE id < ?", [after or MAX_ID]
        else:
            sql, params = f"{select} WHERE id > ?", [after]
        if where:
            sql += f" AND {where}"
        for column, value in equal.items():
            if value is not None:
                sql += f" AND {column} = ?"
                params.append(value)
        order = "id DESC" if newest_first else "id"
        return await self.fetch_all(f"{sql} ORDER BY {order} LIMIT ?", [*params, limit])

    async def list_leads(
        self,
        *,
        status: str | None,
        provider_id: int | None,
        after: int,
        limit: int,
        external_id: str | None = None,
        newest_first: bool = False,
    ) -> list[Row]:
        select = f"SELECT {LEAD_COLUMNS} FROM leads"
        equal = {"status": status, "provider_id": provider_id, "external_id": external_id}
        return await self._page(select, after, limit, equal, newest_first=newest_first)

    async def list_providers(self) -> list[Row]:
        # the lead counts from the counters the triggers keep (store/*/schema.py), not a
        # count of the leads table a provider
        return await self.fetch_all(
            "SELECT p.id, p.name, p.created_at, "
            "(SELECT CAST(coalesce(sum(n), 0) AS BIGINT) FROM lead_counts c "
            "WHERE c.provider_id = p.id) AS leads, "
            "p.watching = 1 AS watching, p.last_seen "
            "FROM providers p ORDER BY p.id"
        )

    async def count_watching(self) -> int:
        row = await self.fetch_one("SELECT count(*) AS n FROM providers WHERE watching = 1")
        return int(row["n"]) if row is not None else 0

    async def principal_for(self, token_hash: str) -> Row | None:
        return await self.fetch_one(
            "SELECT token_hash, role, provider_id FROM tokens "
            "WHERE token_hash = ? AND revoked_at IS NULL",
            (token_hash,),
        )

    async def list_tokens(self) -> list[Row]:
        return await self.fetch_all(
            "SELECT prefix, role, provider_id, created_at, revoked_at FROM tokens ORDER BY id"
        )

    async def lead_for_key(self, key: str) -> int | None:
        row = await self.fetch_one("SELECT lead_id FROM idempotency_keys WHERE key = ?", (key,))
        return None if row is None else int(row["lead_id"])

    async def key_outcome(self, key: str) -> tuple[int, Row | None] | None:
        """The lead a key names, and the outcome stored with it."""
        row = await self.fetch_one(
            "SELECT lead_id, outcome FROM idempotency_keys WHERE key = ?", (key,)
        )
        return None if row is None else key_row(row)

    async def external_id_duplicates(self, limit: int) -> list[Row]:
        """Leads that share an external_id from before it was unique (see sqlite/schema.py)."""
        return await self.fetch_all(
            "SELECT external_id, min(id) AS first_id, count(*) AS leads FROM leads "
            "WHERE external_id IN (SELECT external_id FROM leads WHERE external_id_dup != 0) "
            "GROUP BY external_id ORDER BY first_id LIMIT ?",
            (limit,),
        )

    async def get_setting(self, key: str) -> Any:
        row = await self.fetch_one("SELECT value FROM settings WHERE key = ?", (key,))
        return None if row is None else json.loads(row["value"])

    async def setting_version(self, key: str) -> str | None:
        row = await self.fetch_one("SELECT updated_at FROM settings WHERE key = ?", (key,))
        return None if row is None else str(row["updated_at"])

    async def event_row_id(self, event_id: str) -> int | None:
        row = await self.fetch_one("SELECT id FROM events WHERE event_id = ?", (event_id,))
        return None if row is None else int(row["id"])

    async def events_after(
        self, after: int, *, provider_id: int | None, lead_id: int | None, limit: int
    ) -> list[Row]:
        """The lead events after `after`: an app's Pusher API events (no lead) are not
        lead events, and the events API and `tail` (without --channel) leave them out."""
        select = f"SELECT {EVENT_COLUMNS} FROM events"
        equal = {"provider_id": provider_id, "lead_id": lead_id}
        return await self._page(select, after, limit, equal, "lead_id IS NOT NULL")

    async def channel_events_after(self, after: int, channels: list[str], limit: int) -> list[Row]:
        """The Pusher API events of `channels` after `after` (`tail --channel`'s history)."""
        marks = ", ".join("?" for _ in channels)
        return await self.fetch_all(
            f"SELECT {', '.join(f'e.{c}' for c in EVENT_COLUMNS.split(', '))} FROM events e "
            f"JOIN pusher_channels c ON c.id = e.channel_id WHERE c.name IN ({marks}) "
            "AND e.id > ? ORDER BY e.id LIMIT ?",
            [*channels, after, limit],
        )

    async def event_state(self, event_id: int) -> str | None:
        """The state of the event with this outbox id, None when there is none."""
        row = await self.fetch_one("SELECT state FROM events WHERE id = ?", (event_id,))
        return None if row is None else str(row["state"])

    async def events_since_time(self, since: float) -> int:
        """The cursor just before the first event committed at or after `since`."""
        row = await self.fetch_one(
            "SELECT coalesce(min(id), (SELECT coalesce(max(id), 0) + 1 FROM events)) - 1 AS c "
            "FROM events WHERE created_at >= ?",
            (since,),
        )
        return int(row["c"]) if row else 0

    async def lease(self, name: str) -> Row | None:
        """Who holds the lease `name` (see Tx.take_lease), expired or not."""
        row = await self.fetch_one(
            "SELECT owner, info, acquired_at, renewed_at, expires_at FROM leases WHERE name = ?",
            (name,),
        )
        if row is not None:
            row["info"] = json.loads(row["info"])
        return row

    async def dead_events(self, limit: int) -> list[Row]:
        return await self.fetch_all(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE state = 'dead' ORDER BY id LIMIT ?",
            (limit,),
        )

    async def recent_errors(self, limit: int) -> list[Row]:
        return await self.fetch_all(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE state = 'pending' AND attempts > 0 "
            "ORDER BY id LIMIT ?",
            (limit,),
        )

    async def ledger_problems(self) -> list[Row]:
        """Events in no accounted state: dead without a reason, or delivered with no time."""
        return await self.fetch_all(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE (state = 'dead' AND last_error IS NULL) "
            "OR (state = 'delivered' AND delivered_at IS NULL) "
            "OR (state NOT IN ('pending', 'delivered', 'dead')) LIMIT 20"
        )

    async def check_writable(self) -> None:
        """Raise Unavailable unless a write transaction can be opened and committed."""
        await self.write(lambda tx: tx.put_setting("readyz", {"at": tx.now}, ""))
