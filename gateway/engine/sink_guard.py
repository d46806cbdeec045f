"""What stands between a delivery job and its sink besides the breaker: a disabled sink, its throttle, and the
bookkeeping that disables it (410 Gone at once; ``disable_after_days`` of failures without a success).

Disabled sinks are read from the store at most every ``refresh`` seconds (another replica may have disabled one);
throttles are token buckets kept per replica.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from gateway.core.ratelimit import RateLimit, TokenBuckets
from gateway.domain import errors
from gateway.domain.model import SinkState
from gateway.domain.ports import Clock, NewJob
from gateway.sinks.policy import DeliveryPolicy
from gateway.store.operations_sql import OperationsStore

GONE = 410


class SinkGuard:
    def __init__(self, ops: OperationsStore, clock: Clock, *, refresh: float = 5.0) -> None:
        self.ops = ops
        self.clock = clock
        self.refresh = refresh
        self._disabled: dict[str, SinkState] = {}
        self._read_at: datetime | None = None
        self._throttles: dict[str, TokenBuckets] = {}

    async def disabled(self, sink: str) -> SinkState | None:
        """The sink's state when it is disabled, else None."""
        now = self.clock.now()
        if self._read_at is None or now - self._read_at >= timedelta(seconds=self.refresh):
            states = await self.ops.sink_states()
            self._disabled = {s.sink: s for s in states if s.disabled_at is not None}
            self._read_at = now
        return self._disabled.get(sink)

    def throttle_wait(self, sink: str, policy: DeliveryPolicy) -> float | None:
        """None when a delivery to ``sink`` may go now (a token is spent), else the seconds to wait."""
        if policy.per_second is None:
            return None
        buckets = self._throttles.get(sink)
        if buckets is None:
            buckets = self._throttles[sink] = TokenBuckets(RateLimit(per_second=policy.per_second, burst=1))
        return buckets.take(sink, self.clock.now().timestamp())

    async def after_failure(self, sink: str, exc: errors.SinkError, policy: DeliveryPolicy) -> str | None:
        """Why the sink must be disabled after this failure (410 Gone, failing too long), or None."""
        if isinstance(exc, errors.PermanentSinkError) and exc.status_code == GONE:
            return "the sink answered 410 Gone"
        if policy.disable_after_days is None or isinstance(exc, errors.PermanentSinkError):
            return None
        now = self.clock.now()
        since = await self.ops.note_sink_failure(sink, now)
        if now - since >= timedelta(days=policy.disable_after_days):
            return f"failing since {since.isoformat()} (disable_after_days = {policy.disable_after_days:g})"
        return None

    async def disable(self, sink: str, reason: str, jobs: Sequence[NewJob] = ()) -> bool:
        """Disable ``sink``; True when this call did it (announce it once: ``jobs``, its alert, are queued in the
        same transaction, only then)."""
        now = self.clock.now()
        newly = await self.ops.disable_sink(sink, reason, now, jobs)
        self._disabled[sink] = SinkState(sink=sink, disabled_at=now, disabled_reason=reason)
        return newly

    async def enable(self, sink: str) -> bool:
        """Enable a disabled sink again (an operator's call); False when it was not disabled."""
        self._disabled.pop(sink, None)
        return await self.ops.enable_sink(sink)
