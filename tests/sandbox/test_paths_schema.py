from __future__ import annotations

import pytest

from gateway.sandbox import paths, schema


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("$.input.patientId", ("input", "patientId")),
        ("coverage", ("coverage",)),
        ("a.b-c.d_e", ("a", "b-c", "d_e")),
        ("$.items[2].id", ("items", 2, "id")),
    ],
)
def test_parse_accepts_dotted_paths(text: str, segments: tuple[object, ...]) -> None:
    parsed = paths.parse(text)
    assert parsed is not None and parsed.segments == segments


@pytest.mark.parametrize("text", ["", "$", "$.", "$..a", "a b", "$.a[x]", "$a"])
def test_parse_rejects_what_is_not_a_path(text: str) -> None:
    assert paths.parse(text) is None


def test_resolve_and_assign() -> None:
    context = {"input": {"items": [{"id": "i-1"}]}, "flag": False}
    assert paths.resolve(context, paths.Path(("input", "items", 0, "id"))) == (True, "i-1")
    assert paths.resolve(context, paths.Path(("input", "items", 1))) == (False, None)
    assert paths.resolve(context, paths.Path(("flag", "x"))) == (False, None)
    assert paths.resolve(context, paths.Path(("flag",))) == (True, False)
    updated = paths.assign(context, paths.Path(("flag", "deep")), {"v": 1})
    assert updated["flag"] == {"deep": {"v": 1}}
    assert context["flag"] is False


def test_schema_check_reports_each_problem_with_its_key() -> None:
    problems = schema.check(
        {"type": "map", "required": "x", "enum": [], "pattern": ".*", "properties": {"a": {"type": 3}}},
        "k",
    )
    assert sorted(problems) == [
        ("k.enum", "must be a non-empty list"),
        ("k.pattern", "is not a supported schema keyword"),
        ("k.properties.a.type", "must be one of array, boolean, integer, null, number, object, string"),
        ("k.required", "must be a list of strings"),
        ("k.type", "must be one of array, boolean, integer, null, number, object, string"),
    ]
    assert schema.check("nope", "k") == [("k", "must be a table")]


def test_schema_validate_types_items_and_booleans() -> None:
    rules = {
        "type": "object",
        "properties": {"n": {"type": "integer"}, "tags": {"items": {"type": "string"}}},
    }
    assert schema.validate({"n": 1, "tags": ["a"]}, rules) == []
    assert schema.validate({"n": True, "tags": ["a", 2]}, rules) == [
        "$.n: must be of type integer",
        "$.tags[1]: must be of type string",
    ]
    assert schema.validate(True, {"type": "boolean"}) == []
    assert schema.validate(1, {"enum": [True]}) == ["$: must be one of the allowed values"]
