"""Token buckets keyed by a string (a source name, a client address). Pure: the caller passes the time.

A bucket holds up to ``burst`` tokens and refills at ``per_second``. ``take`` spends one token and answers
None, or answers how many seconds until a token is back. Idle full buckets are forgotten, and the number of
keys is capped, so a flood of new keys cannot grow memory without bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class RateLimit:
    per_second: float
    burst: int

    def __post_init__(self) -> None:
        if not (self.per_second > 0 and math.isfinite(self.per_second)) or self.burst < 1:
            raise ValueError("a rate limit needs per_second > 0 and burst >= 1")


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class TokenBuckets:
    def __init__(self, limit: RateLimit, *, max_keys: int = 10_000) -> None:
        self.limit = limit
        self.max_keys = max_keys
        self._buckets: dict[str, _Bucket] = {}

    def tokens(self, key: str, now: float) -> float:
        """Tokens ``key`` has at ``now`` (a full bucket for a key never seen)."""
        bucket = self._buckets.get(key)
        if bucket is None:
            return float(self.limit.burst)
        elapsed = max(0.0, now - bucket.at)
        return min(float(self.limit.burst), bucket.tokens + elapsed * self.limit.per_second)

    def wait(self, key: str, now: float) -> float | None:
        """None when ``key`` has a token now, else the seconds until it has one; spends nothing."""
        missing = 1.0 - self.tokens(key, now)
        return None if missing <= 0 else missing / self.limit.per_second

    def take(self, key: str, now: float) -> float | None:
        """Spend one token: None when there was one, else the seconds until there is one (nothing spent)."""
        wait = self.wait(key, now)
        if wait is not None:
            return wait
        self.spend(key, now)
        return None

    def spend(self, key: str, now: float) -> None:
        """Spend one token if there is one (an empty bucket stays empty)."""
        left = max(0.0, self.tokens(key, now) - 1.0)
        if key not in self._buckets and len(self._buckets) >= self.max_keys:
            self._forget_full(now)
        self._buckets[key] = _Bucket(tokens=left, at=now)

    def _forget_full(self, now: float) -> None:
        full = [k for k in self._buckets if self.tokens(k, now) >= self.limit.burst]
        for key in full:
            del self._buckets[key]
        if len(self._buckets) >= self.max_keys:
            oldest = min(self._buckets, key=lambda k: self._buckets[k].at)
            del self._buckets[oldest]

    def __len__(self) -> int:
        return len(self._buckets)
