from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core.ratelimit import RateLimit, TokenBuckets


def test_burst_then_refill_at_the_configured_rate() -> None:
    buckets = TokenBuckets(RateLimit(per_second=2, burst=3))
    assert [buckets.take("a", 100.0) for _ in range(3)] == [None, None, None]
    assert buckets.take("a", 100.0) == pytest.approx(0.5)
    assert buckets.take("a", 100.25) == pytest.approx(0.25)
    assert buckets.take("a", 100.5) is None
    assert buckets.take("b", 100.5) is None  # keys are independent


def test_a_refused_take_spends_nothing() -> None:
    buckets = TokenBuckets(RateLimit(per_second=1, burst=1))
    assert buckets.take("a", 0.0) is None
    for _ in range(5):
        assert buckets.take("a", 0.5) == pytest.approx(0.5)
    assert buckets.take("a", 1.0) is None


def test_spend_and_wait_for_failure_counting() -> None:
    buckets = TokenBuckets(RateLimit(per_second=0.2, burst=2))
    assert buckets.wait("ip", 0.0) is None
    buckets.spend("ip", 0.0)
    buckets.spend("ip", 0.0)
    buckets.spend("ip", 0.0)  # an empty bucket stays empty
    assert buckets.wait("ip", 0.0) == pytest.approx(5.0)
    assert buckets.wait("ip", 5.0) is None


def test_key_count_is_capped() -> None:
    buckets = TokenBuckets(RateLimit(per_second=1, burst=1), max_keys=10)
    for i in range(100):
        buckets.spend(f"k{i}", float(i) / 1000)
    assert len(buckets) <= 10
    assert buckets.wait("k99", 0.1) is not None  # the newest key is kept


@pytest.mark.parametrize(("per_second", "burst"), [(0, 1), (-1, 1), (1, 0), (float("inf"), 1)])
def test_rate_limit_rejects_nonsense(per_second: float, burst: int) -> None:
    with pytest.raises(ValueError, match=r"^a rate limit needs per_second > 0 and burst >= 1$"):
        RateLimit(per_second=per_second, burst=burst)


@settings(max_examples=200, deadline=None)
@given(
    per_second=st.floats(0.01, 100),
    burst=st.integers(1, 50),
    gaps=st.lists(st.floats(0, 5), min_size=1, max_size=100),
)
def test_never_more_than_burst_plus_refill(per_second: float, burst: int, gaps: list[float]) -> None:
    buckets = TokenBuckets(RateLimit(per_second=per_second, burst=burst))
    now, granted = 0.0, 0
    for gap in gaps:
        now += gap
        if buckets.take("k", now) is None:
            granted += 1
    assert granted <= burst + now * per_second + 1e-6


def test_the_default_cap_is_ten_thousand_keys() -> None:
    buckets = TokenBuckets(RateLimit(per_second=0.001, burst=1))
    for i in range(10_001):
        buckets.spend(f"k{i}", 0.0)
    assert len(buckets) == 10_000


def test_at_the_cap_full_buckets_go_first_then_the_least_recently_used() -> None:
    buckets = TokenBuckets(RateLimit(per_second=1, burst=2), max_keys=3)
    buckets.spend("z", 0.0)
    buckets.spend("z", 0.0)  # empty at 0, full at 2
    buckets.spend("b", 0.5)  # one token at 0.5, full at 1.5
    buckets.spend("c", 1.6)
    buckets.spend("d", 1.6)  # at the cap: b is full and goes; z, older but not full, stays
    assert len(buckets) == 3
    assert buckets.tokens("z", 1.6) == pytest.approx(1.6)
    buckets.spend("e", 1.7)  # at the cap, none full: the least recently used (z) goes, not the least by name (c)
    assert len(buckets) == 3
    assert buckets.tokens("z", 1.7) == 2.0
    assert buckets.tokens("c", 1.7) == pytest.approx(1.1)
    assert buckets.tokens("d", 1.7) == pytest.approx(1.1)


def test_spending_on_a_known_key_at_the_cap_forgets_nothing() -> None:
    buckets = TokenBuckets(RateLimit(per_second=0.001, burst=2), max_keys=2)
    buckets.spend("b", 0.0)
    buckets.spend("a", 0.1)
    buckets.spend("a", 0.2)
    assert len(buckets) == 2
    assert buckets.tokens("b", 0.2) < 2.0  # b, the least recently used, is kept
