"""Decisions checked against JSON Schema Draft 2020-12, with the ``jsonschema`` library as the oracle."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from gateway.core import review
from gateway.domain.model import PendingInput

IF_DENY_THEN_REASON = {
    "type": "object",
    "properties": {"decision": {"enum": ["approve", "deny"]}, "reason": {"type": "string", "minLength": 1}},
    "required": ["decision"],
    "if": {"properties": {"decision": {"const": "deny"}}, "required": ["decision"]},
    "then": {"required": ["reason"]},
}
LOCAL_REF = {
    "$defs": {"code": {"type": "string", "pattern": "^[A-Z]{3}$"}},
    "properties": {"x": {"$ref": "#/$defs/code"}},
}
ANCHOR_REF = {"$defs": {"code": {"$anchor": "code", "type": "string"}}, "properties": {"x": {"$ref": "#code"}}}


def on_x(schema: Any) -> dict[str, Any]:
    return {"type": "object", "properties": {"x": schema}}


# (schema, input, accepted): the cases the home-made subset got wrong, and their neighbours.
CASES: list[tuple[dict[str, Any], dict[str, Any], bool]] = [
    (on_x({"const": 1}), {"x": True}, False),
    (on_x({"const": 1}), {"x": 1}, True),
    (on_x({"const": 1}), {"x": 1.0}, True),
    (on_x({"const": False}), {"x": 0}, False),
    (on_x({"enum": [0, 1]}), {"x": False}, False),
    (on_x({"enum": [0, 1]}), {"x": True}, False),
    (on_x({"enum": [0, 1]}), {"x": 0}, True),
    (on_x({"enum": [[1, 2]]}), {"x": [True, 2]}, False),
    (on_x({"type": "integer"}), {"x": 1.0}, True),
    (on_x({"type": "integer"}), {"x": 1.5}, False),
    (on_x({"type": "integer"}), {"x": True}, False),
    (on_x({"type": "string", "pattern": "^[A-Z]{3}$"}), {"x": "ABC"}, True),
    (on_x({"type": "string", "pattern": "^[A-Z]{3}$"}), {"x": "abcd"}, False),
    (on_x({"type": "array", "minItems": 2}), {"x": [1]}, False),
    (on_x({"type": "array", "minItems": 2}), {"x": [1, 2]}, True),
    (on_x({"uniqueItems": True}), {"x": [1, True]}, True),
    (on_x({"uniqueItems": True}), {"x": [1, 1.0]}, False),
    (on_x({"oneOf": [{"type": "integer"}, {"minimum": 0}]}), {"x": 5}, False),
    (on_x({"oneOf": [{"type": "integer"}, {"minimum": 0}]}), {"x": 2.5}, True),
    (on_x({"oneOf": [{"type": "integer"}, {"minimum": 0}]}), {"x": -2.5}, False),
    (on_x({"anyOf": [{"type": "string"}, {"type": "null"}]}), {"x": 3}, False),
    (on_x({"not": {"const": "x"}}), {"x": "x"}, False),
    (on_x({"exclusiveMaximum": 10, "multipleOf": 5}), {"x": 10}, False),
    (on_x({"exclusiveMaximum": 10, "multipleOf": 5}), {"x": 5}, True),
    (on_x({"exclusiveMaximum": 10, "multipleOf": 5}), {"x": 7}, False),
    (LOCAL_REF, {"x": "ABC"}, True),
    (LOCAL_REF, {"x": "AB"}, False),
    (ANCHOR_REF, {"x": 1}, False),
    (IF_DENY_THEN_REASON, {"decision": "deny"}, False),
    (IF_DENY_THEN_REASON, {"decision": "deny", "reason": "no cover"}, True),
    (IF_DENY_THEN_REASON, {"decision": "approve"}, True),
    ({"properties": {"x": False}}, {"x": 1}, False),
    ({"properties": {"x": False}}, {"y": 1}, True),
    ({"patternProperties": {"^n_": {"type": "number"}}, "additionalProperties": False}, {"n_a": 1}, True),
    ({"patternProperties": {"^n_": {"type": "number"}}, "additionalProperties": False}, {"n_a": "1"}, False),
    ({"patternProperties": {"^n_": {"type": "number"}}, "additionalProperties": False}, {"m": 1}, False),
    ({"dependentRequired": {"deny": ["reason"]}}, {"deny": True}, False),
    ({"minProperties": 2}, {"a": 1}, False),
    ({"unevaluatedProperties": False, "properties": {"a": {}}}, {"a": 1, "b": 2}, False),
]


@pytest.mark.parametrize(("schema", "value", "accepted"), CASES)
def test_a_decision_is_accepted_exactly_when_the_library_accepts_it(
    schema: dict[str, Any], value: dict[str, Any], accepted: bool
) -> None:
    assert Draft202012Validator(schema).is_valid(value) is accepted  # the oracle agrees with the table
    problems = review.validate_input(PendingInput(schema=schema), value)
    assert (problems == []) is accepted, problems


@pytest.mark.parametrize(
    ("schema", "value", "problems"),
    [
        (on_x({"const": 1}), {"x": True}, ["input.x must be 1"]),
        (on_x({"enum": [0, 1]}), {"x": False}, ["input.x must be one of: 0, 1"]),
        (on_x({"type": ["integer", "null"]}), {"x": "1"}, ["input.x must be of type integer or null"]),
        (on_x({"pattern": "^[A-Z]{3}$"}), {"x": "abcd"}, ["input.x must match the pattern ^[A-Z]{3}$"]),
        (on_x({"minItems": 2}), {"x": [1]}, ["input.x must have at least 2 items"]),
        (on_x({"maxItems": 1}), {"x": [1, 2]}, ["input.x must have at most 1 items"]),
        (on_x({"items": {"type": "string"}}), {"x": ["a", 2]}, ["input.x[1] must be of type string"]),
        (on_x({"uniqueItems": True}), {"x": [1, 1]}, ["input.x must not repeat an item"]),
        (on_x({"exclusiveMinimum": 0}), {"x": 0}, ["input.x must be above 0"]),
        (on_x({"exclusiveMaximum": 0}), {"x": 0}, ["input.x must be below 0"]),
        (on_x({"multipleOf": 5}), {"x": 7}, ["input.x must be a multiple of 5"]),
        (on_x({"minProperties": 1}), {"x": {}}, ["input.x must have at least 1 members"]),
        (on_x({"maxProperties": 0}), {"x": {"a": 1}}, ["input.x must have at most 0 members"]),
        (
            on_x({"oneOf": [{"type": "integer"}, {"minimum": 0}]}),
            {"x": 5},
            ["input.x must match exactly one of the allowed forms (oneOf)"],
        ),
        (
            on_x({"anyOf": [{"type": "string"}, {"type": "null"}]}),
            {"x": 3},
            ["input.x must match at least one of the allowed forms (anyOf)"],
        ),
        (on_x({"not": {"const": "x"}}), {"x": "x"}, ["input.x must not match the excluded form (not)"]),
        (on_x({"contains": {"const": 1}}), {"x": [2]}, ["input.x does not satisfy the schema's 'contains' rule"]),
        (LOCAL_REF, {"x": "AB"}, ["input.x must match the pattern ^[A-Z]{3}$"]),
        (IF_DENY_THEN_REASON, {"decision": "deny"}, ["input.reason is required"]),
        (IF_DENY_THEN_REASON, {}, ["input.decision is required"]),
        ({"required": ["a", "b", "c"]}, {"b": 1}, ["input.a is required", "input.c is required"]),  # each once
        ({"properties": {"x": False}}, {"x": 1}, ["input holds something the schema does not allow"]),
        (
            {"properties": {"a": {}}, "patternProperties": {"^n_": {}}, "additionalProperties": False},
            {"a": 1, "n_1": 2, "b": 3, "c": 4},
            ["input.b is not allowed", "input.c is not allowed"],
        ),
    ],
)
def test_problems_name_the_place_and_the_rule(schema: dict[str, Any], value: Any, problems: list[str]) -> None:
    assert review.validate_input(PendingInput(schema=schema), value) == problems


SECRET = "Jane Q. Patient 1970-01-01"


@pytest.mark.parametrize(
    "schema",
    [
        on_x({"const": "approve"}),
        on_x({"enum": ["approve", "deny"]}),
        on_x({"type": "integer"}),
        on_x({"pattern": "^[0-9]+$"}),
        on_x({"maxLength": 3}),
        on_x({"oneOf": [{"type": "integer"}, {"type": "boolean"}]}),
        on_x({"not": {"type": "string"}}),
        on_x({"format": "email", "contains": {"const": 1}, "type": "array"}),
        {"properties": {"y": False}, "required": ["z"], "propertyNames": {"maxLength": 1}, "minProperties": 9},
    ],
)
def test_problems_never_repeat_the_values_given(schema: dict[str, Any]) -> None:
    value = {"x": SECRET, "y": SECRET, "nested": [SECRET]}
    problems = review.validate_input(PendingInput(schema=schema), value)
    assert problems
    assert all(SECRET not in problem for problem in problems)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 12) | st.sampled_from([0.0, 1.0, 2.5, -1.5]) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("abxy"), inner, max_size=3),
    max_leaves=8,
)
ORACLE_SCHEMAS = [schema for schema, _, _ in CASES]


@settings(max_examples=300, deadline=None)
@given(index=st.integers(0, len(ORACLE_SCHEMAS) - 1), value=st.dictionaries(st.sampled_from("abxy"), json_values))
def test_any_input_is_judged_as_the_library_judges_it(index: int, value: dict[str, Any]) -> None:
    schema = ORACLE_SCHEMAS[index]
    problems = review.validate_input(PendingInput(schema=schema), value)
    assert (problems == []) is Draft202012Validator(schema).is_valid(value)


def test_options_and_schema_are_both_checked() -> None:
    request = PendingInput(options=["approve", "deny"], schema=on_x({"type": "string"}))
    assert review.validate_input(request, {"decision": "approve", "x": "ok"}) == []
    assert review.validate_input(request, {"decision": "later", "x": 1}) == [
        "input.decision must be one of: approve, deny",
        "input.x must be of type string",
    ]


# schemas that cannot be used ------------------------------------------------------------------------

BAD_SCHEMAS = {
    "unknown type": ({"type": "strin"}, "schema.type is not valid JSON Schema"),
    "required not a list": ({"required": "x"}, "schema.required is not valid JSON Schema"),
    "properties not an object": ({"properties": []}, "schema.properties is not valid JSON Schema"),
    "negative minLength": ({"properties": {"a": {"minLength": -1}}}, "schema.properties.a.minLength is not valid"),
    "bad regex": ({"pattern": "("}, "schema.pattern is not valid JSON Schema"),
    "ref not a string": ({"$ref": 1}, "schema.$ref is not valid JSON Schema"),
    "pointer to nowhere": ({"$ref": "#/$defs/missing"}, "schema $ref '#/$defs/missing' does not point inside"),
    "unknown anchor": (on_x({"$ref": "#nowhere"}), "schema $ref '#nowhere' does not point inside the schema"),
    "relative file": (on_x({"$ref": "other.json"}), "schema $ref 'other.json' does not point inside the schema"),
    "remote": (
        {"$defs": {"a": {"$ref": "https://schemas.example/a.json"}}},
        "schema $ref 'https://schemas.example/a.json' does not point inside the schema (nothing is fetched)",
    ),
    "ref beside a boolean schema": (
        {"properties": {"a": {"$ref": "#/nowhere"}, "b": True}},
        "schema $ref '#/nowhere' does not point inside",
    ),
    "dynamic remote": (on_x({"$dynamicRef": "https://schemas.example/a.json#x"}), "does not point inside"),
}


@pytest.mark.parametrize(("schema", "expected"), BAD_SCHEMAS.values(), ids=BAD_SCHEMAS.keys())
def test_a_schema_that_cannot_be_used_is_named_with_the_reason(schema: dict[str, Any], expected: str) -> None:
    [problem] = review.schema_problems(schema)
    assert expected in problem
    refused = review.validate_input(PendingInput(schema=schema), {"x": 1})
    assert refused == [f"the input schema of this pause cannot be used: {problem}"]


@pytest.mark.parametrize(
    "schema",
    [
        {},
        LOCAL_REF,
        ANCHOR_REF,
        IF_DENY_THEN_REASON,
        {"$id": "https://schemas.example/decision", "$defs": {"a": {}}, "properties": {"x": {"$ref": "#/$defs/a"}}},
        {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object"},
        {"properties": {"$ref": {"type": "string"}}},  # a member named "$ref" is not a reference
        {"const": {"$ref": "https://schemas.example/a.json"}},  # nor is a constant holding one
        {"properties": {"x": False, "y": True, "z": {"$ref": "#/$defs/z"}}, "$defs": {"z": {}}},
        {"items": {"$ref": "#"}, "prefixItems": [{"$dynamicRef": "#/$defs/z"}], "$defs": {"z": True}},
    ],
)
def test_usable_schemas_have_no_problems(schema: dict[str, Any]) -> None:
    assert review.schema_problems(schema) == []


def test_a_long_reason_is_cut_short() -> None:
    long_ref = "#/" + "a" * 500
    [problem] = review.schema_problems({"$ref": long_ref})
    assert problem == f"schema $ref {long_ref[:199] + '…'!r} does not point inside the schema (nothing is fetched)"
    exact = "#/" + "a" * 198
    [problem] = review.schema_problems({"$ref": exact})
    assert f"{exact!r}" in problem


def test_a_reference_that_resolves_differently_under_a_nested_id_is_refused_when_used() -> None:
    schema = {"$defs": {"b": {}}, "properties": {"a": {"$id": "https://schemas.example/a", "$ref": "#/$defs/b"}}}
    assert review.schema_problems(schema) == []  # it resolves from the root
    assert review.validate_input(PendingInput(schema=schema), {"a": 1}) == [
        "the input schema of this pause cannot be used: a $ref does not resolve inside it"
    ]


class _Counting(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:
        self.hits.append(self.path)
        body = b'{"type": "string"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/schema+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def schema_server() -> Iterator[tuple[str, list[str]]]:
    hits: list[str] = []
    handler = type("Handler", (_Counting,), {"hits": hits})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/decision.json", hits
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_a_remote_ref_is_refused_and_never_fetched(schema_server: tuple[str, list[str]]) -> None:
    url, hits = schema_server
    schema = on_x({"$ref": url})
    assert review.schema_problems(schema) == [
        f"schema $ref '{url}' does not point inside the schema (nothing is fetched)"
    ]
    refused = review.validate_input(PendingInput(schema=schema), {"x": "a string the remote schema would accept"})
    assert refused and "cannot be used" in refused[0]
    assert hits == []


def test_values_in_problems_are_shown_as_json_text() -> None:
    problems = review.validate_input(PendingInput(schema=on_x({"enum": ["é", 1, None, True]})), {"x": 2})
    assert problems == ['input.x must be one of: "é", 1, null, true']


def test_the_providers_assignee_wins_and_config_fills_it_in() -> None:
    provided = PendingInput(key="k", assignee="sales-ops")
    configured = PendingInput(key="c", assignee="utilization-review", kind="form")
    assert review.merge_request(provided, configured).assignee == "sales-ops"
    assert review.merge_request(PendingInput(key="k"), configured).assignee == "utilization-review"


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the library warns before it fetches a remote $ref
def test_a_ref_that_only_a_nested_id_makes_remote_is_not_fetched(schema_server: tuple[str, list[str]]) -> None:
    url, hits = schema_server
    base, _, name = url.rpartition("/")
    schema = {
        "$id": "https://schemas.example/root/",
        "$defs": {"d": {"$id": name, "type": "string"}},
        "properties": {"x": {"$id": base + "/", "$ref": name}},
    }
    assert review.schema_problems(schema) == []  # from the root, the name is the embedded $defs/d
    assert review.validate_input(PendingInput(schema=schema), {"x": 1}) == [
        "the input schema of this pause cannot be used: a $ref does not resolve inside it"
    ]
    assert hits == []


def test_what_the_provider_says_wins_over_the_config() -> None:
    provided = PendingInput(key="k", kind="approval", options=["yes"], schema={"type": "object"})
    configured = PendingInput(key="c", kind="form", options=["approve", "deny"], schema={"required": ["x"]})
    merged = review.merge_request(provided, configured)
    assert (merged.kind, merged.options, merged.schema) == ("approval", ["yes"], {"type": "object"})
