"""Runs a flow template, one state at a time. Pure and deterministic: no I/O, no clock, no randomness.

A run starts CREATED at the template's ``starts_at``. ``advance`` enters the first state, then executes the
current state and enters the next: entering a ``callback`` state pauses the run (PENDING), entering an
``end`` state finishes it (COMPLETE or ERROR), any other state keeps it IN_PROGRESS. ``resume`` stores
Update Run input at a PENDING callback state and sets the run IN_PROGRESS again.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from gateway.domain import errors
from gateway.domain.model import JSON
from gateway.sandbox import paths, schema
from gateway.sandbox.functions import FUNCTIONS, StepError
from gateway.sandbox.templates import CallbackState, ChoiceRule, ChoiceState, EndState, RequestState, Template

MAX_STEPS = 1000  # stops a template that loops without pausing


class FlowStatus(enum.StrEnum):
    CREATED = "CREATED"
    IN_PROGRESS = "IN_PROGRESS"
    PENDING = "PENDING"
    COMPLETE = "COMPLETE"
    ERROR = "ERROR"


@dataclass(frozen=True, slots=True, kw_only=True)
class RunState:
    status: FlowStatus
    state_id: str
    context: Mapping[str, Any]
    errors: tuple[JSON, ...] = ()
    steps: int = 0


def start(template: Template, input_data: Mapping[str, Any]) -> RunState:
    """A new run; raises InvalidInput when ``input_data`` does not fit the template's input schema."""
    if template.input_schema is not None:
        _require_valid(input_data, template.input_schema, "inputData")
    return RunState(status=FlowStatus.CREATED, state_id=template.starts_at, context={"input": dict(input_data)})


def advance(template: Template, run: RunState) -> RunState:
    """The run after one more step; unchanged when it is PENDING or finished."""
    if run.status is FlowStatus.CREATED:
        return _enter(template, run, template.starts_at, run.context)
    if run.status is not FlowStatus.IN_PROGRESS:
        return run
    if run.steps >= MAX_STEPS:
        return _fail(run, StepError(status=508, param="", error="step_limit_exceeded"))
    state = template.states[run.state_id]
    if isinstance(state, RequestState):
        result = FUNCTIONS[state.function](run.context)
        if isinstance(result, StepError):
            return _fail(run, result)
        return _enter(template, run, state.next, paths.assign(run.context, state.result_path, result))
    if isinstance(state, ChoiceState):
        target = choose(state, run.context)
        if target is None:
            return _fail(run, StepError(status=400, param="", error="no_matching_choice"))
        return _enter(template, run, target, run.context)
    if isinstance(state, CallbackState):
        return _enter(template, run, state.next, run.context)
    return run


def resume(template: Template, run: RunState, input: Any) -> RunState:
    """Store the input for the paused callback state (an object, or a chosen option for Reminix-style pauses).
    Raises Conflict or InvalidInput."""
    state = template.states[run.state_id]
    if run.status is not FlowStatus.PENDING or not isinstance(state, CallbackState):
        raise errors.Conflict(f"the run is {run.status.value}, not PENDING")
    if state.input_schema is not None:
        _require_valid(input, state.input_schema, "input")
    context = paths.assign(run.context, state.result_path, dict(input) if isinstance(input, Mapping) else input)
    return replace(run, status=FlowStatus.IN_PROGRESS, context=context)


def choose(state: ChoiceState, context: Mapping[str, Any]) -> str | None:
    """The ``next`` of the first matching rule, else the default (None when there is none)."""
    for rule in state.rules:
        if _matches(rule, context):
            return rule.next
    return state.default


def output(template: Template, run: RunState) -> JSON:
    """The template's output mapping: every key once COMPLETE (null where nothing was gathered);
    before that, only the keys gathered so far."""
    complete = run.status is FlowStatus.COMPLETE
    result: JSON = {}
    for key, path in template.output.items():
        found, value = paths.resolve(run.context, path)
        if found or complete:
            result[key] = value
    return result


def _matches(rule: ChoiceRule, context: Mapping[str, Any]) -> bool:
    _, value = paths.resolve(context, rule.path)
    if rule.operator == "equals":
        return bool(value == rule.value)
    if rule.operator == "not_equals":
        return bool(value != rule.value)
    return value in rule.value


def _enter(template: Template, run: RunState, state_id: str, context: Mapping[str, Any]) -> RunState:
    state = template.states[state_id]
    entered = replace(run, state_id=state_id, context=context, steps=run.steps + 1)
    if isinstance(state, CallbackState):
        return replace(entered, status=FlowStatus.PENDING)
    if isinstance(state, EndState) and state.error:
        failure = StepError(status=state.error_status, param=state.error_param, error=state.error_code)
        return _fail(entered, failure)
    if isinstance(state, EndState):
        return replace(entered, status=FlowStatus.COMPLETE)
    return replace(entered, status=FlowStatus.IN_PROGRESS)


def _fail(run: RunState, failure: StepError) -> RunState:
    item = {"status": failure.status, "param": failure.param, "error": failure.error, "state": run.state_id}
    return replace(run, status=FlowStatus.ERROR, errors=(*run.errors, item))


def _require_valid(value: Any, rules: Mapping[str, Any], where: str) -> None:
    problems = schema.validate(dict(value) if isinstance(value, Mapping) else value, rules, where)
    if problems:
        raise errors.InvalidInput("; ".join(problems))
