"""gateway.web.shapes: one definition per shape decodes request bodies (after the JSON guard, with the messages the
hand-written checks had), describes every answer the app really sends, and is the whole OpenAPI document."""

from __future__ import annotations

import copy
import re
from typing import Any, get_args, get_type_hints

import httpx
import msgspec
import pytest
from jsonschema import Draft202012Validator

from gateway.domain import errors
from gateway.domain.model import DeliveryState, JobKind, JobState, ReviewState, RunStatus
from gateway.engine import stuck
from gateway.web import api, openapi, shapes
from tests.desk.support import add_operator, api_key
from tests.support import OPERATOR, SOURCE, Running, claim
from tests.web.helpers import CE, EVENT, assert_error, row_counts
from tests.web.test_hostile_input import DEEP, HOSTILE_VALUES

# request bodies ---------------------------------------------------------------------------------------------

ADOPT = 'body must be {"provider_run_id": "<the provider\'s run id>"}'
REASSIGN = 'body must be {"to": "<operator>", "reason": "<why>"}'
TIME = "must be an ISO 8601 time with an offset, e.g. 2026-11-22T09:00:00Z"

REFUSALS: list[tuple[type[shapes.Body], Any, type[errors.GatewayError], str]] = [
    (shapes.Adoption, [], errors.BadRequest, ADOPT),
    (shapes.Adoption, {}, errors.BadRequest, ADOPT),
    (shapes.Adoption, {"provider_run_id": 7}, errors.BadRequest, ADOPT),
    (shapes.Decision, "x", errors.BadRequest, "body must be a JSON object"),
    (shapes.Decision, {"decision": "approve"}, errors.BadRequest, 'body must be a JSON object with an "input" member'),
    (shapes.Reassign, {"to": "bea"}, errors.BadRequest, REASSIGN),
    (
        shapes.Reassign,
        {"to": 1, "reason": "r"},
        errors.BadRequest,
        'body must be {"to": "<operator>", "reason": "<why>"}',
    ),
    (shapes.Approve, {"proposal_digest": 5}, errors.BadRequest, "proposal_digest must be a string"),
    (shapes.Reject, {"reason": None}, errors.BadRequest, 'body must be {"reason": "<why>"}'),
    (shapes.Reject, [1], errors.BadRequest, "body must be a JSON object"),
    (shapes.ReplayQuery, [], errors.BadRequest, "body must be a JSON object"),
    (shapes.ReplayQuery, {"b": 1, "a": 2, "sink": "x"}, errors.InvalidInput, "unknown field(s): a, b"),
    (shapes.ReplayQuery, {"sink": ""}, errors.InvalidInput, "sink must be a sink name"),
    (shapes.ReplayQuery, {"sink": "s" * 201}, errors.InvalidInput, "sink must be a sink name"),
    (shapes.ReplayQuery, {"state": "PENDING"}, errors.InvalidInput, "state must be DEAD or DELIVERED"),
    (shapes.ReplayQuery, {"state": None}, errors.InvalidInput, "state must be DEAD or DELIVERED"),
    (shapes.ReplayQuery, {"limit": True}, errors.InvalidInput, "limit must be an integer from 1 to 1000"),
    (shapes.ReplayQuery, {"limit": 2.0}, errors.InvalidInput, "limit must be an integer from 1 to 1000"),
    (shapes.ReplayQuery, {"limit": 1001}, errors.InvalidInput, "limit must be an integer from 1 to 1000"),
    (shapes.ReplayQuery, {"limit": None}, errors.InvalidInput, "limit must be an integer from 1 to 1000"),
    (shapes.ReplayQuery, {"created_after": 5}, errors.InvalidInput, f"created_after {TIME}"),
    (shapes.ReplayQuery, {"created_before": "2" * 65}, errors.InvalidInput, f"created_before {TIME}"),
]


@pytest.mark.parametrize(("shape", "value", "kind", "message"), REFUSALS)
def test_a_body_that_does_not_fit_gets_the_message_the_handlers_gave(
    shape: type[shapes.Body], value: Any, kind: type[errors.GatewayError], message: str
) -> None:
    with pytest.raises(errors.GatewayError) as refused:
        shapes.decode(value, shape)
    assert type(refused.value) is kind
    assert refused.value.message == message


