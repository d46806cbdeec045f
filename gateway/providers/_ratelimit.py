"""A per-provider gate that honours rate-limit headers: once the provider says "no more until T", calls fail fast
with a TransientProviderError (status 429, retry_after = seconds left) instead of being sent.

The job layer postpones a 429 by its ``retry_after`` without counting it as a failed attempt, so a rate limit
slows runs down and never fails them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from gateway.domain import errors
from gateway.outbound import http as _http


class RateGate:
    def __init__(self, name: str) -> None:
        self._name = name
        self._closed_until: datetime | None = None

    def check(self, now: datetime) -> None:
        """Raise when the provider asked us to wait and the wait is not over."""
        until = self._closed_until
        if until is not None and now < until:
            wait = (until - now).total_seconds()
            raise errors.TransientProviderError(
                f"{self._name}: rate limited for another {wait:.0f}s", status_code=429, retry_after=wait
            )

    def observe(self, headers: Mapping[str, str], now: datetime) -> None:
        """After a 2xx: close the gate when ``X-RateLimit-Remaining`` reached 0 (until the reset)."""
        if not _http.budget_spent(headers):
            return
        delay = _http.parse_rate_limit_reset(headers.get("x-ratelimit-reset"), now)
        self.close(now, delay if delay is not None else 1.0)

    def close(self, now: datetime, seconds: float | None) -> None:
        """Hold calls for ``seconds`` (after a 429, its Retry-After); never shortens a longer wait."""
        if seconds is None or seconds <= 0:
            return
        until = now + timedelta(seconds=min(seconds, _http.MAX_RETRY_AFTER))
        if self._closed_until is None or until > self._closed_until:
            self._closed_until = until
