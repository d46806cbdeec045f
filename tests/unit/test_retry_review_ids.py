"""Retry timing, review input validation and sortable ids: small pure modules."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.core import retry
from gateway.core import review as review_rules
from gateway.core.ids import new_id
from gateway.domain.model import PendingInput

T0 = datetime(2026, 1, 1, tzinfo=UTC)

# retry --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("attempt", "ceiling"), [(0, 1.0), (1, 2.0), (3, 8.0), (6, 60.0), (200, 60.0)])
def test_backoff_is_full_jitter_under_a_capped_ceiling(attempt: int, ceiling: float) -> None:
    policy = retry.BackoffPolicy(base=1.0, cap=60.0)
    rng = random.Random(1)
    delays = [retry.backoff_delay(attempt, policy, rng) for _ in range(300)]
    assert all(0 <= d <= ceiling for d in delays)
    assert max(delays) > ceiling * 0.9  # spread over the whole range, not fixed
    assert min(delays) < ceiling * 0.1


def test_backoff_is_deterministic_for_a_seeded_rng() -> None:
    policy = retry.BackoffPolicy()
    assert retry.backoff_delay(4, policy, random.Random(3)) == retry.backoff_delay(4, policy, random.Random(3))


def test_schedule_follows_the_delays_within_jitter_then_gives_up() -> None:
    policy = retry.SchedulePolicy(delays=(5, 300, 1800), jitter=0.2)
    rng = random.Random(2)
    assert policy.max_attempts == 4
    for attempt, base in enumerate((5, 300, 1800), start=1):
        delay = retry.schedule_delay(attempt, policy, rng)
        assert delay is not None and base * 0.8 <= delay <= base * 1.2
    assert retry.schedule_delay(4, policy, rng) is None
    assert retry.schedule_delay(0, policy, rng) is None


def test_schedule_jitter_spreads_both_ways() -> None:
    policy = retry.SchedulePolicy(delays=(100,), jitter=0.2)
    rng = random.Random(4)
    delays = [retry.schedule_delay(1, policy, rng) for _ in range(200)]
    assert min(d for d in delays if d is not None) < 90 and max(d for d in delays if d is not None) > 110


def test_backoff_doubles_at_most_30_times() -> None:
    policy = retry.BackoffPolicy(base=1.0, cap=2.0**40)
    rng = random.Random(5)
    delays = [retry.backoff_delay(500, policy, rng) for _ in range(200)]
    assert max(delays) <= 2.0**30 and max(delays) > 2.0**29


def test_schedule_without_jitter_is_exact() -> None:
    policy = retry.SchedulePolicy(delays=(7,), jitter=0)
    assert retry.schedule_delay(1, policy, random.Random()) == 7


def test_max_attempts_cuts_the_schedule_short_or_repeats_its_last_delay() -> None:
    policy = retry.SchedulePolicy(delays=(5, 10), jitter=0)
    rng = random.Random()
    assert retry.schedule_delay(1, policy, rng, max_attempts=2) == 5
    assert retry.schedule_delay(2, policy, rng, max_attempts=2) is None
    assert [retry.schedule_delay(n, policy, rng, max_attempts=5) for n in range(1, 6)] == [5, 10, 10, 10, None]


def test_default_schedule_is_the_standard_webhooks_example() -> None:
    assert tuple(retry.SchedulePolicy().delays) == (5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400)


@pytest.mark.parametrize(
    ("delay", "retry_after", "expected"),
    [
        (10.0, None, 10.0),
        (10.0, 30.0, 30.0),  # the server asks for longer: honoured
        (10.0, 2.0, 10.0),  # the server asks for less: our delay stands
        (10.0, 99999.0, 3600.0),  # Retry-After is capped
    ],
)
def test_next_attempt_at(delay: float, retry_after: float | None, expected: float) -> None:
    assert retry.next_attempt_at(T0, delay, retry_after, 3600.0) == T0 + timedelta(seconds=expected)


def test_next_attempt_at_gives_up_without_a_delay() -> None:
    assert retry.next_attempt_at(T0, None, 5.0, 3600.0) is None


# review -------------------------------------------------------------------------------------------

SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["decision"],
    "additionalProperties": False,
    "properties": {
        "decision": {"type": "string", "enum": ["approve", "deny"]},
        "note": {"type": "string", "minLength": 2, "maxLength": 5},
        "score": {"type": "integer", "minimum": 0, "maximum": 10},
        "ratio": {"type": "number"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "flag": {"type": ["boolean", "null"]},
        "fixed": {"const": "x"},
    },
}


@pytest.mark.parametrize(
    "value",
    [
        {"decision": "approve"},
        {"decision": "deny", "note": "ok", "score": 10, "ratio": 0.5, "tags": ["a"], "flag": None, "fixed": "x"},
        {"decision": "deny", "ratio": 3, "flag": True},
    ],
)
def test_schema_accepts(value: Any) -> None:
    assert review_rules.validate_input(PendingInput(schema=SCHEMA), value) == []


@pytest.mark.parametrize(
    ("value", "problems"),
    [
        ([], ["input must be a JSON object"]),
        ("approve", ["input must be a JSON object"]),
        ({}, ["input.decision is required"]),
        ({"decision": "maybe"}, ['input.decision must be one of: "approve", "deny"']),
        (
            {"decision": 1},
            ["input.decision must be of type string", 'input.decision must be one of: "approve", "deny"'],
        ),
        ({"decision": "deny", "extra": 1}, ["input.extra is not allowed"]),
        ({"decision": "deny", "note": "x"}, ["input.note is shorter than 2"]),
        ({"decision": "deny", "note": "toolong"}, ["input.note is longer than 5"]),
        ({"decision": "deny", "score": -1}, ["input.score is below 0"]),
        ({"decision": "deny", "score": 11}, ["input.score is above 10"]),
        ({"decision": "deny", "score": 1.5}, ["input.score must be of type integer"]),
        ({"decision": "deny", "score": True}, ["input.score must be of type integer"]),
        ({"decision": "deny", "ratio": False}, ["input.ratio must be of type number"]),
        ({"decision": "deny", "tags": ["a", 2]}, ["input.tags[1] must be of type string"]),
        ({"decision": "deny", "flag": "yes"}, ["input.flag must be of type boolean or null"]),
        ({"decision": "deny", "fixed": "y"}, ['input.fixed must be "x"']),
        (
            {"extra": 1, "score": 99},
            ["input.decision is required", "input.extra is not allowed", "input.score is above 10"],
        ),
    ],
)
def test_schema_refuses_with_every_problem(value: Any, problems: list[str]) -> None:
    assert review_rules.validate_input(PendingInput(schema=SCHEMA), value) == problems


def test_options_are_checked_on_the_decision_member() -> None:
    request = PendingInput(options=["approve", "deny"])
    assert review_rules.validate_input(request, {"decision": "approve", "note": "free"}) == []
    assert review_rules.validate_input(request, {"decision": "other"}) == [
        "input.decision must be one of: approve, deny"
    ]
    assert review_rules.validate_input(request, {}) == ["input.decision must be one of: approve, deny"]


def test_a_request_without_options_or_schema_takes_any_object() -> None:
    assert review_rules.validate_input(PendingInput(), {"anything": [1]}) == []
    assert review_rules.validate_input(PendingInput(), None) == ["input must be a JSON object"]


def test_merge_request_prefers_the_provider_and_fills_from_config() -> None:
    provided = PendingInput(key="await", kind="callback", message=None, options=None)
    configured = PendingInput(key="cfg", kind="form", message="Approve?", options=["a"], schema={"type": "object"})
    merged = review_rules.merge_request(provided, configured)
    assert merged == PendingInput(
        key="await", kind="callback", message="Approve?", options=["a"], schema={"type": "object"}
    )
    assert review_rules.merge_request(None, configured) == configured
    assert review_rules.merge_request(provided, None) == provided
    assert review_rules.merge_request(None, None) == PendingInput()


# ids ----------------------------------------------------------------------------------------------


def test_ids_have_a_prefix_and_a_fixed_length() -> None:
    made = new_id("run", T0, random.Random(1))
    assert made.startswith("run_")
    assert len(made) == 4 + 26
    assert set(made[4:]) <= set("0123456789abcdefghjkmnpqrstvwxyz")


def test_ids_sort_by_creation_time() -> None:
    rng = random.Random(5)
    moments = [T0 + timedelta(milliseconds=ms) for ms in (0, 1, 2, 999, 1000, 86_400_000, 10**11)]
    made = [new_id("evt", moment, rng) for moment in moments]
    assert sorted(made) == made


def test_ids_in_the_same_millisecond_differ() -> None:
    rng = random.Random(5)
    assert len({new_id("run", T0, rng) for _ in range(1000)}) == 1000
