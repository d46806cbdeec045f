"""Retry timing: full-jitter exponential backoff for provider calls, a fixed schedule for sink deliveries."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True, kw_only=True)
class BackoffPolicy:
    """Full-jitter backoff: attempt n waits uniform(0, min(cap, base * 2**n))."""

    base: float = 1.0
    cap: float = 60.0
    max_attempts: int = 8
    retry_after_cap: float = 3600.0


@dataclass(frozen=True, slots=True, kw_only=True)
class SchedulePolicy:
    """Delays before each retry (after attempt 1, 2, ...), each spread by ±jitter."""

    delays: Sequence[float] = (5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)
    jitter: float = 0.2
    retry_after_cap: float = 3600.0

    @property
    def max_attempts(self) -> int:
        return len(self.delays) + 1


def backoff_delay(attempt: int, policy: BackoffPolicy, rng: random.Random) -> float:
    ceiling = min(policy.cap, policy.base * (2 ** min(attempt, 30)))
    return rng.uniform(0, ceiling)


def schedule_delay(
    attempt: int, policy: SchedulePolicy, rng: random.Random, *, max_attempts: int | None = None
) -> float | None:
    """Delay after the ``attempt``-th failed attempt (1-based), or None when no attempt is left.

    ``max_attempts`` (default: one more than the delays) may cut the schedule short, or run it longer with
    its last delay repeated."""
    limit = policy.max_attempts if max_attempts is None else max_attempts
    if attempt < 1 or attempt >= limit or not policy.delays:
        return None
    delay = float(policy.delays[min(attempt, len(policy.delays)) - 1])
    return delay * rng.uniform(1 - policy.jitter, 1 + policy.jitter)


def next_attempt_at(
    now: datetime, delay: float | None, retry_after: float | None, retry_after_cap: float
) -> datetime | None:
    """When to try again: the larger of our delay and the server's Retry-After (capped); None means give up."""
    if delay is None:
        return None
    if retry_after is not None:
        delay = max(delay, min(retry_after, retry_after_cap))
    return now + timedelta(seconds=delay)
