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


class DuplicateKey(ValueError):
    pass


def loads(raw: bytes | str) -> Any:
    if isinstance(raw, bytes | bytearray):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("JSON text is not UTF-8") from None
    try:
        value = json.loads(raw, object_pairs_hook=_unique_keys)
    except RecursionError:
        raise ValueError(f"JSON is nested more than {MAX_DEPTH} levels deep") from None
    except DuplicateKey:
        raise ValueError("JSON object has a duplicate key") from None
    except ValueError:
        raise ValueError("invalid JSON") from None
    _check(value)
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        raise DuplicateKey
    return found


def _check(value: Any) -> None:
    """Depth, numbers and strings of a parsed value, walked without recursion."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, str):
            _check_text(item)
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise ValueError("JSON number is not finite (NaN, Infinity or out of range)")
        elif isinstance(item, dict | list):
            if level >= MAX_DEPTH:
                raise ValueError(f"JSON is nested more than {MAX_DEPTH} levels deep")
            if isinstance(item, dict):
                for key in item:
                    _check_text(key)
                children: Any = item.values()
            else:
                children = item
            stack.extend((child, level + 1) for child in children)


def _check_text(text: str) -> None:
    if not text.isascii() and _SURROGATE.search(text):
        raise ValueError("JSON string holds a lone surrogate")
