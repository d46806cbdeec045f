"""Settings of issue 10's provider edge cases: ambiguous_start (per provider, per flow, and its default), the
missing-run confirmations and the startup sweep."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.config.settings import parse_settings
from gateway.domain.errors import ConfigError
from gateway.domain.model import Run, RunStatus
from gateway.engine import starts
from tests.support import FrozenClock, example_data, example_settings


class Provider:
    def __init__(self, idempotent_start: bool) -> None:
        self.idempotent_start = idempotent_start


def a_run(flow: str, provider: str) -> Run:
    now = FrozenClock().now()
    return Run(
        id="run_1",
        event_id="evt_1",
        route="r",
        flow=flow,
        provider=provider,
        template="t",
        status=RunStatus.QUEUED,
        idempotency_key="k",
        created_at=now,
        updated_at=now,
    )


def test_the_defaults(tmp_path: Path) -> None:
    settings = example_settings(tmp_path)
    assert (settings.worker.missing_run_confirmations, settings.worker.missing_run_interval) == (3, 60.0)
    assert settings.worker.startup_sweep_rate == 20.0
    assert settings.providers["transactionlink"].ambiguous_start is None
    assert settings.flows["tl-screening"].ambiguous_start is None


def test_ambiguous_start_holds_unless_an_honoured_key_or_a_setting_says_retry(tmp_path: Path) -> None:
    data = example_data(tmp_path)
    data["providers"]["reminix"]["ambiguous_start"] = "retry"
    data["flows"]["tl-screening"]["ambiguous_start"] = "retry"
    data["flows"]["infsh-check"]["ambiguous_start"] = "hold"
    settings = parse_settings(data, {})
    assert starts.policy(settings, Provider(False), a_run("eligibility", "sohar")) == starts.HOLD
    assert starts.policy(settings, Provider(True), a_run("eligibility", "sohar")) == starts.RETRY
    assert starts.policy(settings, Provider(False), a_run("prior-auth", "reminix")) == starts.RETRY
    assert starts.policy(settings, Provider(False), a_run("tl-screening", "transactionlink")) == starts.RETRY
    assert starts.policy(settings, Provider(True), a_run("infsh-check", "inferencesh")) == starts.HOLD


def test_bad_values_are_reported(tmp_path: Path) -> None:
    data = example_data(tmp_path)
    data["providers"]["sohar"]["ambiguous_start"] = "guess"
    data["flows"]["eligibility"]["ambiguous_start"] = 1
    data["worker"].update(missing_run_confirmations=0, missing_run_interval=-1, startup_sweep_rate="fast")
    with pytest.raises(ConfigError) as caught:
        parse_settings(data, {})
    assert sorted(p.split(":")[0] for p in caught.value.problems) == [
        "flows.eligibility.ambiguous_start",
        "providers.sohar.ambiguous_start",
        "worker.missing_run_confirmations",
        "worker.missing_run_interval",
        "worker.startup_sweep_rate",
    ]
