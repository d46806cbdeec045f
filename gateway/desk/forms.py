"""The decision form: fields rendered from what a paused run asks for (options or JSON schema), and the
posted form read back into the input. Pure.

options -> one select named ``decision``; schema object properties: enum -> select, string -> text,
boolean -> checkbox, number / integer -> number; anything else (or no description) -> a JSON text area.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.core import jsontext
from gateway.core import review as review_rules
from gateway.domain import errors
from gateway.domain.model import PendingInput

FIELD_PREFIX = "in."
RAW_FIELD = "in.__json__"


@dataclass(frozen=True, slots=True, kw_only=True)
class Field:
    name: str  # the input property
    kind: str  # select, text, checkbox, number, integer, json
    label: str
    required: bool = False
    options: tuple[str, ...] = ()
    description: str | None = None

    @property
    def form_name(self) -> str:
        return RAW_FIELD if self.kind == "json" and self.name == "" else FIELD_PREFIX + self.name


def fields(request: PendingInput) -> list[Field]:
    found: list[Field] = []
    if request.options is not None:
        found.append(
            Field(name="decision", kind="select", label="Decision", required=True, options=tuple(request.options))
        )
    schema = request.schema if request.schema is None or not review_rules.schema_problems(request.schema) else {}
    if isinstance(schema, Mapping) and schema.get("type") == "object" and isinstance(schema.get("properties"), Mapping):
        required = set(schema.get("required", []))
        for name, sub in schema["properties"].items():
            if any(f.name == name for f in found) or not isinstance(sub, Mapping):
                continue
            found.append(_field(str(name), sub, str(name) in required))
    elif schema is not None or not found:
        found.append(Field(name="", kind="json", label="Input (a JSON object)", required=True))
    return found


def _field(name: str, schema: Mapping[str, Any], required: bool) -> Field:
    label = str(schema.get("title") or name.replace("_", " ").capitalize())
    description = schema.get("description") if isinstance(schema.get("description"), str) else None
    kind = schema.get("type")
    if isinstance(schema.get("enum"), list):
        options = tuple(str(v) for v in schema["enum"])
        return Field(name=name, kind="select", label=label, required=required, options=options, description=description)
    simple = {"string": "text", "boolean": "checkbox", "number": "number", "integer": "integer"}
    if kind in simple:
        return Field(name=name, kind=simple[str(kind)], label=label, required=required, description=description)
    return Field(name=name, kind="json", label=f"{label} (JSON)", required=required, description=description)


def read(request: PendingInput, form: Mapping[str, str]) -> Any:
    """The input an operator submitted; raises InvalidInput when a field cannot be read."""
    value: dict[str, Any] = {}
    for field in fields(request):
        raw = form.get(field.form_name)
        if field.name == "":
            return _json(raw or "", "input")
        if field.kind == "checkbox":
            value[field.name] = raw is not None
        elif raw is None or raw == "":
            continue
        elif field.kind == "select":
            value[field.name] = _enum_value(request, field, raw)
        elif field.kind in ("number", "integer"):
            value[field.name] = _number(raw, field)
        elif field.kind == "json":
            value[field.name] = _json(raw, field.name)
        else:
            value[field.name] = raw
    return value


def _enum_value(request: PendingInput, field: Field, raw: str) -> Any:
    """Give back the enum member itself (it may be a number or boolean), matched by its text."""
    schema = request.schema or {}
    members = schema.get("properties", {}).get(field.name, {}).get("enum") if isinstance(schema, Mapping) else None
    for member in members or []:
        if str(member) == raw:
            return member
    return raw


def _number(raw: str, field: Field) -> int | float:
    try:
        number = int(raw) if field.kind == "integer" else float(raw)
    except ValueError:
        raise errors.InvalidInput(f"{field.label} must be a number") from None
    if isinstance(number, float) and not math.isfinite(number):
        raise errors.InvalidInput(f"{field.label} must be a finite number")
    return number


def _json(raw: str, where: str) -> Any:
    try:
        return jsontext.loads(raw)
    except ValueError:
        raise errors.InvalidInput(f"{where} is not valid JSON") from None


RESERVED_KEYS = frozenset("jkcoxr?")  # the page's own shortcuts


def shortcut_keys(found: list[Field]) -> dict[str, str]:
    """One key per option when the form is a single choice whose options start with distinct free letters
    (approve / deny -> a / d); otherwise none, so a key never picks something the operator did not mean."""
    if len(found) != 1 or found[0].kind != "select":
        return {}
    keys = {option[:1].lower(): option for option in found[0].options}
    if len(keys) != len(found[0].options) or not all(key.isalpha() and key not in RESERVED_KEYS for key in keys):
        return {}
    return keys
