"""Counters the sandbox keeps for test harnesses (``GET /_stats``, with the API's own credentials)."""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.domain.model import JSON
from gateway.sandbox.bounded import BoundedCounter


@dataclass(slots=True, kw_only=True)
class Stats:
    """Mutable on purpose: one instance per sandbox, updated in place by its request handlers and task."""

    runs: int = 0
    creates_by_idempotency_key: BoundedCounter = field(default_factory=BoundedCounter)
    updates_by_run: BoundedCounter = field(default_factory=BoundedCounter)
    webhooks_sent: int = 0  # every POST attempt, retries and duplicates included
    webhooks_delivered: int = 0  # attempts answered 2xx
    webhooks_dropped: int = 0  # messages given up after the last retry

    def as_dict(self) -> JSON:
        return {
            "runs": self.runs,
            "creates_by_idempotency_key": dict(self.creates_by_idempotency_key),
            "updates_by_run": dict(self.updates_by_run),
            "webhooks_sent": self.webhooks_sent,
            "webhooks_delivered": self.webhooks_delivered,
            "webhooks_dropped": self.webhooks_dropped,
        }
