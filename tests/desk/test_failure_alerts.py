"""Typed alerts through one emit(): each type switchable, ids and states only (the builders other parts call)."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

from gateway.config_types import Secret
from gateway.core import signing
from gateway.desk.alerts import Alerts
from gateway.desk.settings import ALERT_TYPES, AlertSettings
from gateway.model import Run, RunStatus

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
RUN = Run(
    id="run_1",
    event_id="evt_1",
    route="r",
    flow="f",
    provider="sohar",
    template="t",
    status=RunStatus.QUEUED,
    idempotency_key="k",
    created_at=NOW,
    updated_at=NOW,
    input={"patient": "PHI-CANARY"},
)


def alerts(events: frozenset[str] | None) -> Alerts:
    settings = None
    if events is not None:
        secret = Secret(signing.generate_secret(b"a" * 32))
        settings = AlertSettings(url="https://alerts.test/hook", secrets=(secret,), events=events)
    unused: Any = None  # building an alert touches neither the HTTP client, the store nor the clock
    return Alerts(settings, public_url="https://gw.test", http=unused, store=unused, clock=unused, rng=random.Random(1))


def test_the_ambiguous_start_alert_is_built_when_wanted_and_carries_no_payload() -> None:
    (job,) = alerts(frozenset(ALERT_TYPES)).ambiguous_start_held(RUN, "create timed out, no idempotency key", NOW)
    assert job.data is not None and job.data["type"] == "run.ambiguous_start_held"
    assert job.data["data"]["run_id"] == "run_1" and job.data["data"]["url"] == "https://gw.test/ui/runs/run_1"
    assert "PHI-CANARY" not in str(job.data)


def test_each_type_is_switchable_and_nothing_is_built_without_alerts() -> None:
    only_dead = alerts(frozenset({"delivery.dead"}))
    assert only_dead.ambiguous_start_held(RUN, "x", NOW) == []
    assert only_dead.breaker_changed("sink:hook", "open", NOW) == []
    assert len(only_dead.emit("delivery.dead", {"delivery_id": "dlv_1"}, NOW)) == 1
    assert alerts(None).emit("delivery.dead", {"delivery_id": "dlv_1"}, NOW) == []
    (opened,) = alerts(frozenset(ALERT_TYPES)).breaker_changed("provider:sohar", "open", NOW)
    assert opened.data is not None
    assert opened.data["type"] == "breaker.opened" and opened.data["data"]["name"] == "sohar"
