"""Route path and input-mapping parsing (T6): any config value gives a mapping plus problems, never an
exception; valid paths find exactly what they point at; rendering never raises."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.core import routing

props = settings(max_examples=300, deadline=None)

toml_scalars = (
    st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
    | st.text(max_size=12).map(lambda t: "$" + t)
    | st.dates()
    | st.datetimes(timezones=st.just(dt.UTC))
)
toml_values = st.recursive(
    toml_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=15,
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=15,
)
keys = st.text(st.characters(blacklist_characters=".[]"), min_size=1, max_size=8)
steps = st.lists(keys | st.integers(0, 3), max_size=6)


@props
@given(value=toml_values)
def test_any_mapping_value_parses_with_problems_not_exceptions(value: Any) -> None:
    problems: list[str] = []
    mapping = routing.parse_mapping(value, "routes[0].input", problems)
    assert all(isinstance(p, str) and p.startswith("routes[0].input") for p in problems)
    routing.render(mapping, {"data": {"a": [1, 2]}})


@props
@given(value=toml_values | st.lists(st.dictionaries(st.sampled_from(["path", "equals", "in", "exists"]), toml_values)))
def test_any_conditions_value_parses_with_problems_not_exceptions(value: Any) -> None:
    problems: list[str] = []
    conditions = routing.parse_conditions(value, "routes[0].when", problems)
    if not problems:
        routing.matches(conditions, {"data": {"a": 1}})


@props
@given(text=st.text(max_size=30), document=json_values)
def test_any_path_text_is_judged_and_valid_paths_look_up_safely(text: str, document: Any) -> None:
    for path in (text, "$" + text, "$." + text):
        if routing.valid_path(path):
            routing.lookup(document, path)


def path_of(route: list[str | int]) -> str:
    return "$" + "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in route)


def build(route: list[str | int], leaf: Any) -> Any:
    value = leaf
    for step in reversed(route):
        value = [None] * step + [value] if isinstance(step, int) else {step: value}
    return value


@props
@given(route=steps, leaf=json_values)
def test_a_path_finds_what_it_points_at(route: list[str | int], leaf: Any) -> None:
    path = path_of(route)
    assert routing.valid_path(path)
    assert routing.lookup(build(route, leaf), path) == leaf
    problems: list[str] = []
    assert routing.parse_mapping(path, "k", problems) == routing.Path(path=path)
    assert problems == []


@props
@given(route=st.lists(keys | st.integers(0, 3), min_size=1, max_size=6), document=json_values)
def test_absent_paths_are_missing_and_left_out_of_the_input(route: list[str | int], document: Any) -> None:
    path = path_of(route)
    found = routing.lookup(document, path)
    rendered = routing.render({"x": routing.Path(path=path)}, document)
    if routing.is_missing(found):
        assert rendered == {}
    else:
        assert rendered == {"x": found}


@props
@given(value=json_values)
def test_constants_render_as_themselves(value: Any) -> None:
    problems: list[str] = []
    assert routing.render(routing.parse_mapping({"const": value}, "k", problems), {}) == value
    assert problems == []
