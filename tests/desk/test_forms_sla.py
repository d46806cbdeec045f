"""Pure parts of the desk: the decision form from options or JSON schema, SLA deadlines, policy parsing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.config.desk import ReviewPolicy, SlaPolicy, parse_desk
from gateway.core.config_types import ParseContext
from gateway.desk import forms, sla
from gateway.domain import errors
from gateway.domain.model import PendingInput

SCHEMA = {
    "type": "object",
    "required": ["decision", "amount"],
    "properties": {
        "decision": {"type": "string", "enum": ["approve", "deny"]},
        "note": {"type": "string", "title": "Note"},
        "urgent": {"type": "boolean"},
        "amount": {"type": "number"},
        "visits": {"type": "integer"},
        "codes": {"type": "array"},
    },
}


def test_schema_properties_become_typed_fields_and_the_form_reads_back_into_the_input() -> None:
    request = PendingInput(schema=SCHEMA)
    kinds = {f.name: f.kind for f in forms.fields(request)}
    assert kinds == {
        "decision": "select",
        "note": "text",
        "urgent": "checkbox",
        "amount": "number",
        "visits": "integer",
        "codes": "json",
    }
    posted = {"in.decision": "deny", "in.note": "", "in.amount": "12.5", "in.visits": "3", "in.codes": '["A1"]'}
    assert forms.read(request, posted) == {
        "decision": "deny",
        "urgent": False,
        "amount": 12.5,
        "visits": 3,
        "codes": ["A1"],
    }
    with pytest.raises(errors.InvalidInput):
        forms.read(request, {"in.amount": "lots"})


def test_options_give_a_decision_select_and_no_description_gives_a_json_box() -> None:
    options = forms.fields(PendingInput(options=["yes", "no"]))
    assert [(f.name, f.kind, f.options) for f in options] == [("decision", "select", ("yes", "no"))]
    assert forms.read(PendingInput(options=["yes", "no"]), {"in.decision": "yes"}) == {"decision": "yes"}
    free = forms.fields(PendingInput())
    assert [(f.form_name, f.kind) for f in free] == [(forms.RAW_FIELD, "json")]
    assert forms.read(PendingInput(), {forms.RAW_FIELD: '{"x": 1}'}) == {"x": 1}


def test_enum_members_keep_their_type() -> None:
    request = PendingInput(schema={"type": "object", "properties": {"level": {"enum": [1, 2, 3]}}})
    assert forms.read(request, {"in.level": "2"}) == {"level": 2}


def test_deadlines_follow_the_policy_from_the_opening_time() -> None:
    opened = datetime(2026, 1, 1, tzinfo=UTC)
    policy = ReviewPolicy(
        sla=SlaPolicy(claim_within=100, decide_within=1000, warn_at=0.5), pause_timeout=2000, expire_before=300
    )
    due = sla.deadlines(policy, opened)
    offsets = {timer.value: (at - opened).total_seconds() for timer, at in due.timers}
    assert offsets == {
        "claim_warning": 50,
        "claim_breach": 100,
        "decide_warning": 500,
        "decide_breach": 1000,
        "expire": 1700,
    }
    assert sla.deadlines(ReviewPolicy(), opened).timers == ()
    assert sla.parse_ref(sla.timer_ref("rev_1", sla.Timer.LEASE)) == ("rev_1", sla.Timer.LEASE)
    assert sla.parse_ref("rev_1/nonsense") is None


def test_policy_problems_are_all_reported() -> None:
    ctx = ParseContext(environ={})
    data = {
        "flows": {
            "f": {
                "review": {
                    "approvals": 9,
                    "sla": {"claim_within": -1, "on_breach": {"action": "default_decision"}},
                    "colour": "red",
                }
            }
        },
        "alerts": {"url": "ftp://x", "secret_env": "MISSING", "events": ["review.nope"]},
    }
    parse_desk(data, ctx, "http://127.0.0.1:8000")
    text = "\n".join(ctx.problems)
    for key in (
        "flows.f.review.approvals",
        "flows.f.review.sla.claim_within",
        "flows.f.review.sla.on_breach.input",
        "flows.f.review.colour",
        "alerts.url",
        "alerts.secret_env",
        "alerts.events",
    ):
        assert key in text


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "required": 3, "properties": {"a": {"type": "string"}}},
        {"type": "object", "properties": {"a": {"type": "strin"}}},
        {"type": "object", "properties": {"a": {"$ref": "https://schemas.example/a.json"}}},
    ],
)
def test_a_schema_that_cannot_be_used_gives_a_json_box_not_an_error(schema: dict[str, object]) -> None:
    request = PendingInput(schema=schema)
    assert [(f.form_name, f.kind) for f in forms.fields(request)] == [(forms.RAW_FIELD, "json")]
    assert forms.read(request, {forms.RAW_FIELD: '{"a": "x"}'}) == {"a": "x"}
