"""Payloads as an operator reads them: text as written (no \\uXXXX), a key/value list for a flat object, indented
JSON for anything nested. Jinja's ``tojson`` is for embedding JSON in a script and escapes ``< > & '`` and
every non-ASCII letter; these helpers leave escaping to the template's HTML autoescape alone. Pure.
"""

from __future__ import annotations

import json
from typing import Any


def pretty(value: Any) -> str:
    """Indented JSON as written: non-ASCII letters and HTML-special characters stay themselves."""
    return json.dumps(value, ensure_ascii=False, indent=2)


def scalar(value: Any) -> str:
    """One value as text: strings as they are, true/false/null and numbers as JSON writes them."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def layout(value: Any) -> str:
    """How to show a payload: "empty", "text" (one scalar), "pairs" (a flat object) or "json" (nested)."""
    if value is None or value == {} or value == []:
        return "empty"
    if is_scalar(value):
        return "text"
    if isinstance(value, dict) and all(is_scalar(item) for item in value.values()):
        return "pairs"
    return "json"


def install(filters: dict[str, Any]) -> None:
    filters["pretty"] = pretty
    filters["scalar"] = scalar
    filters["layout"] = layout
