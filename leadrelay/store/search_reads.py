"""Search's reads (leadrelay/search.py): the keys the indexer wrote, bucket by bucket, and
the leads still pending indexing, matched one by one; the same SQL on both backends."""

from __future__ import annotations

import itertools
from typing import Any

from leadrelay import search
from leadrelay.store.base import LEAD_COLUMNS, Fetch, Row

# pending leads matched in Python at most (more: the answer says it is partial), candidates
# fetched a statement at most, and the buckets a statement reads (doubling, from one)
SEARCH_TAIL = 2000
SEARCH_FETCH = 500
SEARCH_CHUNKS = (1, 2, 4, 8, 16)


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
        sql = f"SELECT {LEAD_COLUMNS} FROM leads WHERE search_pending = 1"
        params: list[Any] = []
        if after:
            sql += " AND id < ?" if newest_first else " AND id > ?"
            params.append(after)
        for column, value in equal.items():
            sql += f" AND {column} = ?"
            params.append(value)
        sql += f" ORDER BY id {'DESC' if newest_first else ''} LIMIT ?"
        rows = await self.fetch_all(sql, [*params, SEARCH_TAIL + 1])
        found = [row for row in rows[:SEARCH_TAIL] if search.matches(terms, search.lead_keys(row))]
        return found, len(rows) > SEARCH_TAIL

    async def _search_index(
        self, terms: list[str], equal: dict[str, Any], after: int, limit: int, newest_first: bool
    ) -> list[Row]:
        """The indexed keys, a few buckets a statement from the cursor's end, until `limit`
        leads passed the filters: a broad term stops in the first bucket, a rare one costs
        one short range of the primary key a bucket."""
        span = await self.fetch_one("SELECT min(id) AS low, max(id) AS high FROM leads")
        if span is None or span["low"] is None:
            return []
        low, high = int(span["low"]), int(span["high"])
        if after:
            low, high = (low, min(high, after - 1)) if newest_first else (max(low, after + 1), high)
        buckets = list(range(search.bucket(low), search.bucket(high) + 1))
        if newest_first:
            buckets.reverse()
        ranges = " UNION ".join(
            "SELECT lead_id FROM search_keys WHERE bucket IN ({marks}) AND key >= ? AND key < ?"
            for _ in terms
        )
        found: list[Row] = []
        sizes = itertools.chain(SEARCH_CHUNKS, itertools.repeat(SEARCH_CHUNKS[-1]))
        while buckets and len(found) < limit:
            size = next(sizes)
            chunk, buckets = buckets[:size], buckets[size:]
            marks = ",".join("?" * len(chunk))
            params: list[Any] = []
            for term in terms:
                params += [*chunk, term, term + search.TOP]
            rows = await self.fetch_all(ranges.format(marks=marks), params)
            ids = sorted({int(row["lead_id"]) for row in rows}, reverse=newest_first)
            if after:
                ids = [i for i in ids if (i < after if newest_first else i > after)]
            found += await self._leads_among(ids, equal, limit - len(found))
        return found

    async def _leads_among(self, ids: list[int], equal: dict[str, Any], limit: int) -> list[Row]:
        """The leads of `ids` (in that order) that pass the filters, `limit` at most."""
        if not equal:
            ids = ids[:limit]
        found: list[Row] = []
        for start in range(0, len(ids), SEARCH_FETCH):
            some = ids[start : start + SEARCH_FETCH]
            sql = f"SELECT {LEAD_COLUMNS} FROM leads WHERE id IN ({','.join('?' * len(some))})"
            params: list[Any] = list(some)
            for column, value in equal.items():
                sql += f" AND {column} = ?"
                params.append(value)
            rows = {int(row["id"]): row for row in await self.fetch_all(sql, params)}
            found += [rows[i] for i in some if i in rows]
            if len(found) >= limit:
                break
        return found[:limit]
