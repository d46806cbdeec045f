"""Small pieces: the worker's reconcile settings, poll intervals, the rate gate, the reconciler's loop."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.config.settings import parse_settings
from gateway.domain import errors
from gateway.domain.errors import ConfigError
from gateway.engine.reconciler import poll_interval
from gateway.providers._ratelimit import RateGate
from tests.support import example_data, example_settings, running_gateway

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def test_reconcile_settings(tmp_path: Path) -> None:
    settings = example_settings(tmp_path)
    assert (settings.worker.reconcile_after, settings.worker.reconcile_every, settings.worker.repair_stuck) == (
        900.0,
        30.0,
        True,
    )
    data = example_data(tmp_path)
    data["worker"].update(reconcile_after=0, reconcile_every="often", repair_stuck="yes")
    with pytest.raises(ConfigError) as caught:
        parse_settings(data, {})
    assert [p for p in caught.value.problems if "reconcile" in p or "repair" in p] == [
        "worker.reconcile_after: must be between 1 and 604800",
        "worker.reconcile_every: must be a number",
        "worker.repair_stuck: must be true or false",
    ]


async def test_poll_intervals_and_pass_period(tmp_path: Path) -> None:
    async with running_gateway(example_settings(tmp_path)) as gw:
        providers = gw.services.providers
        assert poll_interval(providers["sohar"]) is None
        assert poll_interval(providers["reminix"]) == 2.0
        assert gw.services.reconciler is not None
        assert gw.services.reconciler.every == 2.0


async def test_the_loop_runs_passes_until_stopped(tmp_path: Path) -> None:
    async with running_gateway(example_settings(tmp_path)) as gw:
        reconciler = gw.services.reconciler
        assert reconciler is not None
        reconciler.start()
        reconciler.start()  # idempotent
        await asyncio.sleep(0.01)
        await reconciler.stop()
        await reconciler.stop()


def test_rate_gate() -> None:
    gate = RateGate("p")
    gate.check(T0)
    gate.observe({"x-ratelimit-remaining": "3", "x-ratelimit-reset": "60"}, T0)
    gate.check(T0)
    gate.observe({"x-ratelimit-remaining": "0", "x-ratelimit-reset": "60"}, T0)
    with pytest.raises(errors.TransientProviderError) as held:
        gate.check(T0 + timedelta(seconds=20))
    assert (held.value.status_code, held.value.retry_after) == (429, 40)
    gate.block(10, T0)  # a shorter wait never shortens the one in force
    with pytest.raises(errors.TransientProviderError):
        gate.check(T0 + timedelta(seconds=30))
    gate.check(T0 + timedelta(seconds=60))
    gate.observe({"x-ratelimit-remaining": "0"}, T0 + timedelta(seconds=60))  # no reset: a short pause
    with pytest.raises(errors.TransientProviderError):
        gate.check(T0 + timedelta(seconds=60.5))
    gate.check(T0 + timedelta(seconds=61))
