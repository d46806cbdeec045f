from __future__ import annotations

import pytest

from gateway.domain import errors
from gateway.sandbox import engine, paths
from gateway.sandbox.engine import FlowStatus, RunState
from gateway.sandbox.functions import coverage_lookup
from gateway.sandbox.templates import ChoiceRule, ChoiceState, EndState, Template

from .conftest import make_settings

TEMPLATES = make_settings().templates
ELIGIBILITY = TEMPLATES["eligibility-check"]


def run_until_stopped(template: Template, run: RunState) -> RunState:
    run = engine.advance(template, run)
    while run.status is FlowStatus.IN_PROGRESS:
        run = engine.advance(template, run)
    return run


def path(text: str) -> paths.Path:
    parsed = paths.parse(text)
    assert parsed is not None
    return parsed


def test_start_is_created_at_the_first_state_with_the_input_in_context() -> None:
    run = engine.start(ELIGIBILITY, {"patientId": "p-1"})
    assert run == RunState(
        status=FlowStatus.CREATED, state_id="lookup-coverage", context={"input": {"patientId": "p-1"}}
    )


def test_first_advance_enters_the_start_state() -> None:
    run = engine.advance(ELIGIBILITY, engine.start(ELIGIBILITY, {"patientId": "p-1"}))
    assert (run.status, run.state_id) == (FlowStatus.IN_PROGRESS, "lookup-coverage")
    assert "coverage" not in run.context


def test_request_state_stores_its_result_and_the_callback_state_pauses() -> None:
    run = run_until_stopped(ELIGIBILITY, engine.start(ELIGIBILITY, {"patientId": "p-1"}))
    assert (run.status, run.state_id) == (FlowStatus.PENDING, "await-decision")
    assert run.context["coverage"] == coverage_lookup({"input": {"patientId": "p-1"}})
    assert run.context["coverage"]["active"] is True


def test_coverage_lookup_is_deterministic_and_inactive_for_ids_ending_in_zero() -> None:
    first = coverage_lookup({"input": {"patientId": "p-10"}})
    assert first == coverage_lookup({"input": {"patientId": "p-10"}})
    assert isinstance(first, dict) and first["active"] is False
    assert coverage_lookup({"input": {"patientId": "p-11"}}) != first


def test_failing_request_ends_the_run_in_error_at_that_state() -> None:
    run = run_until_stopped(ELIGIBILITY, engine.start(ELIGIBILITY, {}))
    assert run.status is FlowStatus.ERROR
    assert run.errors == (
        {"status": 400, "param": "patientId", "error": "invalid_request_error", "state": "lookup-coverage"},
    )


@pytest.mark.parametrize(("decision", "end"), [("approve", "approved"), ("deny", "denied")])
def test_resume_continues_through_the_choice_to_the_end(decision: str, end: str) -> None:
    paused = run_until_stopped(ELIGIBILITY, engine.start(ELIGIBILITY, {"patientId": "p-1"}))
    resumed = engine.resume(ELIGIBILITY, paused, {"decision": decision})
    assert (resumed.status, resumed.state_id) == (FlowStatus.IN_PROGRESS, "await-decision")
    assert resumed.context["review"] == {"decision": decision}
    done = run_until_stopped(ELIGIBILITY, resumed)
    assert (done.status, done.state_id) == (FlowStatus.COMPLETE, end)
    assert engine.output(ELIGIBILITY, done) == {"patientId": "p-1", "eligible": True, "decision": decision}


@pytest.mark.parametrize(
    ("given", "problem"),
    [
        ({}, "input.decision: is required"),
        ({"decision": "maybe"}, "input.decision: must be one of the allowed values"),
        ({"decision": 1}, "input.decision: must be of type string"),
    ],
)
def test_resume_validates_the_callback_input_schema(given: dict[str, object], problem: str) -> None:
    paused = run_until_stopped(ELIGIBILITY, engine.start(ELIGIBILITY, {"patientId": "p-1"}))
    with pytest.raises(errors.InvalidInput) as caught:
        engine.resume(ELIGIBILITY, paused, given)
    assert caught.value.message == problem
    assert "maybe" not in caught.value.message


def test_resume_refuses_a_run_that_is_not_pending() -> None:
    run = engine.advance(ELIGIBILITY, engine.start(ELIGIBILITY, {"patientId": "p-1"}))
    with pytest.raises(errors.Conflict):
        engine.resume(ELIGIBILITY, run, {"decision": "approve"})


