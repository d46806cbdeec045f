"""What a review asks for, and whether an operator's input fits it (options, and a JSON Schema).

Schemas are JSON Schema Draft 2020-12, checked by the ``jsonschema`` library against an empty
``referencing.Registry``: a ``$ref`` must point inside the schema itself, and nothing is ever fetched.
Problems are written here from the failing keyword and the schema's own values, never from the input's values.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError
from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from gateway.domain.model import PendingInput

_NOTHING_REMOTE: Registry[Any] = Registry()  # no resources and no retrieve: an outside $ref never resolves
_REFERENCES = ("$ref", "$dynamicRef")
_MAX_REASON = 200


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
    found = [(request, validate_input(request, value)) for request in requests]
    if not found or not all(problems for _, problems in found):
        return []
    if len(found) == 1:
        return found[0][1]
    each = " | ".join(f"{r.key or '*'}: {'; '.join(p)}" for r, p in found)
    return [f"the pause point is not known yet, and the input fits none of the flow's pause points ({each})"]


def validate_input(request: PendingInput, value: Any) -> list[str]:
    """Problems with ``value`` as an answer to ``request``; empty when it fits. The one check of a decision."""
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


def schema_problems(schema: Any) -> list[str]:
    """Why ``schema`` cannot check input: not a Draft 2020-12 schema, or a reference that does not resolve
    inside it. Empty when it is usable."""
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        return [f"{_where('schema', exc.absolute_path)} is not valid JSON Schema ({_short(exc.message)})"]
    resolver = _NOTHING_REMOTE.resolver_with_root(DRAFT202012.create_resource(schema))
    problems = []
    for reference in _references(schema):
        try:
            resolver.lookup(reference)
        except Unresolvable:
            problems.append(f"schema $ref {_short(reference)!r} does not point inside the schema (nothing is fetched)")
    return problems


def check_schema(schema: Any, value: Any, where: str) -> list[str]:
    """Problems with ``value`` under ``schema`` (Draft 2020-12), each naming where in ``value`` it is; sorted,
    so that the order does not depend on how the schema's keys were stored, and each said once (the library
    reports ``required`` once per missing member, and each report names every missing member)."""
    unusable = schema_problems(schema)
    if unusable:
        return [f"the input schema of this pause cannot be used: {problem}" for problem in unusable]
    validator = Draft202012Validator(schema, registry=_NOTHING_REMOTE)
    try:
        return sorted({problem for error in validator.iter_errors(value) for problem in _describe(error, where)})
    except Unresolvable:
        return ["the input schema of this pause cannot be used: a $ref does not resolve inside it"]


def _references(schema: Any) -> Iterator[str]:
    pending = [schema]
    while pending:
        current = pending.pop()
        if not isinstance(current, Mapping):
            continue
        yield from (current[name] for name in _REFERENCES if isinstance(current.get(name), str))
        pending.extend(DRAFT202012.subresources_of(current))


def _where(root: str, path: Iterable[Any]) -> str:
    return root + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path)


def _short(text: str) -> str:
    return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 1] + "…"


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _kinds(expected: Any) -> str:
    return " or ".join(expected) if isinstance(expected, list) else str(expected)


_RULES: dict[str, Callable[[Any], str]] = {
    "type": lambda expected: f"must be of type {_kinds(expected)}",
    "enum": lambda expected: f"must be one of: {', '.join(map(_show, expected))}",
    "const": lambda expected: f"must be {_show(expected)}",
    "pattern": lambda expected: f"must match the pattern {expected}",
    "minLength": lambda expected: f"is shorter than {expected}",
    "maxLength": lambda expected: f"is longer than {expected}",
    "minimum": lambda expected: f"is below {expected}",
    "maximum": lambda expected: f"is above {expected}",
    "exclusiveMinimum": lambda expected: f"must be above {expected}",
    "exclusiveMaximum": lambda expected: f"must be below {expected}",
    "multipleOf": lambda expected: f"must be a multiple of {expected}",
    "minItems": lambda expected: f"must have at least {expected} items",
    "maxItems": lambda expected: f"must have at most {expected} items",
    "uniqueItems": lambda expected: "must not repeat an item",
    "minProperties": lambda expected: f"must have at least {expected} members",
    "maxProperties": lambda expected: f"must have at most {expected} members",
    "oneOf": lambda expected: "must match exactly one of the allowed forms (oneOf)",
    "anyOf": lambda expected: "must match at least one of the allowed forms (anyOf)",
    "not": lambda expected: "must not match the excluded form (not)",
}


def _describe(error: ValidationError, root: str) -> list[str]:
    where = _where(root, error.absolute_path)
    keyword = error.validator
    expected: Any = error.validator_value
    instance: Any = error.instance
    if keyword is None:  # the schema ``false``; the library does not say which member met it
        return [f"{where} holds something the schema does not allow"]
    if keyword == "required":
        return [f"{where}.{name} is required" for name in expected if name not in instance]
    if keyword == "additionalProperties" and expected is False:
        return [f"{where}.{name} is not allowed" for name in _additional(error.schema, instance)]
    rule = _RULES.get(str(keyword))
    return [f"{where} {rule(expected)}" if rule else f"{where} does not satisfy the schema's {keyword!r} rule"]


def _additional(schema: Any, instance: Mapping[str, Any]) -> list[str]:
    """The members ``additionalProperties: false`` refused (as the library finds them)."""
    declared = schema.get("properties", {})
    patterns = schema.get("patternProperties", {})
    return [name for name in instance if name not in declared and not any(re.search(p, name) for p in patterns)]
