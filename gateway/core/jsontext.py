"""Parsing untrusted JSON text: invalid text, and documents nested deeper than MAX_DEPTH, raise ValueError.

``json.loads`` itself raises RecursionError (not ValueError) on very deep input such as a megabyte of ``[``;
a cap well below the interpreter's recursion limit also keeps later encoding and walking of the value safe.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 64


def loads(raw: bytes | str) -> Any:
    try:
        value = json.loads(raw)
    except RecursionError:
        raise ValueError(f"JSON is nested more than {MAX_DEPTH} levels deep") from None
    if _openings(raw) > MAX_DEPTH and depth(value) > MAX_DEPTH:  # each level opens with a bracket
        raise ValueError(f"JSON is nested more than {MAX_DEPTH} levels deep")
    return value


def _openings(raw: bytes | str) -> int:
    """An upper bound of the nesting depth, counted in C: brackets in strings only make it larger."""
    if isinstance(raw, str):
        return raw.count("[") + raw.count("{")
    return raw.count(b"[") + raw.count(b"{")


def depth(value: Any) -> int:
    """How deeply arrays and objects nest in ``value`` (a scalar is 0), found without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level + 1)
        stack.extend((child, level + 1) for child in children)
    return deepest
