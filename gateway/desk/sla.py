"""SLA clocks: when each of an item's timers is due, from its policy and the time it opened. Pure."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.config.desk import ReviewPolicy


class Timer(enum.StrEnum):
    CLAIM_WARNING = "claim_warning"
    CLAIM_BREACH = "claim_breach"
    DECIDE_WARNING = "decide_warning"
    DECIDE_BREACH = "decide_breach"
    EXPIRE = "expire"
    LEASE = "lease"  # a claim's lease runs out


CLAIM_TIMERS = frozenset({Timer.CLAIM_WARNING, Timer.CLAIM_BREACH})
WARNINGS = frozenset({Timer.CLAIM_WARNING, Timer.DECIDE_WARNING})
BREACHES = frozenset({Timer.CLAIM_BREACH, Timer.DECIDE_BREACH})


@dataclass(frozen=True, slots=True, kw_only=True)
class Deadlines:
    claim_due_at: datetime | None
    decide_due_at: datetime | None
    expires_at: datetime | None
    timers: tuple[tuple[Timer, datetime], ...]


def deadlines(policy: ReviewPolicy, opened_at: datetime) -> Deadlines:
    sla = policy.sla
    timers: list[tuple[Timer, datetime]] = []
    claim_due = decide_due = expires = None
    if sla.claim_within is not None:
        claim_due = opened_at + timedelta(seconds=sla.claim_within)
        timers.append((Timer.CLAIM_WARNING, opened_at + timedelta(seconds=sla.claim_within * sla.warn_at)))
        timers.append((Timer.CLAIM_BREACH, claim_due))
    if sla.decide_within is not None:
        decide_due = opened_at + timedelta(seconds=sla.decide_within)
        timers.append((Timer.DECIDE_WARNING, opened_at + timedelta(seconds=sla.decide_within * sla.warn_at)))
        timers.append((Timer.DECIDE_BREACH, decide_due))
    if policy.pause_timeout is not None:
        expires = opened_at + timedelta(seconds=max(0.0, policy.pause_timeout - policy.expire_before))
        timers.append((Timer.EXPIRE, expires))
    return Deadlines(claim_due_at=claim_due, decide_due_at=decide_due, expires_at=expires, timers=tuple(timers))


def timer_ref(review_id: str, timer: Timer) -> str:
    return f"{review_id}/{timer.value}"


def parse_ref(ref: str) -> tuple[str, Timer] | None:
    review_id, _, name = ref.partition("/")
    try:
        return review_id, Timer(name)
    except ValueError:
        return None
