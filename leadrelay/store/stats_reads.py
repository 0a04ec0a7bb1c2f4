"""The day at a glance's reads: the counters the triggers keep (store/*/schema.py), summed
over their slots (PostgreSQL's; SQLite has one row a key), and the oldest waiting lead from
its partial index. A few small rows each, however many leads are stored."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from leadrelay.store.base import Fetch, Row


class StatsReads(Fetch):
    """Mixed into Reads."""

    async def lead_counts(self, provider_id: int | None = None) -> list[Row]:
        """Leads by provider_id (0: none) and status."""
        where, params = ("WHERE provider_id = ? ", [provider_id]) if provider_id else ("", [])
        return await self.fetch_all(
            "SELECT provider_id, status, CAST(sum(n) AS BIGINT) AS n FROM lead_counts "
            f"{where}GROUP BY provider_id, status",
            params,
        )

    async def oldest_unassigned(self, statuses: Iterable[str]) -> Row | None:
        """The oldest lead with no provider in one of `statuses` (id, created_at)."""
        oldest: Row | None = None
        for status in statuses:
            row = await self.fetch_one(
                "SELECT id, created_at FROM leads WHERE provider_id IS NULL AND status = ? "
                "ORDER BY id LIMIT 1",
                (status,),
            )
            if row is not None and (oldest is None or row["id"] < oldest["id"]):
                oldest = row
        return oldest

    async def lead_hours(self, since_hour: str, provider_id: int | None = None) -> list[Row]:
        """Leads created and assigned an hour ('2026-12-06T21') and provider, from
        `since_hour` on."""
        where, params = "hour >= ?", list[Any]([since_hour])
        if provider_id:
            where, params = f"{where} AND provider_id = ?", [*params, provider_id]
        return await self.fetch_all(
            "SELECT hour, provider_id, CAST(sum(created) AS BIGINT) AS created, "
            f"CAST(sum(assigned) AS BIGINT) AS assigned FROM lead_hours WHERE {where} "
            "GROUP BY hour, provider_id",
            params,
        )

    async def contact_times(self, since_day: str, provider_id: int | None = None) -> list[Row]:
        """Speed to contact (leadrelay/speed.py): counts a provider and bucket, from
        `since_day` ('2026-12-06') on."""
        where, params = "day >= ?", list[Any]([since_day])
        if provider_id:
            where, params = f"{where} AND provider_id = ?", [*params, provider_id]
        return await self.fetch_all(
            f"SELECT provider_id, bucket, CAST(sum(n) AS BIGINT) AS n FROM contact_times "
            f"WHERE {where} GROUP BY provider_id, bucket",
            params,
        )
