"""In-memory token-bucket rate limiting per key (a token hash or a client IP)."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

__all__ = ["DEFAULT_MAX_KEYS", "RateLimiter"]

DEFAULT_MAX_KEYS: Final = 10_000
# Float refills land a hair short of a whole token at exactly the advertised wait; without
# this slack a client that waits precisely as told would be refused once more.
_TOKEN_EPSILON: Final = 1e-9
# A refusal must never read as 0.0, which means "allowed", however large the rate.
_MIN_WAIT: Final = 1e-6


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated_at: float


class RateLimiter:
    """A token bucket per key: `burst` requests at once, refilled at `rate_per_second`.

    Memory is bounded by `max_keys` buckets, kept in least-recently-used order. Whenever a
    new key arrives, the least recently used buckets that have refilled completely are
    dropped (a fresh bucket is full, so forgetting them changes nothing). If the bound is
    still reached, the least recently used bucket is dropped anyway, and that key starts
    afresh with a full bucket on its next request: size `max_keys` above the number of
    clients you expect to be limited at once.

    A `rate_per_second` of 0 or less means unlimited: `check` always allows and stores nothing.
    Not thread-safe; it is meant for one asyncio event loop, where `check` never awaits.
    """

    def __init__(
        self,
        rate_per_second: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = DEFAULT_MAX_KEYS,
    ) -> None:
        if math.isnan(rate_per_second):
            raise ValueError("rate_per_second must be a number; use 0 for unlimited")
        self.unlimited = rate_per_second <= 0
        if not self.unlimited and burst < 1:
            raise ValueError(f"burst must be at least 1 request, not {burst}")
        if max_keys < 1:
            raise ValueError(f"max_keys must be at least 1, not {max_keys}")
        self.rate_per_second = rate_per_second
        self.burst = burst
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def __len__(self) -> int:
        """How many keys are tracked now (never more than `max_keys`)."""
        return len(self._buckets)

    def check(self, key: str) -> float:
        """0.0 and one token spent if `key` may proceed, else the seconds until it may."""
        if self.unlimited:
            return 0.0
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            self._make_room(now)
            bucket = _Bucket(tokens=float(self.burst), updated_at=now)
            self._buckets[key] = bucket
        else:
            self._refill(bucket, now)
            self._buckets.move_to_end(key)

        if bucket.tokens + _TOKEN_EPSILON >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return max((1.0 - bucket.tokens) / self.rate_per_second, _MIN_WAIT)

    def _refill(self, bucket: _Bucket, now: float) -> None:
        # max() guards against a clock that steps back (an injected one in tests, say).
        elapsed = max(now - bucket.updated_at, 0.0)
        bucket.tokens = min(float(self.burst), bucket.tokens + elapsed * self.rate_per_second)
        bucket.updated_at = now

    def _is_full(self, bucket: _Bucket, now: float) -> bool:
        elapsed = max(now - bucket.updated_at, 0.0)
        return bucket.tokens + elapsed * self.rate_per_second >= self.burst

    def _make_room(self, now: float) -> None:
        # Idle full buckets go first: a new bucket starts full, so forgetting them changes
        # nothing. The least recently used have had the longest to refill and sit at the
        # front, so popping from there keeps each check O(1) amortised.
        while self._buckets:
            oldest = next(iter(self._buckets.values()))
            if not self._is_full(oldest, now):
                break
            self._buckets.popitem(last=False)
        if len(self._buckets) >= self.max_keys:
            self._buckets.popitem(last=False)