def test_paused_and_finished_runs_do_not_advance() -> None:
    paused = run_until_stopped(ELIGIBILITY, engine.start(ELIGIBILITY, {"patientId": "p-1"}))
    assert engine.advance(ELIGIBILITY, paused) is paused
    done = run_until_stopped(ELIGIBILITY, engine.resume(ELIGIBILITY, paused, {"decision": "deny"}))
    assert engine.advance(ELIGIBILITY, done) is done


def test_output_holds_only_what_was_gathered_until_complete() -> None:
    paused = run_until_stopped(ELIGIBILITY, engine.start(ELIGIBILITY, {"patientId": "p-20"}))
    assert engine.output(ELIGIBILITY, paused) == {"patientId": "p-20", "eligible": False}
    auto = TEMPLATES["auto-check"]
    done = run_until_stopped(auto, engine.start(auto, {}))
    assert done.status is FlowStatus.ERROR
    complete = run_until_stopped(auto, engine.start(auto, {"patientId": "p-3"}))
    assert complete.status is FlowStatus.COMPLETE
    assert set(engine.output(auto, complete)) == {"patientId", "eligible", "payer"}


def test_output_is_null_for_paths_a_complete_run_never_filled() -> None:
    run = RunState(status=FlowStatus.COMPLETE, state_id="approved", context={"input": {}})
    assert engine.output(ELIGIBILITY, run) == {"patientId": None, "eligible": None, "decision": None}


def choice(*rules: ChoiceRule, default: str | None = None) -> ChoiceState:
    return ChoiceState(id="route", rules=rules, default=default)


def test_choice_rules_match_in_order_and_fall_back_to_default() -> None:
    state = choice(
        ChoiceRule(path=path("$.a"), operator="equals", value="x", next="is-x"),
        ChoiceRule(path=path("$.a"), operator="in", value=["y", "z"], next="y-or-z"),
        ChoiceRule(path=path("$.b"), operator="not_equals", value=True, next="b-not-true"),
        default="fallback",
    )
    assert engine.choose(state, {"a": "x", "b": False}) == "is-x"
    assert engine.choose(state, {"a": "z"}) == "y-or-z"
    assert engine.choose(state, {"a": "q"}) == "b-not-true"
    assert engine.choose(state, {"a": "q", "b": True}) == "fallback"
    assert engine.choose(choice(), {}) is None


def test_a_choice_without_a_match_or_default_ends_in_error() -> None:
    template = TEMPLATES["rejects"]
    small = run_until_stopped(template, engine.start(template, {"value": 2}))
    assert (small.status, small.state_id) == (FlowStatus.COMPLETE, "small")
    unmatched = run_until_stopped(template, engine.start(template, {"value": 3}))
    assert unmatched.status is FlowStatus.ERROR
    assert unmatched.errors == ({"status": 400, "param": "", "error": "no_matching_choice", "state": "route"},)


def test_an_error_end_state_ends_the_run_in_error_with_its_item() -> None:
    template = TEMPLATES["rejects"]
    run = run_until_stopped(template, engine.start(template, {"value": 9}))
    assert (run.status, run.state_id) == (FlowStatus.ERROR, "refused")
    assert run.errors == ({"status": 422, "param": "value", "error": "value_refused", "state": "refused"},)
    assert engine.output(template, run) == {"echoed": 9}


def test_a_template_that_loops_without_pausing_is_stopped() -> None:
    template = Template(
        id="loop",
        starts_at="a",
        states={
            "a": ChoiceState(id="a", rules=(), default="b"),
            "b": ChoiceState(id="b", rules=(), default="a"),
        },
        output={},
    )
    run = run_until_stopped(template, engine.start(template, {}))
    assert run.status is FlowStatus.ERROR
    assert run.errors[0]["error"] == "step_limit_exceeded"
    assert run.steps == engine.MAX_STEPS


def test_template_input_schema_is_checked_at_start() -> None:
    template = Template(
        id="strict",
        starts_at="end",
        states={"end": EndState(id="end")},
        output={},
        input_schema={
            "type": "object",
            "required": ["patientId"],
            "properties": {"patientId": {"type": "string"}},
            "additionalProperties": False,
        },
    )
    with pytest.raises(errors.InvalidInput) as caught:
        engine.start(template, {"other": 1})
    assert caught.value.message == "inputData.patientId: is required; inputData.other: is not allowed"
    assert engine.start(template, {"patientId": "p"}).status is FlowStatus.CREATED
