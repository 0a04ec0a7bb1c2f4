"""Tests for the in-memory token-bucket rate limiter."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadrelay.web.ratelimit import RateLimiter

PROPERTY = settings(max_examples=200, deadline=None)


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def test_ratelimiter_allows_burst_then_refuses() -> None:
    clock = FakeClock()
    limiter = RateLimiter(1.0, 3, clock=clock)
    assert [limiter.check("k") for _ in range(3)] == [0.0, 0.0, 0.0]
    wait = limiter.check("k")
    assert wait == pytest.approx(1.0)
    assert math.ceil(wait) == 1


def test_ratelimiter_allows_again_after_the_advertised_wait() -> None:
    clock = FakeClock()
    limiter = RateLimiter(0.5, 1, clock=clock)
    assert limiter.check("k") == 0.0
    clock.advance(0.5)
    wait = limiter.check("k")
    assert wait == pytest.approx(1.5)
    clock.advance(wait)
    assert limiter.check("k") == 0.0


def test_ratelimiter_refusal_spends_no_token() -> None:
    clock = FakeClock()
    limiter = RateLimiter(1.0, 1, clock=clock)
    limiter.check("k")
    for _ in range(5):
        assert limiter.check("k") > 0
    clock.advance(1.0)
    assert limiter.check("k") == 0.0


def test_ratelimiter_keeps_keys_apart() -> None:
    limiter = RateLimiter(1.0, 1, clock=FakeClock())
    assert limiter.check("a") == 0.0
    assert limiter.check("a") > 0
    assert limiter.check("b") == 0.0


def test_ratelimiter_refills_no_higher_than_burst() -> None:
    clock = FakeClock()
    limiter = RateLimiter(10.0, 2, clock=clock)
    limiter.check("k")
    clock.advance(3600)
    assert [limiter.check("k") == 0.0 for _ in range(3)] == [True, True, False]


@pytest.mark.parametrize("rate", [0.0, -1.0])
def test_ratelimiter_unlimited_when_rate_not_positive(rate: float) -> None:
    limiter = RateLimiter(rate, 0, clock=FakeClock())
    assert all(limiter.check(f"k{i % 3}") == 0.0 for i in range(1000))
    assert len(limiter) == 0


def test_ratelimiter_rejects_bad_settings() -> None:
    with pytest.raises(ValueError):
        RateLimiter(1.0, 0)
    with pytest.raises(ValueError):
        RateLimiter(float("nan"), 1)
    with pytest.raises(ValueError):
        RateLimiter(1.0, 1, max_keys=0)


def test_ratelimiter_survives_clock_stepping_back() -> None:
    clock = FakeClock()
    limiter = RateLimiter(1.0, 1, clock=clock)
    limiter.check("k")
    clock.advance(-50)
    assert limiter.check("k") > 0


def test_ratelimiter_evicts_idle_full_buckets() -> None:
    clock = FakeClock()
    limiter = RateLimiter(1.0, 2, clock=clock, max_keys=100)
    for i in range(50):
        limiter.check(f"k{i}")
    assert len(limiter) == 50
    clock.advance(10)  # every bucket is full again, so none is worth keeping
    limiter.check("new")
    assert len(limiter) == 1


def test_ratelimiter_drops_least_recently_used_at_the_bound() -> None:
    clock = FakeClock()
    limiter = RateLimiter(0.001, 1, clock=clock, max_keys=3)
    for key in ("a", "b", "c"):
        limiter.check(key)
    limiter.check("a")  # "a" is now the most recently used, "b" the least
    limiter.check("d")
    assert len(limiter) == 3
    # "b" was forgotten, so it starts afresh; "a" and "c" are still spent.
    assert limiter.check("b") == 0.0
    assert limiter.check("a") > 0


@PROPERTY
@given(keys=st.lists(st.text(max_size=8), max_size=300), max_keys=st.integers(1, 20))
def test_ratelimiter_never_tracks_more_than_max_keys(keys: list[str], max_keys: int) -> None:
    clock = FakeClock()
    limiter = RateLimiter(1.0, 2, clock=clock, max_keys=max_keys)
    for key in keys:
        limiter.check(key)
        clock.advance(0.01)
        assert len(limiter) <= max_keys


@PROPERTY
@given(
    rate=st.floats(0.01, 1000),
    burst=st.integers(1, 20),
    steps=st.lists(
        st.tuples(st.floats(0, 5), st.sampled_from(["a", "b", "c"])), min_size=1, max_size=200
    ),
)
def test_ratelimiter_never_allows_more_than_burst_plus_refill_in_any_window(
    rate: float, burst: int, steps: list[tuple[float, str]]
) -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate, burst, clock=clock, max_keys=3)
    allowed_at: dict[str, list[float]] = {}
    for gap, key in steps:
        clock.advance(gap)
        if limiter.check(key) == 0.0:
            allowed_at.setdefault(key, []).append(clock.now)
    for times in allowed_at.values():
        for start in range(len(times)):
            for end in range(start, len(times)):
                count = end - start + 1
                budget = burst + rate * (times[end] - times[start])
                assert count <= budget + 1e-6 * count


@PROPERTY
@given(
    rate=st.floats(0.01, 1000),
    burst=st.integers(1, 20),
    gaps=st.lists(st.floats(0, 2), min_size=1, max_size=100),
)
def test_ratelimiter_allows_after_any_advertised_wait(
    rate: float, burst: int, gaps: list[float]
) -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate, burst, clock=clock)
    for gap in gaps:
        clock.advance(gap)
        wait = limiter.check("k")
        assert wait >= 0.0
        if wait > 0.0:
            assert wait <= 1.0 / rate + 1e-9
            clock.advance(wait)
            assert limiter.check("k") == 0.0
