"""One circuit breaker per sink and per provider, kept in memory by the worker (state machine: core/breaker.py).

Keys are ``sink:<name>`` and ``provider:<name>``. A restart closes every breaker: the worst case is a few
extra calls to a target that is still down, which the retry schedule already allows for.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from gateway.core import breaker as rules
from gateway.domain.ports import Clock

log = logging.getLogger("gateway.breakers")


class BreakerBoard:
    def __init__(self, policy: rules.BreakerPolicy, clock: Clock) -> None:
        self.policy = policy
        self._clock = clock
        self._breakers: dict[str, rules.Breaker] = {}

    def admit(self, key: str) -> float | None:
        """None when the call may go; otherwise the seconds to postpone it."""
        admission = rules.admit(self._breakers.get(key, rules.Breaker()), self.policy, self._clock.now())
        self._set(key, admission.breaker)
        return None if admission.allowed else admission.wait

    def record(self, key: str, *, failed: bool) -> rules.BreakerState | None:
        """Take a call's outcome; answers ``open`` when this outcome opened a closed breaker and ``closed`` when it
        closed an open one (the changes an operator is alerted to), else None."""
        current = self._breakers.get(key, rules.Breaker())
        new = rules.record(current, self.policy, self._clock.now(), failed=failed)
        self._set(key, new)
        if current.state == rules.BreakerState.CLOSED and new.state == rules.BreakerState.OPEN:
            return new.state
        if current.state != rules.BreakerState.CLOSED and new.state == rules.BreakerState.CLOSED:
            return new.state
        return None

    def state(self, key: str) -> rules.BreakerState:
        return self._breakers.get(key, rules.Breaker()).state

    def snapshot(self) -> dict[str, Any]:
        return {key: _describe(b) for key, b in sorted(self._breakers.items())}

    def _set(self, key: str, new: rules.Breaker) -> None:
        old = self._breakers.get(key, rules.Breaker())
        if new.state != old.state:
            log.warning("circuit breaker %s", new.state.value, extra={"breaker": key, "state": new.state.value})
        self._breakers[key] = new


def _describe(b: rules.Breaker) -> dict[str, Any]:
    return {
        "state": b.state.value,
        "consecutive_failures": b.consecutive,
        "recent_failures": sum(b.recent),
        "recent_calls": len(b.recent),
        "opened_at": _time(b.opened_at),
    }


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
