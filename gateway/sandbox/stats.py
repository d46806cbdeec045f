"""Counters the sandbox keeps for test harnesses (``GET /_stats``)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from gateway.model import JSON


@dataclass(slots=True, kw_only=True)
class Stats:
    """Mutable on purpose: one instance per sandbox, updated in place by its request handlers and task."""

    runs: int = 0
    creates_by_idempotency_key: Counter[str] = field(default_factory=Counter)
    updates_by_run: Counter[str] = field(default_factory=Counter)
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
