"""Search's reads (leadrelay/search.py): the keys the indexer wrote, bucket by bucket, and
the leads still pending indexing, matched one by one; the same SQL on both backends."""

from __future__ import annotations

import itertools
from typing import Any

from leadrelay import search
from leadrelay.store.base import LEAD_COLUMNS, Fetch, Row

# pending leads matched in Python at most (more: the answer says it is partial), and the
# buckets a statement reads: one (a broad term stops there), then 16, then 256 at a time. A
# rare term at a million leads (245 buckets) takes 3 statements, not the 8 of doubling, and
# on PostgreSQL each statement is a round trip; the ids a larger step reads past `limit`
# cost little (measured at 1M leads, the store alone on PostgreSQL: p50 9.2 -> 7.9 ms, p99
# 28 -> 19 ms; growing by 8 to 512 made a provider's broad terms slower, p99 64 ms)
SEARCH_TAIL = 2000
SEARCH_CHUNKS = (1, 16, 256)


class SearchReads(Fetch):
    """Mixed into Reads."""

    async def search_leads(
        self,
        terms: list[str],
        *,
        equal: dict[str, Any],
        after: int,
        limit: int,
        newest_first: bool,
    ) -> tuple[list[Row], bool]:
        """Leads one of whose keys starts with one of `terms` (leadrelay/search.py), past
        the cursor `after` in the list's order, and whether leads pending indexing may have
        been left out (more than SEARCH_TAIL of them).  `equal`: columns each lead must
        equal (None: any)."""
        equal = {column: value for column, value in equal.items() if value is not None}
        pending, partial = await self._search_pending(terms, equal, after, newest_first)
        found = await self._search_index(terms, equal, after, limit, newest_first)
        rows = sorted([*pending, *found], key=lambda row: int(row["id"]), reverse=newest_first)
        return rows[:limit], partial

    async def _search_pending(
        self, terms: list[str], equal: dict[str, Any], after: int, newest_first: bool
    ) -> tuple[list[Row], bool]:
        """The pending leads `terms` find among the newest SEARCH_TAIL pending (past the
        cursor), and whether more were pending. Their ids come from the partial index
        alone, the filters apply after: in one WHERE, SQLite walked all of a provider's
        leads for the few pending (100 ms at 1M leads)."""
        sql, params = "SELECT id FROM leads WHERE search_pending = 1", list[Any]()
        if after:
            sql += " AND id < ?" if newest_first else " AND id > ?"
            params.append(after)
        order = "id DESC" if newest_first else "id"
        rows = await self.fetch_all(f"{sql} ORDER BY {order} LIMIT ?", [*params, SEARCH_TAIL + 1])
        ids = [int(row["id"]) for row in rows[:SEARCH_TAIL]]
        found = []
        for lead in await self._leads_of(ids, equal):
            if search.matches(terms, search.lead_keys(lead)):
                found.append(lead)
        return found, len(rows) > SEARCH_TAIL

    async def _search_index(
        self, terms: list[str], equal: dict[str, Any], after: int, limit: int, newest_first: bool
    ) -> list[Row]:
        """The indexed keys, a few buckets a statement from the cursor's end, until `limit`
        leads passed the filters: a broad term stops in the first bucket, a rare one costs
        one short range of the primary key a bucket."""
        # two subqueries: SQLite finds one min() or max() at the primary key's end, but
        # scans the whole table for both in one select
        span = await self.fetch_one(
            "SELECT (SELECT min(id) FROM leads) AS low, (SELECT max(id) FROM leads) AS high"
        )
        if span is None or span["low"] is None:
            return []
        low, high = int(span["low"]), int(span["high"])
        if after:
            low, high = (low, min(high, after - 1)) if newest_first else (max(low, after + 1), high)
        buckets = list(range(search.bucket(low), search.bucket(high) + 1))
        if newest_first:
            buckets.reverse()
        # a filter is checked in the same statement, on the leads the keys name
        join = " JOIN leads l ON l.id = k.lead_id" if equal else ""
        where = "".join(f" AND l.{column} = ?" for column in equal)
        ranges = " UNION ".join(
            f"SELECT k.lead_id FROM search_keys k{join} WHERE k.bucket IN ({{marks}}) "
            f"AND k.key >= ? AND k.key < ?{where}"
            for _ in terms
        )
        found: list[int] = []
        sizes = itertools.chain(SEARCH_CHUNKS, itertools.repeat(SEARCH_CHUNKS[-1]))
        while buckets and len(found) < limit:
            size = next(sizes)
            chunk, buckets = buckets[:size], buckets[size:]
            params: list[Any] = []
            for term in terms:
                params += [*chunk, term, term + search.TOP, *equal.values()]
            rows = await self.fetch_all(ranges.format(marks=",".join("?" * len(chunk))), params)
            ids = sorted({int(row["lead_id"]) for row in rows}, reverse=newest_first)
            if after:
                ids = [i for i in ids if (i < after if newest_first else i > after)]
            found += ids[: limit - len(found)]
        return await self._leads_of(found)  # the filters held in the statements above

    async def _leads_of(self, ids: list[int], equal: dict[str, Any] | None = None) -> list[Row]:
        """The leads of `ids` that equal `equal`, in the order of `ids`."""
        if not ids:
            return []
        sql = f"SELECT {LEAD_COLUMNS} FROM leads WHERE id IN ({','.join('?' * len(ids))})"
        params: list[Any] = list(ids)
        for column, value in (equal or {}).items():
            sql += f" AND {column} = ?"
            params.append(value)
        rows = {int(row["id"]): row for row in await self.fetch_all(sql, params)}
        return [rows[i] for i in ids if i in rows]
