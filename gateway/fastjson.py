"""Fast JSON encoding with orjson, falling back to the standard library for what orjson refuses
(integers beyond 64 bits, lone surrogates, non-string keys), so every value json accepted still encodes."""

from __future__ import annotations

import json
from typing import Any

import orjson


def dumps(value: Any, *, sort_keys: bool = False) -> bytes:
    """Compact UTF-8 JSON."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS if sort_keys else 0)
    except TypeError:
        return json.dumps(value, separators=(",", ":"), sort_keys=sort_keys, ensure_ascii=False).encode()


def loads(data: bytes | str) -> Any:
    """Parse JSON this service wrote (or any valid JSON); what orjson refuses goes to the standard parser."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)
