"""The circuit breaker state machine (RELIABILITY.md S7, §6 parameters)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.core.breaker import Breaker, BreakerPolicy, BreakerState, admit, record

T0 = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
POLICY = BreakerPolicy()


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def run(outcomes: list[bool], start: Breaker | None = None) -> Breaker:
    breaker = start or Breaker()
    for i, failed in enumerate(outcomes):
        admission = admit(breaker, POLICY, at(i))
        assert admission.allowed
        breaker = record(admission.breaker, POLICY, at(i), failed=failed)
    return breaker


def test_defaults_match_the_recommended_parameters() -> None:
    assert (POLICY.consecutive_failures, POLICY.window, POLICY.failure_ratio, POLICY.open_seconds) == (5, 20, 0.5, 60)


def test_four_failures_keep_it_closed_and_the_fifth_opens_it() -> None:
    assert run([True] * 4).state == BreakerState.CLOSED
    opened = run([True] * 5)
    assert opened.state == BreakerState.OPEN
    assert opened.opened_at == at(4)


def test_a_success_resets_the_consecutive_count() -> None:
    assert run([True] * 4 + [False] + [True] * 4).state == BreakerState.CLOSED


def test_half_of_the_last_twenty_opens_it_without_five_in_a_row() -> None:
    assert run([True, False] * 9 + [True]).state == BreakerState.CLOSED  # 10 failures, but only 19 calls
    assert run([False] * 3 + [True, False] * 8 + [True]).state == BreakerState.CLOSED  # 9 of 20
    assert run([False] * 2 + [True, False] * 8 + [True, True]).state == BreakerState.OPEN  # 10 of 20
    assert run([True, False] * 10 + [True]).state == BreakerState.OPEN  # the oldest drops out: 10 of the last 20


def test_open_refuses_until_the_period_ends_and_says_how_long() -> None:
    opened = run([True] * 5)
    refused = admit(opened, POLICY, at(4 + 59))
    assert refused.allowed is False
    assert refused.wait == 1.0
    assert refused.breaker == opened


def test_one_half_open_probe_then_refusals() -> None:
    opened = run([True] * 5)
    probe = admit(opened, POLICY, at(64))
    assert probe.allowed
    assert probe.breaker.state == BreakerState.HALF_OPEN
    second = admit(probe.breaker, POLICY, at(65))
    assert second.allowed is False
    assert second.wait == POLICY.probe_wait
    assert second.breaker == probe.breaker


def test_probe_success_closes_and_forgets_the_history() -> None:
    probe = admit(run([True] * 5), POLICY, at(64))
    closed = record(probe.breaker, POLICY, at(64), failed=False)
    assert closed == Breaker()


def test_probe_failure_opens_it_again_for_a_full_period() -> None:
    probe = admit(run([True] * 5), POLICY, at(64))
    reopened = record(probe.breaker, POLICY, at(66), failed=True)
    assert reopened.state == BreakerState.OPEN
    assert not admit(reopened, POLICY, at(66 + 59)).allowed
    assert admit(reopened, POLICY, at(66 + 60)).allowed


def test_a_lost_probe_is_replaced_after_the_open_period() -> None:
    probe = admit(run([True] * 5), POLICY, at(64))
    assert not admit(probe.breaker, POLICY, at(64 + 59)).allowed
    again = admit(probe.breaker, POLICY, at(64 + 60))
    assert again.allowed
    assert again.breaker.probe_at == at(124)


def test_late_outcomes_of_calls_admitted_before_opening_change_nothing() -> None:
    opened = run([True] * 5)
    assert record(opened, POLICY, at(10), failed=False) == opened
    assert record(opened, POLICY, at(10), failed=True) == opened
