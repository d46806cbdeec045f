"""What a review asks for, and whether an operator's input fits it (options, or a JSON-schema subset)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gateway.model import PendingInput

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "null": (type(None),),
}


def merge_request(provided: PendingInput | None, configured: PendingInput | None) -> PendingInput:
    """The provider's description of the pause wins; config fills what the provider does not say."""
    if provided is None:
        return configured or PendingInput()
    if configured is None:
        return provided
    return PendingInput(
        key=provided.key or configured.key,
        kind=provided.kind or configured.kind,
        message=provided.message or configured.message,
        options=provided.options if provided.options is not None else configured.options,
        schema=provided.schema if provided.schema is not None else configured.schema,
        assignee=provided.assignee or configured.assignee,
    )


def answerable(request: PendingInput, configured: Sequence[PendingInput]) -> list[PendingInput]:
    """What a decision on a review may answer: its own request; or, while neither the pause point nor the
    provider says what the pause asks, any one of the flow's configured pause points (never nothing)."""
    unknown = request.key is None and request.options is None and request.schema is None
    return list(configured) if unknown and configured else [request]


def validate_any(requests: Sequence[PendingInput], value: Any) -> list[str]:
    """Problems with ``value`` as an answer to one of ``requests``; empty when it fits at least one."""
    found = [validate_input(request, value) for request in requests]
    if not found or not all(found):
        return []
    if len(found) == 1:
        return found[0]
    each = " | ".join(f"{r.key or '*'}: {'; '.join(p)}" for r, p in zip(requests, found, strict=True))
    return [f"the pause point is not known yet, and the input fits none of the flow's pause points ({each})"]


def validate_input(request: PendingInput, value: Any) -> list[str]:
    """Problems with ``value`` as an answer to ``request``; empty when it fits."""
    if not isinstance(value, Mapping):
        return ["input must be a JSON object"]
    problems: list[str] = []
    if request.options is not None:
        choice = value.get("decision")
        if choice not in request.options:
            problems.append(f"input.decision must be one of: {', '.join(request.options)}")
    if request.schema is not None:
        problems.extend(check_schema(request.schema, value, "input"))
    return problems


def check_schema(schema: Mapping[str, Any], value: Any, where: str) -> list[str]:
    """A small JSON-schema subset: type, enum, const, required, properties, additionalProperties,
    items, minLength, maxLength, minimum, maximum."""
    problems: list[str] = []
    expected = schema.get("type")
    if expected is not None and not _is_type(value, expected):
        return [f"{where} must be of type {expected}"]
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{where} must be one of: {', '.join(map(str, schema['enum']))}")
    if "const" in schema and value != schema["const"]:
        problems.append(f"{where} must be {schema['const']!r}")
    if isinstance(value, Mapping):
        problems.extend(_check_object(schema, value, where))
    if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for i, item in enumerate(value):
            problems.extend(check_schema(schema["items"], item, f"{where}[{i}]"))
    problems.extend(_check_bounds(schema, value, where))
    return problems


def _is_type(value: Any, expected: Any) -> bool:
    names = expected if isinstance(expected, list) else [expected]
    for name in names:
        kinds = _TYPES.get(str(name), ())
        if isinstance(value, bool) and name in ("integer", "number"):
            continue
        if isinstance(value, kinds):
            return True
    return False


def _check_object(schema: Mapping[str, Any], value: Mapping[str, Any], where: str) -> list[str]:
    problems = [f"{where}.{name} is required" for name in schema.get("required", []) if name not in value]
    properties = schema.get("properties", {})
    for name, sub in properties.items():
        if name in value and isinstance(sub, Mapping):
            problems.extend(check_schema(sub, value[name], f"{where}.{name}"))
    if schema.get("additionalProperties") is False:
        problems.extend(f"{where}.{name} is not allowed" for name in value if name not in properties)
    return problems


def _check_bounds(schema: Mapping[str, Any], value: Any, where: str) -> list[str]:
    problems = []
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            problems.append(f"{where} is shorter than {schema['minLength']}")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            problems.append(f"{where} is longer than {schema['maxLength']}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            problems.append(f"{where} is below {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            problems.append(f"{where} is above {schema['maximum']}")
    return problems
