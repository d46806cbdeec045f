"""Parsing untrusted JSON text: the one guard every JSON body, webhook and form field passes through.

``loads`` raises ``ValueError`` (its message is safe to show: it never echoes the input) for text that is
not UTF-8, is not JSON, or holds what the gateway could store but never render again:

- nesting deeper than ``MAX_DEPTH`` (``json.loads`` itself raises RecursionError on a megabyte of ``[``; a
  cap well below the interpreter's recursion limit also keeps later encoding and walking of the value safe);
- a lone surrogate (``"\\ud800"``) in a string or key: it cannot be encoded as UTF-8, so a row holding one
  breaks every page and export that reads it;
- ``NaN``, ``Infinity`` or a number too large for a float (``1e400``): not JSON, and stored as ``null``;
- a key given twice in one object: parsers disagree on which one wins.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_DEPTH = 64
_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_NOT_FINITE = "JSON number is not finite (NaN, Infinity or out of range)"


class Refused(ValueError):
    """Raised by the parser's hooks; its message is safe to show."""


def loads(raw: bytes | str) -> Any:
    if isinstance(raw, bytes | bytearray):
        try:
            raw = raw.decode()  # UTF-8, strict
        except UnicodeDecodeError:
            raise ValueError("JSON text is not UTF-8") from None
    try:
        value = json.loads(
            raw, object_pairs_hook=_unique_keys, parse_constant=_refuse_constant, parse_float=_finite_float
        )
    except RecursionError:
        raise ValueError(f"JSON is nested more than {MAX_DEPTH} levels deep") from None
    except Refused as exc:
        raise ValueError(str(exc)) from None
    except ValueError:
        raise ValueError("invalid JSON") from None
    # Decoded UTF-8 holds no surrogates: only a \uD800-\uDFFF escape can make one (a valid pair makes none).
    strings = _SURROGATE_ESCAPE.search(raw) is not None
    if strings or _openings(raw) > MAX_DEPTH:  # each level opens with a bracket, counted in C
        _check(value, strings=strings)
    return value


def _openings(raw: str) -> int:
    """An upper bound of the nesting depth: brackets inside strings only make it larger."""
    return raw.count("[") + raw.count("{")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        raise Refused("JSON object has a duplicate key")
    return found


def _refuse_constant(name: str) -> Any:
    raise Refused(_NOT_FINITE)


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):  # 1e400 parses as inf
        raise Refused(_NOT_FINITE)
    return number


def _check(value: Any, *, strings: bool) -> None:
    """Depth (and strings, when escapes could hide a surrogate), walked without recursion."""
    if isinstance(value, str):
        _check_string(value)
        return
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if level > MAX_DEPTH:
            raise ValueError(f"JSON is nested more than {MAX_DEPTH} levels deep")
        if type(item) is dict:
            if strings:
                for key in item:
                    _check_string(key)
            children: Any = item.values()
        else:  # a list: only lists and dicts are stacked, and the caller's root is a string, a list or a dict
            children = item
        for child in children:
            kind = type(child)
            if kind is dict or kind is list:
                stack.append((child, level + 1))
            elif strings and kind is str:
                _check_string(child)


def _check_string(value: str) -> None:
    if not value.isascii() and _SURROGATE.search(value):
        raise ValueError("JSON string holds a lone surrogate")
