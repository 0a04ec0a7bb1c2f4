"""Speed to contact: how long a provider takes from a lead's `lead.assigned` to its own first
status change of that lead, kept as a histogram a day and provider, and its median.

A median over any window needs every time in it, or a histogram: the database keeps counts in
buckets whose edges grow by a fifth (1 s, 2 s, 3 s, ... 1 min, 1.2 min, ... 90 days), filled
by a trigger as each status change is written (store/*/schema.py), and `median` interpolates
inside the bucket where the middle falls, as Prometheus's histogram_quantile does: within
about a tenth of the exact median, from a few hundred rows whatever the number of leads.
"""

from __future__ import annotations

from collections.abc import Iterable


def _edges() -> tuple[int, ...]:
    edges = [1]
    while edges[-1] < 90 * 86400:
        edges.append(max(edges[-1] + 1, round(edges[-1] * 1.2)))
    return tuple(edges)


# bucket 0 holds [0, 1 s), bucket n [EDGES[n-1], EDGES[n]), the last everything longer
EDGES = _edges()


def bucket_sql(seconds: str) -> str:
    """An SQL expression: the bucket of the time `seconds` (an SQL expression) falls in."""
    whens = " ".join(f"WHEN {seconds} < {edge} THEN {n}" for n, edge in enumerate(EDGES))
    return f"CASE {whens} ELSE {len(EDGES)} END"


def bucket_of(seconds: float) -> int:
    """The same in Python (tests check the two agree)."""
    return next((n for n, edge in enumerate(EDGES) if seconds < edge), len(EDGES))


def bounds(bucket: int) -> tuple[float, float]:
    low = 0.0 if bucket == 0 else float(EDGES[bucket - 1])
    high = float(EDGES[bucket]) if bucket < len(EDGES) else low * 1.2
    return low, high


def median(counts: Iterable[tuple[int, int]]) -> float | None:
    """The median time of a histogram given as (bucket, count) pairs; None when empty."""
    histogram = sorted((b, n) for b, n in counts if n > 0)
    total = sum(n for _, n in histogram)
    if total == 0:
        return None
    middle = total / 2
    seen = 0
    for b, n in histogram:
        if seen + n >= middle:
            low, high = bounds(b)
            return round(low + (high - low) * (middle - seen) / n, 1)
        seen += n
    return None  # not reached: the counts add up to total
