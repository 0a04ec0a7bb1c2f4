"""In-memory token-bucket rate limiting per key (a token hash or a client IP), and the limit
on failed token checks per client address."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from leadrelay.errors import TooManyFailedAuth

__all__ = ["DEFAULT_MAX_KEYS", "FailedAuthLimit", "RateLimiter"]

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


class FailedAuthLimit:
    """Failed token checks (401s) per client address: `per_minute` of them at once, then
    one every 60/per_minute s; an address that has none left gets 429 for every request,
    valid token or not, until one has come back (a guess that worked would be no
    different).

    Only failures spend: a request that authenticates costs one test of an empty dict while
    no address is held, one lookup while some are.  `per_minute` 0 means no limit.  Memory
    is bounded by `max_keys` addresses (the longest untouched go first).
    """

    def __init__(
        self,
        per_minute: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = DEFAULT_MAX_KEYS,
    ) -> None:
        self.per_minute = per_minute
        self._rate = per_minute / 60  # failures that come back a second
        self._left: OrderedDict[str, _Bucket] = OrderedDict()  # failures left, by address
        self._held: dict[str, float] = {}  # address → until when (the clock's time)
        self._clock = clock
        self._max_keys = max_keys

    def wait(self, address: str) -> float:
        """0.0 when `address` may try, else the seconds until it may."""
        if not self._held:
            return 0.0
        until = self._held.get(address)
        if until is None:
            return 0.0
        left = until - self._clock()
        if left <= 0:
            del self._held[address]
            return 0.0
        return left

    def check(self, address: str) -> None:
        """Raise TooManyFailedAuth while `address` is held."""
        wait = self.wait(address)
        if wait > 0:
            retry_after = max(1, math.ceil(wait))
            raise TooManyFailedAuth(
                f"too many failed token checks from this address; try again in {retry_after} s "
                "with a valid token",
                retry_after=retry_after,
            )

    def failed(self, address: str) -> None:
        """A check from `address` failed: spend one of its failures; with none left, hold
        the address until one has come back."""
        if self.per_minute <= 0:
            return
        now = self._clock()
        bucket = self._left.pop(address, None)
        if bucket is None:
            if len(self._left) >= self._max_keys:
                self._left.popitem(last=False)
            bucket = _Bucket(tokens=float(self.per_minute), updated_at=now)
        elapsed = max(now - bucket.updated_at, 0.0)
        bucket.tokens = min(float(self.per_minute), bucket.tokens + elapsed * self._rate) - 1.0
        bucket.updated_at = now
        self._left[address] = bucket
        if bucket.tokens + _TOKEN_EPSILON < 1.0:
            if len(self._held) >= self._max_keys:
                self._held = {a: until for a, until in self._held.items() if until > now}
                if len(self._held) >= self._max_keys:
                    del self._held[next(iter(self._held))]
            self._held[address] = now + (1.0 - bucket.tokens) / self._rate
