"""Typed alerts through one emit(): each type switchable, ids and states only (the builders other parts call)."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

from gateway.config.desk import ALERT_TYPES, AlertSettings
from gateway.core import signing
from gateway.core.config_types import Secret
from gateway.desk.alerts import Alerts, run_alert_jobs
from gateway.domain.model import Run, RunStatus

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


def test_the_held_start_alert_is_built_when_wanted_and_carries_no_payload() -> None:
    settings = alerts(frozenset(ALERT_TYPES)).settings
    (job,) = run_alert_jobs(settings, "run.start_held", RUN, NOW, random.Random(1), detail="create timed out")
    assert job.data is not None and job.data["type"] == "run.start_held"
    assert job.data["data"]["run_id"] == "run_1" and job.data["data"]["detail"] == "create timed out"
    assert "PHI-CANARY" not in str(job.data)


def test_each_type_is_switchable_and_nothing_is_built_without_alerts() -> None:
    only_dead = alerts(frozenset({"delivery.dead"}))
    assert run_alert_jobs(only_dead.settings, "run.start_held", RUN, NOW, random.Random(1)) == []
    assert only_dead.breaker_changed("sink:hook", "open", NOW) == []
    assert len(only_dead.emit("delivery.dead", {"delivery_id": "dlv_1"}, NOW)) == 1
    assert alerts(None).emit("delivery.dead", {"delivery_id": "dlv_1"}, NOW) == []
    (opened,) = alerts(frozenset(ALERT_TYPES)).breaker_changed("provider:sohar", "open", NOW)
    assert opened.data is not None
    assert opened.data["type"] == "breaker.opened" and opened.data["data"]["name"] == "sohar"
