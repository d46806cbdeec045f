"""Route conditions, paths into the event and the declarative input mapping."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.core import routing
from gateway.core.routing import Condition, Const, Path
from gateway.domain.model import CloudEvent

DOC: dict[str, Any] = {
    "id": "e1",
    "type": "t",
    "data": {
        "patient": {"id": "P-1", "tags": ["a", "b"], "name": None},
        "items": [{"code": "x"}, {"code": "y"}],
        "count": 0,
    },
}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("$", DOC),
        ("$.id", "e1"),
        ("$.data.patient.id", "P-1"),
        ("$.data.patient.tags[1]", "b"),
        ("$.data.items[0].code", "x"),
        ("$.data.items[1]", {"code": "y"}),
        ("$.data.patient.name", None),
        ("$.data.count", 0),
    ],
)
def test_lookup_finds_values(path: str, expected: Any) -> None:
    assert routing.lookup(DOC, path) == expected


@pytest.mark.parametrize(
    "path",
    ["$.nope", "$.data.patient.id.deeper", "$.data.items[2]", "$.data.patient[0]", "$.data.items.code", "$.id[0]"],
)
def test_lookup_reports_absent_paths(path: str) -> None:
    assert routing.is_missing(routing.lookup(DOC, path))


@pytest.mark.parametrize("path", ["$", "$.a", "$.a.b", "$.a[0]", "$.a[0].b[12]", "$[3]", "$.a-b.c_d"])
def test_valid_paths(path: str) -> None:
    assert routing.valid_path(path)


@pytest.mark.parametrize("path", ["", "a.b", "$.", "$..a", "$.a[", "$.a[x]", "$.a[-1]", "$a", "$.a.", "$ .a"])
def test_invalid_paths(path: str) -> None:
    assert not routing.valid_path(path)


@pytest.mark.parametrize(
    ("condition", "holds"),
    [
        (Condition(path="$.data.patient.id", op="equals", value="P-1"), True),
        (Condition(path="$.data.patient.id", op="equals", value="P-2"), False),
        (Condition(path="$.data.missing", op="equals", value=None), False),
        (Condition(path="$.data.patient.name", op="equals", value=None), True),
        (Condition(path="$.data.count", op="equals", value=False), False),
        (Condition(path="$.data.patient.id", op="not_equals", value="P-2"), True),
        (Condition(path="$.data.patient.id", op="not_equals", value="P-1"), False),
        (Condition(path="$.data.missing", op="not_equals", value="x"), True),
        (Condition(path="$.data.items[1].code", op="in", value=["x", "y"]), True),
        (Condition(path="$.data.items[1].code", op="in", value=["z"]), False),
        (Condition(path="$.data.missing", op="in", value=[None]), False),
        (Condition(path="$.data.patient.tags[0]", op="exists", value=True), True),
        (Condition(path="$.data.patient.tags[5]", op="exists", value=True), False),
        (Condition(path="$.data.patient.tags[5]", op="exists", value=False), True),
        (Condition(path="$.data.patient.name", op="exists", value=False), False),
    ],
)
def test_conditions(condition: Condition, holds: bool) -> None:
    assert routing.matches([condition], DOC) is holds


def test_all_conditions_must_hold() -> None:
    yes = Condition(path="$.id", op="equals", value="e1")
    no = Condition(path="$.id", op="equals", value="e2")
    assert routing.matches([], DOC)
    assert routing.matches([yes, yes], DOC)
    assert not routing.matches([yes, no], DOC)


def test_render_paths_consts_and_nesting() -> None:
    mapping = {
        "patientId": Path(path="$.data.patient.id"),
        "firstCode": Path(path="$.data.items[0].code"),
        "by": Const(value="gateway"),
        "literalDollar": Const(value="$.data.patient.id"),
        "nested": {"tags": Path(path="$.data.patient.tags"), "n": Const(value=3)},
        "absent": Path(path="$.data.missing"),
        "nullValue": Path(path="$.data.patient.name"),
    }
    assert routing.render(mapping, DOC) == {
        "patientId": "P-1",
        "firstCode": "x",
        "by": "gateway",
        "literalDollar": "$.data.patient.id",
        "nested": {"tags": ["a", "b"], "n": 3},
        "nullValue": None,
    }


def test_render_a_bare_path_or_const() -> None:
    assert routing.render(Path(path="$.data.count"), DOC) == 0
    assert routing.render(Path(path="$.nope"), DOC) is None
    assert routing.render(Const(value=[1]), DOC) == [1]


def test_event_document_is_the_event_with_extensions() -> None:
    event = CloudEvent(id="1", source="/s", type="t", data={"a": 1}, extensions={"tenant": "x"})
    document = routing.event_document(event)
    assert routing.lookup(document, "$.data.a") == 1
    assert routing.lookup(document, "$.tenant") == "x"
    assert routing.lookup(document, "$.source") == "/s"


def test_parse_mapping() -> None:
    problems: list[str] = []
    parsed = routing.parse_mapping(
        {"a": "$.data.x", "b": {"const": "$.not.a.path"}, "c": 5, "d": "plain", "e": {"f": "$.g[0]"}},
        "routes[0].input",
        problems,
    )
    assert problems == []
    assert parsed == {
        "a": Path(path="$.data.x"),
        "b": Const(value="$.not.a.path"),
        "c": Const(value=5),
        "d": Const(value="plain"),
        "e": {"f": Path(path="$.g[0]")},
    }


def test_parse_mapping_reports_bad_paths_with_their_key() -> None:
    problems: list[str] = []
    routing.parse_mapping({"a": "$..x", "n": {"b": "$.y["}}, "routes[2].input", problems)
    assert len(problems) == 2
    assert problems[0].startswith("routes[2].input.a: ")
    assert problems[1].startswith("routes[2].input.n.b: ")


def test_parse_conditions() -> None:
    problems: list[str] = []
    parsed = routing.parse_conditions(
        [
            {"path": "$.data.a", "equals": 1},
            {"path": "$.data.b", "not_equals": "x"},
            {"path": "$.data.c", "in": [1, 2]},
            {"path": "$.data.d", "exists": True},
        ],
        "routes[0].when",
        problems,
    )
    assert problems == []
    assert [(c.path, c.op, c.value) for c in parsed] == [
        ("$.data.a", "equals", 1),
        ("$.data.b", "not_equals", "x"),
        ("$.data.c", "in", [1, 2]),
        ("$.data.d", "exists", True),
    ]
    assert routing.parse_conditions(None, "k", problems) == [] and problems == []


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ({"path": "$.a"}, "routes[0].when: must be a list"),
        ([{"path": "$.a"}], "routes[0].when[0]: needs a path and exactly one of"),
        ([{"path": "$.a", "equals": 1, "in": [1]}], "routes[0].when[0]: needs a path"),
        ([{"equals": 1}], "routes[0].when[0]: needs a path"),
        (["$.a"], "routes[0].when[0]: needs a path"),
        ([{"path": "$..a", "equals": 1}], "routes[0].when[0].path: '$..a' is not a valid path"),
        ([{"path": "$.a", "in": "x"}], "routes[0].when[0].in: must be a list"),
    ],
)
def test_parse_conditions_errors(value: Any, fragment: str) -> None:
    problems: list[str] = []
    routing.parse_conditions(value, "routes[0].when", problems)
    assert len(problems) == 1
    assert problems[0].startswith(fragment)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (True, 1, False),
        (0, False, False),
        (True, True, True),
        (1, 1.0, True),
        ([1, True], [1, True], True),
        ([1, True], [1, 1], False),
        ({"a": False}, {"a": 0}, False),
        ({"a": [1]}, {"a": [1]}, True),
        ({"a": 1}, {"a": 1, "b": 2}, False),
        (None, None, True),
        ("1", 1, False),
        (["a", "b"], "ab", False),
        ("ab", ["a", "b"], False),
        (["a", "b"], ("a", "b"), False),
        ([1, 2], [1, 2, 3], False),
        ([1, 2, 3], [1, 2], False),
        ([], [], True),
        ({"a": 1}, ["a"], False),
        (["a"], {"a": 1}, False),
        ({"a": 1}, {"b": 1}, False),
        ({"a": 1, "b": [True]}, {"b": [True], "a": 1}, True),
        ({}, {}, True),
        (False, False, True),
        (False, None, False),
        (None, False, False),
    ],
)
def test_json_equality(a: Any, b: Any, expected: bool) -> None:
    assert routing.same(a, b) is expected


def test_in_uses_json_equality() -> None:
    assert not routing.matches([Condition(path="$.data.count", op="in", value=[False, "0"])], DOC)
    assert routing.matches([Condition(path="$.data.count", op="in", value=[False, 0])], DOC)


def test_every_bad_condition_is_reported_and_the_good_ones_kept() -> None:
    problems: list[str] = []
    parsed = routing.parse_conditions(
        [
            {"path": "$.a"},
            {"path": "$.b", "in": "x"},
            {"path": "$.c", "equals": 1},
            {"equals": 2},
            {"path": "$.d", "in": [1]},
        ],
        "routes[0].when",
        problems,
    )
    assert problems == [
        "routes[0].when[0]: needs a path and exactly one of equals, not_equals, in, exists",
        "routes[0].when[1].in: must be a list",
        "routes[0].when[3]: needs a path and exactly one of equals, not_equals, in, exists",
    ]
    assert [(c.path, c.op) for c in parsed] == [("$.c", "equals"), ("$.d", "in")]


def test_the_root_path_is_the_whole_document() -> None:
    assert routing.lookup(DOC, "$") is DOC
    assert routing.lookup([1], "$") == [1]
    assert routing.render(Path(path="$"), {"a": 1}) == {"a": 1}
