"""A review whose pause point is unknown answers the flow's configured pause points, never nothing (issue 10.2)."""

from __future__ import annotations

from gateway.core.review import answerable, validate_any
from gateway.domain.model import PendingInput

REVIEW = PendingInput(key="await-review", options=["approve", "deny"])
AMEND = PendingInput(
    key="await-amendment",
    schema={"type": "object", "required": ["note"], "properties": {"note": {"type": "string"}}},
)
UNKNOWN = PendingInput()


def test_a_known_pause_point_answers_only_itself() -> None:
    assert answerable(REVIEW, [REVIEW, AMEND]) == [REVIEW]


def test_a_request_the_provider_described_answers_itself_without_a_key() -> None:
    described = PendingInput(options=["yes", "no"])
    assert answerable(described, [REVIEW, AMEND]) == [described]


def test_an_unknown_pause_point_answers_the_flows_pause_points() -> None:
    assert answerable(UNKNOWN, [REVIEW, AMEND]) == [REVIEW, AMEND]
    assert answerable(UNKNOWN, []) == [UNKNOWN]  # the flow configures nothing: nothing to check against


def test_an_input_that_fits_no_configured_pause_point_is_refused() -> None:
    requests = answerable(UNKNOWN, [REVIEW, AMEND])
    (problem,) = validate_any(requests, {"decision": "maybe-later"})
    assert "pause point is not known yet" in problem
    assert "await-review: input.decision must be one of: approve, deny" in problem
    assert "await-amendment: input.note is required" in problem


def test_an_input_that_fits_one_configured_pause_point_is_taken() -> None:
    requests = answerable(UNKNOWN, [REVIEW, AMEND])
    assert validate_any(requests, {"decision": "deny"}) == []
    assert validate_any(requests, {"note": "fix the payer id"}) == []


def test_a_single_request_reports_its_own_problems() -> None:
    assert validate_any([REVIEW], {"decision": "maybe-later"}) == ["input.decision must be one of: approve, deny"]
    assert validate_any([REVIEW], "not an object") == ["input must be a JSON object"]


def test_the_refusal_names_each_pause_point_and_all_its_problems() -> None:
    two_fields = PendingInput(schema={"type": "object", "required": ["a", "b"]})
    (problem,) = validate_any([REVIEW, two_fields], {"decision": "maybe-later"})
    assert problem == (
        "the pause point is not known yet, and the input fits none of the flow's pause points "
        "(await-review: input.decision must be one of: approve, deny | *: input.a is required; input.b is required)"
    )
