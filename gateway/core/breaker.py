"""Circuit breaker state machine (RELIABILITY.md S7, §6): pure, the time is passed in.

CLOSED: calls go through. It opens after ``consecutive_failures`` failures in a row, or when at least
``failure_ratio`` of the last ``window`` outcomes (a full window) were failures.
OPEN: calls are refused for ``open_seconds``; the caller postpones them without spending their attempt budget.
HALF_OPEN: after the open period one probe call goes through; its success closes the breaker, its failure opens it
again. A probe that never reports back (its worker died) is replaced after ``open_seconds``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime, timedelta


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True, kw_only=True)
class BreakerPolicy:
    consecutive_failures: int = 5
    window: int = 20
    failure_ratio: float = 0.5
    open_seconds: float = 60.0
    probe_wait: float = 5.0  # how long a call refused while the probe is out waits before asking again


@dataclass(frozen=True, slots=True, kw_only=True)
class Breaker:
    state: BreakerState = BreakerState.CLOSED
    consecutive: int = 0
    recent: tuple[bool, ...] = ()  # the last outcomes, newest last; True is a failure
    opened_at: datetime | None = None
    probe_at: datetime | None = None  # when the half-open probe was let through


@dataclass(frozen=True, slots=True, kw_only=True)
class Admission:
    allowed: bool
    breaker: Breaker
    wait: float = 0.0  # seconds to postpone a refused call


def admit(breaker: Breaker, policy: BreakerPolicy, now: datetime) -> Admission:
    """May a call go through now? Letting the half-open probe through is recorded in the returned breaker."""
    if breaker.state == BreakerState.CLOSED:
        return Admission(allowed=True, breaker=breaker)
    if breaker.state == BreakerState.OPEN:
        assert breaker.opened_at is not None
        reopens = breaker.opened_at + timedelta(seconds=policy.open_seconds)
        if now < reopens:
            return Admission(allowed=False, breaker=breaker, wait=(reopens - now).total_seconds())
        return Admission(allowed=True, breaker=replace(breaker, state=BreakerState.HALF_OPEN, probe_at=now))
    assert breaker.probe_at is not None
    if now - breaker.probe_at >= timedelta(seconds=policy.open_seconds):  # the probe was lost
        return Admission(allowed=True, breaker=replace(breaker, probe_at=now))
    return Admission(allowed=False, breaker=breaker, wait=policy.probe_wait)


def record(breaker: Breaker, policy: BreakerPolicy, now: datetime, *, failed: bool) -> Breaker:
    """Take the outcome of a call that was let through."""
    if breaker.state == BreakerState.HALF_OPEN:
        return _open(now) if failed else Breaker()
    if breaker.state == BreakerState.OPEN:  # a call admitted before the breaker opened: counts for nothing
        return breaker
    recent = (*breaker.recent, failed)[-policy.window :]
    consecutive = breaker.consecutive + 1 if failed else 0
    if failed and (consecutive >= policy.consecutive_failures or _ratio_exceeded(recent, policy)):
        return _open(now)
    return replace(breaker, consecutive=consecutive, recent=recent)


def _ratio_exceeded(recent: tuple[bool, ...], policy: BreakerPolicy) -> bool:
    return len(recent) >= policy.window and sum(recent) >= policy.failure_ratio * policy.window


def _open(now: datetime) -> Breaker:
    return Breaker(state=BreakerState.OPEN, opened_at=now)
