"""A client-side rate-limit gate fed by the provider's own headers. Pure: the caller passes ``now``.

When a response says ``X-RateLimit-Remaining: 0`` (or a 429 asks for ``Retry-After``), the gate closes until
``X-RateLimit-Reset`` (a Unix time or a delay); callers ask ``wait(now)`` before each request and wait that
long instead of spending an attempt on a request the provider would refuse.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.outbound import http as _http

DEFAULT_WAIT = 1.0  # remaining hit 0 but no usable reset header came with it


@dataclass(slots=True)
class RateGate:
    cap: float = _http.MAX_RETRY_AFTER
    _until: datetime | None = None

    def observe(self, headers: Mapping[str, str], now: datetime) -> None:
        """Close the gate when the provider says the budget is spent."""
        if not _http.budget_spent(headers):
            return
        delay = _http.parse_rate_limit_reset(headers.get("x-ratelimit-reset"), now)
        self.block(DEFAULT_WAIT if delay is None else delay, now)

    def block(self, seconds: float, now: datetime) -> None:
        until = now + timedelta(seconds=min(max(seconds, 0.0), self.cap))
        if self._until is None or until > self._until:
            self._until = until

    def wait(self, now: datetime) -> float:
        """Seconds to wait before the next request (0 when the gate is open)."""
        if self._until is None:
            return 0.0
        left = (self._until - now).total_seconds()
        if left <= 0:
            self._until = None
            return 0.0
        return left
