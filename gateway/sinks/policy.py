"""Per-sink delivery policy: ``[sinks.NAME]`` may set its own retry schedule, attempt budget, throttle, timeout
and a number of days of failures after which the sink is disabled. Unset keys fall back to ``[worker]``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.core.config_types import ParseContext
from gateway.core.retry import SchedulePolicy


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryPolicy:
    retry_delays: tuple[float, ...] | None = None  # seconds before each retry; None: [worker] delivery_schedule
    max_attempts: int | None = None  # None: one more than the delays
    per_second: float | None = None  # at most this many deliveries a second to this sink (per replica)
    timeout: float | None = None  # seconds one delivery may take, whatever the sink kind
    disable_after_days: float | None = None  # disable the sink (with an alert) after failing this long

    def schedule(self, default: SchedulePolicy) -> SchedulePolicy:
        if self.retry_delays is None:
            return default
        return SchedulePolicy(delays=self.retry_delays, jitter=default.jitter, retry_after_cap=default.retry_after_cap)


def parse_policy(key: str, data: Mapping[str, Any], ctx: ParseContext) -> DeliveryPolicy:
    """The policy keys of one ``[sinks.NAME]`` table (the sink's own module checks the rest)."""
    delays = data.get("retry_delays")
    if delays is not None and (
        not isinstance(delays, list)
        or not all(isinstance(d, int | float) and not isinstance(d, bool) and d >= 0 for d in delays)
    ):
        ctx.problem(f"{key}.retry_delays", "must be a list of non-negative numbers of seconds")
        delays = None

    def optional_number(name: str, minimum: float, maximum: float) -> float | None:
        value = data.get(name)
        return (
            None if value is None else ctx.number(f"{key}.{name}", value, default=0, minimum=minimum, maximum=maximum)
        )

    attempts = data.get("max_attempts")
    return DeliveryPolicy(
        retry_delays=None if delays is None else tuple(float(d) for d in delays),
        max_attempts=None if attempts is None else ctx.integer(f"{key}.max_attempts", attempts, default=1, minimum=1),
        per_second=optional_number("per_second", 0.001, 100_000),
        timeout=optional_number("timeout", 0.1, 300),
        disable_after_days=optional_number("disable_after_days", 0.01, 365),
    )
