"""Secret and ParseContext: every value each parser accepts, every refusal with its exact problem text."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.core.config_types import ParseContext, Secret

SIGNING = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_a_secret_never_shows_its_value_and_compares_by_value_only() -> None:
    secret = Secret("hunter2", env="PASS")
    assert secret.reveal() == "hunter2" and secret.env == "PASS"
    assert repr(secret) == str(secret) == "Secret(env='PASS', value='**********')"
    assert repr(Secret("x")) == "Secret(env=None, value='**********')" and Secret("x").env is None
    assert secret == Secret("hunter2", env="OTHER") and hash(secret) == hash(Secret("hunter2")) == hash("hunter2")
    assert secret != Secret("hunter3", env="PASS")
    assert secret != "hunter2"


def test_problems_are_kept_in_order_as_key_colon_message() -> None:
    ctx = ParseContext(environ={})
    ctx.problem("a.b", "first")
    ctx.problem("c", "second")
    assert ctx.problems == ["a.b: first", "c: second"]


def test_defaults() -> None:
    ctx = ParseContext(environ={})
    assert (ctx.self_url, dict(ctx.dev_secrets), ctx.problems, ctx.dev_secrets_used) == (
        "http://127.0.0.1:8000",
        {},
        [],
        [],
    )


def test_a_secret_is_read_from_the_named_variable() -> None:
    ctx = ParseContext(environ={"TOKEN": "t0k"}, dev_secrets={"TOKEN": "dev"})
    secret = ctx.secret("k", "TOKEN")
    assert secret is not None and (secret.reveal(), secret.env) == ("t0k", "TOKEN")
    assert (ctx.problems, ctx.dev_secrets_used) == ([], [])  # the environment wins over a development fallback


def test_an_unset_variable_falls_back_to_a_development_secret_and_says_so() -> None:
    ctx = ParseContext(environ={}, dev_secrets={"TOKEN": "dev"})
    secret = ctx.secret("k", "TOKEN")
    assert secret is not None and (secret.reveal(), secret.env) == ("dev", "TOKEN")
    assert (ctx.problems, ctx.dev_secrets_used) == ([], ["TOKEN"])


@pytest.mark.parametrize(
    ("env_name", "environ", "dev", "problem"),
    [
        (None, {}, {}, "k: is required (the name of an environment variable)"),
        (5, {}, {}, "k: must be the name of an environment variable"),
        ("", {"": "x"}, {}, "k: must be the name of an environment variable"),
        ("MISSING", {}, {"OTHER": "x"}, "k: environment variable MISSING is not set"),
        ("EMPTY", {"EMPTY": ""}, {"EMPTY": "dev"}, "k: environment variable EMPTY is not set"),
        ("EMPTY", {}, {"EMPTY": ""}, "k: environment variable EMPTY is not set"),
    ],
)
def test_a_secret_that_cannot_be_read_is_one_problem(
    env_name: Any, environ: dict[str, str], dev: dict[str, str], problem: str
) -> None:
    ctx = ParseContext(environ=environ, dev_secrets=dev)
    assert ctx.secret("k", env_name) is None
    assert ctx.problems == [problem]


def test_an_optional_secret_may_be_absent() -> None:
    ctx = ParseContext(environ={})
    assert ctx.secret("k", None, required=False) is None
    assert ctx.problems == []
    assert ctx.secret("k", "MISSING", required=False) is None  # named but unset is still a problem
    assert ctx.problems == ["k: environment variable MISSING is not set"]


def test_secrets_take_one_name_or_a_list_and_name_each_missing_one_by_index() -> None:
    ctx = ParseContext(environ={"A": "a", "C": "c"})
    assert [s.reveal() for s in ctx.secrets("k", "A")] == ["a"]
    assert [s.reveal() for s in ctx.secrets("k", ["A", "B", "C"])] == ["a", "c"]
    assert ctx.problems == ["k[1]: environment variable B is not set"]


@pytest.mark.parametrize("value", [[], None, 5, {"A": "a"}])
def test_secrets_must_be_a_non_empty_list(value: Any) -> None:
    ctx = ParseContext(environ={"A": "a"})
    assert ctx.secrets("k", value) == []
    assert ctx.problems == ["k: must be a non-empty list of environment variable names"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://example.com", "https://example.com"),
        ("http://example.com/hook//", "http://example.com/hook"),
        ("{self}/inbound", "http://gw:8000/inbound"),
        ("{self}", "http://gw:8000"),
        ("https://example.com/BOX/", "https://example.com/BOX"),  # only slashes are cut
    ],
)
def test_urls_are_http_or_https_with_self_filled_in_and_no_trailing_slash(value: str, expected: str) -> None:
    ctx = ParseContext(environ={}, self_url="http://gw:8000//")
    assert ctx.url("k", value) == expected
    assert ctx.problems == []


def test_only_the_slashes_of_the_own_url_are_cut() -> None:
    assert ParseContext(environ={}, self_url="http://gw/BOX/").url("k", "{self}/in") == "http://gw/BOX/in"


def test_an_optional_url_may_be_absent() -> None:
    ctx = ParseContext(environ={})
    assert ctx.url("k", None, required=False) is None
    assert ctx.problems == []


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (None, "k: must be a URL"),
        ("", "k: must be a URL"),
        (5, "k: must be a URL"),
        ("ftp://example.com", "k: must start with http:// or https:// (got 'ftp://example.com')"),
        ("example.com/{self}", "k: must start with http:// or https:// (got 'example.com/http://s')"),
        ("HTTP://example.com", "k: must start with http:// or https:// (got 'HTTP://example.com')"),
    ],
)
def test_a_bad_url_is_one_problem(value: Any, problem: str) -> None:
    ctx = ParseContext(environ={}, self_url="http://s/")
    assert ctx.url("k", value) is None
    assert ctx.problems == [problem]


def test_strings() -> None:
    ctx = ParseContext(environ={})
    assert ctx.string("k", "value") == "value"
    assert ctx.string("k", None, default="d") == "d"
    assert ctx.string("k", None, required=False) is None
    assert ctx.string("k", None, default="d", required=False) == "d"
    assert ctx.problems == []
    assert ctx.string("a", None) is None
    assert ctx.string("b", "", default="d") == "d"
    assert ctx.string("c", 5) is None
    assert ctx.string("d", ["x"], required=False) is None
    assert ctx.problems == [
        "a: is required",
        "b: must be a non-empty string",
        "c: must be a non-empty string",
        "d: must be a non-empty string",
    ]


def test_numbers_are_floats_within_inclusive_bounds() -> None:
    ctx = ParseContext(environ={})
    for value in (1, 1.5, 3):
        got = ctx.number("k", value, default=2.0, minimum=1, maximum=3)
        assert got == value and type(got) is float
    assert ctx.number("k", None, default=2.5) == 2.5
    assert ctx.number("k", -1e300, default=0.0) == -1e300  # no bounds, no limit
    assert ctx.number("k", 10, default=0.0, minimum=5) == 10.0
    assert ctx.number("k", 1, default=0.0, maximum=5) == 1.0
    assert ctx.problems == []


@pytest.mark.parametrize(
    ("value", "minimum", "maximum", "problem"),
    [
        (True, None, None, "k: must be a number"),
        (False, None, None, "k: must be a number"),
        ("1", None, None, "k: must be a number"),
        (0.99, 1, 3, "k: must be between 1 and 3"),
        (3.01, 1, 3, "k: must be between 1 and 3"),
        (0, 1, None, "k: must be between 1 and None"),
        (6, None, 5, "k: must be between None and 5"),
    ],
)
def test_a_bad_number_is_one_problem_and_gives_the_default(
    value: Any, minimum: float | None, maximum: float | None, problem: str
) -> None:
    ctx = ParseContext(environ={})
    assert ctx.number("k", value, default=7.5, minimum=minimum, maximum=maximum) == 7.5
    assert ctx.problems == [problem]


def test_integers_within_inclusive_bounds() -> None:
    ctx = ParseContext(environ={})
    assert [ctx.integer("k", value, default=2, minimum=1, maximum=3) for value in (1, 2, 3)] == [1, 2, 3]
    assert ctx.integer("k", None, default=9) == 9
    assert ctx.integer("k", -(10**30), default=0) == -(10**30)
    assert ctx.integer("k", 10, default=0, minimum=5) == 10
    assert ctx.integer("k", 1, default=0, maximum=5) == 1
    assert ctx.problems == []


@pytest.mark.parametrize(
    ("value", "minimum", "maximum", "problem"),
    [
        (True, None, None, "k: must be an integer"),
        (False, None, None, "k: must be an integer"),
        (1.0, None, None, "k: must be an integer"),
        ("1", None, None, "k: must be an integer"),
        (0, 1, 3, "k: must be between 1 and 3"),
        (4, 1, 3, "k: must be between 1 and 3"),
        (0, 1, None, "k: must be between 1 and None"),
        (6, None, 5, "k: must be between None and 5"),
    ],
)
def test_a_bad_integer_is_one_problem_and_gives_the_default(
    value: Any, minimum: int | None, maximum: int | None, problem: str
) -> None:
    ctx = ParseContext(environ={})
    assert ctx.integer("k", value, default=7, minimum=minimum, maximum=maximum) == 7
    assert ctx.problems == [problem]


def test_booleans() -> None:
    ctx = ParseContext(environ={})
    assert (ctx.boolean("k", True, default=False), ctx.boolean("k", False, default=True)) == (True, False)
    assert (ctx.boolean("k", None, default=True), ctx.boolean("k", None, default=False)) == (True, False)
    assert ctx.problems == []
    assert ctx.boolean("k", 1, default=True) is True
    assert ctx.boolean("k", "false", default=True) is True
    assert ctx.problems == ["k: must be true or false", "k: must be true or false"]


def test_signing_secrets_take_one_name_or_a_list_and_each_must_be_a_signing_key() -> None:
    ctx = ParseContext(environ={"S1": SIGNING, "S2": SIGNING.replace("M", "N", 1), "BAD": "plain"})
    one = ctx.signing_secrets("k", "S1")
    assert [s.reveal() for s in one] == [SIGNING] and isinstance(one, tuple)
    assert [s.env for s in ctx.signing_secrets("k", ["S1", "BAD", "MISSING", "S2"])] == ["S1", "S2"]
    assert ctx.problems == [
        "k[1]: is not a signing secret (expected whsec_<base64>)",
        "k[2]: environment variable MISSING is not set",
    ]


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("BAD", "k: is not a signing secret (expected whsec_<base64>)"),
        (None, "k: is required (the name of an environment variable)"),
        ([], "k: must be the name of an environment variable"),
    ],
)
def test_a_bad_signing_secret_is_one_problem_under_its_own_key(value: Any, problem: str) -> None:
    ctx = ParseContext(environ={"BAD": "whsec_!!"})
    assert ctx.signing_secrets("k", value) == ()
    assert ctx.problems == [problem]


def test_tables() -> None:
    ctx = ParseContext(environ={})
    given = {"a": 1}
    assert ctx.table("k", given) is given
    assert ctx.table("k", None) == {}
    assert ctx.problems == []
    assert ctx.table("k", [("a", 1)]) == {}
    assert ctx.problems == ["k: must be a table"]


def test_string_lists() -> None:
    ctx = ParseContext(environ={})
    given = ["a", "b"]
    got = ctx.string_list("k", given)
    assert got == ["a", "b"] and got is not given
    assert ctx.string_list("k", None) == []
    assert ctx.string_list("k", None, default=("x",)) == ["x"]
    assert ctx.string_list("k", []) == []
    assert ctx.problems == []
    for bad in ("a", ["a", ""], ["a", 1], ("a",)):
        assert ctx.string_list("k", bad, default=("d",)) == ["d"]
    assert ctx.problems == ["k: must be a list of strings"] * 4


def test_unknown_keys_are_named_with_their_table() -> None:
    ctx = ParseContext(environ={})
    ctx.unknown_keys("flows.a", {"known": 1, "typo": 2, "other": 3}, {"known"})
    ctx.unknown_keys("", {"top": 1, "known": 2}, {"known"})
    assert ctx.problems == [
        "flows.a.typo: is not a known setting",
        "flows.a.other: is not a known setting",
        "top: is not a known setting",
    ]
