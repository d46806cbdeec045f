"""Fast JSON encoding with orjson, falling back to the standard library for what orjson refuses
(integers beyond 64 bits, lone surrogates, non-string keys), so every value json accepted still encodes."""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

_LONG_DIGITS = re.compile(rb"\d{19}")


def dumps(value: Any, *, sort_keys: bool = False) -> bytes:
    """Compact UTF-8 JSON."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS if sort_keys else 0)
    except TypeError:
        text = json.dumps(value, separators=(",", ":"), sort_keys=sort_keys, ensure_ascii=False)
        # A lone surrogate cannot be UTF-8: inside a JSON string its backslash escape (\ud800) is the same value.
        return text.encode(errors="backslashreplace")


def loads(data: bytes | str) -> Any:
    """Parse JSON this service wrote (or any valid JSON); what orjson refuses goes to the standard parser, and
    so does text with a 19+ digit run (orjson reads integers beyond 64 bits as floats)."""
    if _LONG_DIGITS.search(data if isinstance(data, bytes) else data.encode()):
        return json.loads(data)
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)
