"""A per-provider rate gate fed by the provider's own headers. Pure: the caller passes ``now``.

When a response says ``X-RateLimit-Remaining: 0`` (or a 429 asks for ``Retry-After``), the gate closes until
``X-RateLimit-Reset`` (a Unix time or a delay). A provider then either waits (``wait(now)``: the seconds left,
inference.sh) or fails fast (``check(now)``: a TransientProviderError with status 429 and ``retry_after`` the
seconds left, Reminix); the job layer postpones a 429 by its ``retry_after`` without counting it as a failed
attempt, so a rate limit slows runs down and never fails them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.domain import errors
from gateway.outbound import http as _http

DEFAULT_WAIT = 1.0  # remaining hit 0 but no usable reset header came with it


@dataclass(slots=True)
class RateGate:
    name: str = ""  # the provider, for the message of ``check``
    cap: float = _http.MAX_RETRY_AFTER  # the longest wait a header can impose
    _until: datetime | None = None

    def observe(self, headers: Mapping[str, str], now: datetime) -> None:
        """After an answer: close the gate when the provider says the budget is spent (until the reset)."""
        if not _http.budget_spent(headers):
            return
        delay = _http.parse_rate_limit_reset(headers.get("x-ratelimit-reset"), now)
        self.block(DEFAULT_WAIT if delay is None else delay, now)

    def block(self, seconds: float, now: datetime) -> None:
        """Hold calls for ``seconds`` (after a 429, its Retry-After); never shortens a longer wait."""
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

    def check(self, now: datetime) -> None:
        """Raise when the provider asked us to wait and the wait is not over."""
        wait = self.wait(now)
        if wait > 0:
            raise errors.TransientProviderError(
                f"{self.name}: rate limited for another {wait:.0f}s", status_code=429, retry_after=wait
            )