def test_bodies_that_fit_decode_and_unknown_members_are_ignored_except_in_a_replay_query() -> None:
    assert shapes.decode({"input": None, "extra": 1}, shapes.Decision).input is None
    assert shapes.decode({}, shapes.Approve).proposal_digest is None
    assert shapes.decode({"to": "bea", "reason": "r", "x": []}, shapes.Reassign) == shapes.Reassign(
        to="bea", reason="r"
    )
    query = shapes.decode({"sink": None, "created_after": "2026-11-22T09:00:00Z", "limit": 3}, shapes.ReplayQuery)
    assert (query.sink, query.state, query.limit) == (None, "DEAD", 3)
    assert query.times()[0] is not None and query.times()[0].tzinfo is not None


@pytest.mark.parametrize(
    ("after", "before", "message"),
    [
        ("2026-11-22T09:00:00", None, f"created_after {TIME}"),
        ("yesterday", None, f"created_after {TIME}"),
        (None, "2026-11-22T09:00:00", f"created_before {TIME}"),
        ("2026-11-22T10:00:00Z", "2026-11-22T09:00:00Z", "created_after must be earlier than created_before"),
    ],
)
def test_replay_times_need_an_offset_and_an_order(after: str | None, before: str | None, message: str) -> None:
    query = shapes.decode({"created_after": after, "created_before": before}, shapes.ReplayQuery)
    with pytest.raises(errors.InvalidInput, match=re.escape(message)):
        query.times()


def test_the_replay_states_are_finished_delivery_states() -> None:
    state = api.DOCUMENT["components"]["schemas"]["ReplayQuery"]["properties"]["state"]
    assert state["enum"] == [DeliveryState.DEAD.value, DeliveryState.DELIVERED.value]


def adopt_bodies() -> list[bytes]:
    bodies = [b'{"provider_run_id": ' + value.encode() + b"}" for value in HOSTILE_VALUES.values()]
    duplicate = b'{"provider_run_id": "one", "provider_run_id": "two"}'
    return [*bodies, DEEP.encode(), duplicate, b'{"provider_run_id": "ok"}'.decode().encode("utf-16")]


async def test_the_json_guard_runs_before_msgspec_on_a_decoded_body(gw: Running) -> None:
    """Lone surrogates, NaN, 1e400, deep nesting and duplicate keys are 400 before a shape is looked at."""
    for body in adopt_bodies():
        response = await gw.client.post("/v1/runs/run_nope/adopt", content=body, headers=OPERATOR)
        assert_error(response, 400, "bad_request")
        assert "\\u" not in response.json()["error"]["message"]
    fits = await gw.client.post("/v1/runs/run_nope/adopt", json={"provider_run_id": "p-1"}, headers=OPERATOR)
    assert_error(fits, 404)  # the shape fits; the run does not exist


# the document -----------------------------------------------------------------------------------------------


def refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"].rsplit("/", 1)[1]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(refs(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(refs(value) for value in node))
    return set()


def test_the_document_is_generated_from_the_shapes_alone() -> None:
    document = openapi.build(api.OPERATIONS)
    assert document == api.DOCUMENT
    components = document["components"]["schemas"]
    assert refs(document) == set(components)  # every component is used, every reference resolves
    for name, schema in components.items():
        if "enum" not in schema:  # the enums are the domain's own (RunStatus, ...)
            assert isinstance(getattr(shapes, name), type) and issubclass(getattr(shapes, name), msgspec.Struct)
    assert components["Transition"]["required"] == ["at", "from", "to", "cause", "detail"]
    assert set(components["RunStatus"]["enum"]) == {s.value for s in RunStatus}
    assert components["ReplayQuery"]["additionalProperties"] is False


def test_every_operation_is_one_route_and_every_body_is_a_shape() -> None:
    seen = [(op.method, op.path) for op in api.OPERATIONS]
    assert len(seen) == len(set(seen))
    for op in api.OPERATIONS:
        if op.body is not None:
            assert issubclass(op.body.shape, msgspec.Struct)
        for answer in op.answers:
            assert answer.status not in op.errors


def test_the_literals_in_the_shapes_are_the_domain_values() -> None:
    schemas = api.DOCUMENT["components"]["schemas"]
    assert schemas["Decided"]["properties"]["state"]["enum"] == [ReviewState.DECIDED.value]
    assert schemas["Proposed"]["properties"]["state"]["enum"] == [ReviewState.OPEN.value]
    assert set(schemas["Approved"]["properties"]["state"]["enum"]) <= {s.value for s in ReviewState}
    assert set(schemas["JobKind"]["enum"]) == {k.value for k in JobKind}
    assert set(schemas["JobState"]["enum"]) == {s.value for s in JobState}


