from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from gateway.core import fastjson

values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(values)
def test_encodes_what_the_standard_library_encodes_to_the_same_value(value: object) -> None:
    for sort_keys in (False, True):
        encoded = fastjson.dumps(value, sort_keys=sort_keys)
        assert json.loads(encoded) == json.loads(json.dumps(value, sort_keys=sort_keys))
        assert fastjson.loads(encoded) == json.loads(encoded)


def test_sorted_output_matches_the_standard_library_byte_for_byte_on_plain_data() -> None:
    value = {"b": [1, "é", None], "a": {"z": True, "m": 2.5}}
    expected = json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False).encode()
    assert fastjson.dumps(value, sort_keys=True) == expected


def test_values_orjson_refuses_still_encode() -> None:
    huge = 2**70
    assert json.loads(fastjson.dumps({"n": huge})) == {"n": huge}
    for big in (huge, -(2**63) - 1, 2**64):
        assert fastjson.loads(fastjson.dumps([big])) == [big]  # not read back as a float
    assert fastjson.dumps({1: "x"}) == b'{"1":"x"}'
    assert fastjson.loads(b'{"n": NaN}')["n"] != 0  # the standard parser's extensions stay readable


def test_non_finite_numbers_become_null_so_the_output_stays_valid_json() -> None:
    assert fastjson.dumps({"x": float("inf")}) == b'{"x":null}'
