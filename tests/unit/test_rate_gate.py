from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.providers._ratelimit import DEFAULT_WAIT, RateGate

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def test_open_until_the_budget_is_spent() -> None:
    gate = RateGate()
    gate.observe({"x-ratelimit-remaining": "5", "x-ratelimit-reset": "30"}, T0)
    assert gate.wait(T0) == 0.0
    gate.observe({"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(T0.timestamp()) + 30)}, T0)
    assert gate.wait(T0) == 30.0
    assert gate.wait(T0 + timedelta(seconds=10)) == 20.0
    assert gate.wait(T0 + timedelta(seconds=30)) == 0.0


def test_delay_form_missing_reset_and_cap() -> None:
    gate = RateGate(cap=100)
    gate.observe({"x-ratelimit-remaining": "0", "x-ratelimit-reset": "12"}, T0)
    assert gate.wait(T0) == 12.0
    gate = RateGate(cap=100)
    gate.observe({"x-ratelimit-remaining": "0"}, T0)
    assert gate.wait(T0) == DEFAULT_WAIT
    gate = RateGate(cap=100)
    gate.observe({"x-ratelimit-remaining": "0", "x-ratelimit-reset": "99999"}, T0)
    assert gate.wait(T0) == 100.0


def test_garbage_headers_are_ignored_and_blocks_only_grow() -> None:
    gate = RateGate()
    gate.observe({"x-ratelimit-remaining": "none"}, T0)
    assert gate.wait(T0) == 0.0
    gate.block(10, T0)
    gate.block(2, T0)
    assert gate.wait(T0) == 10.0