# answers ------------------------------------------------------------------------------------------------------


def strict(schemas: dict[str, Any]) -> dict[str, Any]:
    """The components with no member left undescribed: every object schema closed."""
    closed = copy.deepcopy(schemas)
    for schema in closed.values():
        if schema.get("type") == "object" and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
    return closed


STRICT = strict(api.DOCUMENT["components"]["schemas"])


def answer_schema(method: str, path: str, status: int) -> dict[str, Any]:
    for op in api.OPERATIONS:
        pattern = "^" + re.sub(r"\{[a-z_]+\}", "[^/]+", op.path) + "$"
        if op.method == method and re.match(pattern, path.split("?")[0]):
            operation = api.DOCUMENT["paths"][op.path][method.lower()]
            schema: dict[str, Any] = operation["responses"][str(status)]["content"]["application/json"]["schema"]
            return {**schema, "components": {"schemas": STRICT}}
    raise AssertionError(f"no operation for {method} {path}")


async def described(gw: Running, method: str, path: str, **kw: Any) -> Any:
    """The answer, checked against its operation's schema with every object closed."""
    answer: httpx.Response = await gw.client.request(method, path, headers=kw.pop("headers", OPERATOR), **kw)
    assert answer.status_code < 300, (method, path, answer.text)
    body = answer.json()
    Draft202012Validator(answer_schema(method, path, answer.status_code)).validate(body)
    return body


async def test_every_answer_is_exactly_its_shape(gw: Running) -> None:
    """Answers built outside gateway.web (the desk's views, an event's stored answer, the breakers, readiness)
    are held to their shapes as well as the ones built from the Structs."""
    accepted = await described(gw, "POST", "/v1/events", json=EVENT, headers={**SOURCE, **CE})
    run_id = accepted["runs"][0]["id"]
    await gw.settle()
    [item] = (await described(gw, "GET", "/v1/reviews"))["items"]
    review = f"/v1/reviews/{item['id']}"
    await described(gw, "GET", review)
    await described(gw, "POST", f"{review}/claim")
    await described(gw, "POST", f"{review}/release")
    await claim(gw.client, item["id"])
    await described(gw, "POST", f"{review}/decision", json={"input": {"decision": "approve"}})
    await gw.settle()
    detail = await described(gw, "GET", review)
    assert detail["sla_outcome"] is not None and detail["state"] == "RESUMED"
    await described(gw, "GET", f"{review}/audit")
    await described(gw, "GET", "/v1/reviews?state=any")
    run = await described(gw, "GET", f"/v1/runs/{run_id}")
    assert run["timeline"] and run["status"] == "COMPLETE"
    await described(gw, "GET", "/v1/runs")
    deliveries = (await described(gw, "GET", "/v1/deliveries"))["items"]
    assert deliveries
    await described(gw, "GET", f"/v1/deliveries/{deliveries[0]['id']}")
    await described(gw, "GET", f"/v1/deliveries/{deliveries[0]['id']}/attempts")
    await described(gw, "POST", "/v1/deliveries/replay", json={"state": "DELIVERED", "limit": 5})
    for path in ["/v1/jobs/dead", "/v1/sinks", "/v1/health/breakers", "/v1/runs/stuck"]:
        await described(gw, "GET", path)
    await add_operator(gw, "root", "admin")
    verdict = await described(gw, "GET", "/v1/audit/verify", headers=await api_key(gw, "root", "admin"))
    assert verdict["ok"] is True
    await described(gw, "POST", "/v1/runs/stuck/repair")
    await described(gw, "GET", "/v1/notifications/orphans")
    for path in ["/healthz", "/readyz"]:
        await described(gw, "GET", path, headers={})
    again = await described(gw, "POST", "/v1/events", json=EVENT, headers={**SOURCE, **CE})
    assert again == accepted


async def test_a_refused_body_changes_nothing(gw: Running) -> None:
    before = await row_counts(gw)
    for body in [b'{"limit": 0}', b'{"nope": 1}', b"[]", b"{"]:
        response = await gw.client.post("/v1/deliveries/replay", content=body, headers=OPERATOR)
        assert response.status_code in (400, 422), response.text
        assert set(response.json()) == {"error"}
    assert await row_counts(gw) == before


def test_the_stuck_run_shape_names_every_problem_the_detector_reports() -> None:
    assert set(get_args(get_type_hints(shapes.StuckRun)["problem"])) == set(stuck.PROBLEMS)
