"""How deep JSON nests, and the refusal of documents nested too deeply."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.core import jsontext


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1, 0), ("x", 0), (None, 0), ([], 1), ({}, 1), ([[1], 2], 2), ([2, [1]], 2), ({"a": [{}], "b": 1}, 3)],
)
def test_depth_counts_arrays_and_objects(value: Any, expected: int) -> None:
    assert jsontext.depth(value) == expected


@pytest.mark.parametrize("raw", [b"[" * 100_000, b"[" * 65 + b"]" * 65])
def test_too_deep_is_a_value_error_that_says_so(raw: bytes) -> None:
    with pytest.raises(ValueError) as caught:
        jsontext.loads(raw)
    assert str(caught.value) == "JSON is nested more than 64 levels deep"
