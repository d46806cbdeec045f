"""A JSON-schema subset for template and callback input: ``type``, ``required``, ``properties``, ``enum``,
``items`` and ``additionalProperties: false``. Problems name paths and rules, never the values given.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

KNOWN_KEYWORDS = frozenset(
    {"type", "required", "properties", "enum", "items", "additionalProperties", "title", "description"}
)
_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "null": (type(None),),
}


def check(schema: Any, where: str) -> list[tuple[str, str]]:
    """Problems that make ``schema`` unusable, as (key, message) pairs; ``where`` is its key."""
    if not isinstance(schema, Mapping):
        return [(where, "must be a table")]
    problems = [
        (f"{where}.{name}", "is not a supported schema keyword") for name in schema if name not in KNOWN_KEYWORDS
    ]
    kind = schema.get("type")
    if kind is not None and (not isinstance(kind, str) or kind not in _TYPES):
        problems.append((f"{where}.type", f"must be one of {', '.join(sorted(_TYPES))}"))
    required = schema.get("required", [])
    if not isinstance(required, list) or not all(isinstance(name, str) for name in required):
        problems.append((f"{where}.required", "must be a list of strings"))
    if "enum" in schema and (not isinstance(schema["enum"], list) or not schema["enum"]):
        problems.append((f"{where}.enum", "must be a non-empty list"))
    if "additionalProperties" in schema and not isinstance(schema["additionalProperties"], bool):
        problems.append((f"{where}.additionalProperties", "must be true or false"))
    properties = schema.get("properties", {})
    if not isinstance(properties, Mapping):
        problems.append((f"{where}.properties", "must be a table"))
    else:
        for name, sub in properties.items():
            problems += check(sub, f"{where}.properties.{name}")
    if "items" in schema:
        problems += check(schema["items"], f"{where}.items")
    return problems


def validate(value: Any, schema: Mapping[str, Any], where: str = "$") -> list[str]:
    """Problems of ``value`` against a schema that passed ``check``; empty when it fits."""
    kind = schema.get("type")
    if kind is not None and not _is_type(value, kind):
        return [f"{where}: must be of type {kind}"]
    if "enum" in schema and not any(_same(value, allowed) for allowed in schema["enum"]):
        return [f"{where}: must be one of the allowed values"]
    problems: list[str] = []
    if isinstance(value, dict):
        problems += _validate_object(value, schema, where)
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            problems += validate(item, schema["items"], f"{where}[{index}]")
    return problems


def _validate_object(value: dict[str, Any], schema: Mapping[str, Any], where: str) -> list[str]:
    properties: Mapping[str, Any] = schema.get("properties", {})
    problems = [f"{where}.{name}: is required" for name in schema.get("required", []) if name not in value]
    if schema.get("additionalProperties") is False:
        problems += [f"{where}.{name}: is not allowed" for name in value if name not in properties]
    for name, sub in properties.items():
        if name in value:
            problems += validate(value[name], sub, f"{where}.{name}")
    return problems


def _is_type(value: Any, kind: str) -> bool:
    if isinstance(value, bool) and kind not in ("boolean",):
        return False
    return isinstance(value, _TYPES[kind])


def _same(value: Any, allowed: Any) -> bool:
    return type(value) is type(allowed) and bool(value == allowed)
