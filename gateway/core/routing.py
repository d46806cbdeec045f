"""Route matching and the small declarative input mapping (paths into the event, constants)."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.domain.model import JSON, CloudEvent

_MISSING = object()
_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
_FULL_PATH = re.compile(r"^\$(\.[^.\[\]]+|\[\d+\])*$")
_CONDITION_OPS = ("equals", "not_equals", "in", "exists")


@dataclass(frozen=True, slots=True, kw_only=True)
class Condition:
    path: str
    op: str
    value: Any = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Const:
    value: Any


@dataclass(frozen=True, slots=True, kw_only=True)
class Path:
    path: str


Mapping_ = Const | Path | dict[str, "Mapping_"]


def valid_path(path: str) -> bool:
    return bool(_FULL_PATH.match(path))


def lookup(document: Any, path: str) -> Any:
    """Resolve ``$.a.b[0].c`` in a JSON-like document; returns the _MISSING sentinel when absent."""
    current = document
    for step in _steps(path):
        if isinstance(step, str):
            if isinstance(current, Mapping) and step in current:
                current = current[step]
                continue
        elif type(current) is list and step < len(current):
            current = current[step]
            continue
        return _MISSING
    return current


@functools.lru_cache(maxsize=1024)
def _steps(path: str) -> tuple[str | int, ...]:
    """A path's keys (str) and list indexes (int), parsed once."""
    if path == "$":
        return ()
    return tuple(key if key else int(index) for key, index in _SEGMENT.findall(path[1:]))


def is_missing(value: Any) -> bool:
    return value is _MISSING


def event_document(event: CloudEvent) -> JSON:
    return event.as_dict()


def matches(conditions: Sequence[Condition], document: Any) -> bool:
    return all(_holds(condition, lookup(document, condition.path)) for condition in conditions)


def _holds(condition: Condition, found: Any) -> bool:
    if condition.op == "exists":
        return (found is not _MISSING) == bool(condition.value)
    if found is _MISSING:
        return condition.op == "not_equals"
    if condition.op == "equals":
        return same(found, condition.value)
    if condition.op == "not_equals":
        return not same(found, condition.value)
    return any(same(found, option) for option in condition.value)  # "in"


def same(a: Any, b: Any) -> bool:
    """JSON equality: ``true`` is not ``1`` and ``false`` is not ``0`` (Python's ``==`` says they are)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(a == b)


def render(mapping: Mapping_, document: Any) -> Any:
    """Build the flow input: Path nodes read the event, Const nodes are literal; absent paths are left out."""
    if isinstance(mapping, Const):
        return mapping.value
    if isinstance(mapping, Path):
        found = lookup(document, mapping.path)
        return None if found is _MISSING else found
    out: JSON = {}
    for key, node in mapping.items():
        if isinstance(node, Path):
            found = lookup(document, node.path)
            if found is not _MISSING:
                out[key] = found
            continue
        out[key] = render(node, document)
    return out


def parse_mapping(value: Any, key: str, problems: list[str]) -> Mapping_:
    """TOML → mapping: ``"$.x"`` strings are paths, ``{const = v}`` and other literals are constants."""
    if isinstance(value, str) and value.startswith("$"):
        if not valid_path(value):
            problems.append(f"{key}: {value!r} is not a valid path (use $.a.b[0].c)")
        return Path(path=value)
    if isinstance(value, Mapping):
        if set(value) == {"const"}:
            return Const(value=value["const"])
        return {str(k): parse_mapping(v, f"{key}.{k}", problems) for k, v in value.items()}
    return Const(value=value)


def parse_conditions(value: Any, key: str, problems: list[str]) -> list[Condition]:
    if value is None:
        return []
    if not isinstance(value, list):
        problems.append(f"{key}: must be a list of {{path, equals|not_equals|in|exists}} tables")
        return []
    conditions = []
    for i, item in enumerate(value):
        item_key = f"{key}[{i}]"
        ops = [op for op in _CONDITION_OPS if isinstance(item, Mapping) and op in item]
        if not isinstance(item, Mapping) or len(ops) != 1 or not isinstance(item.get("path"), str):
            problems.append(f"{item_key}: needs a path and exactly one of {', '.join(_CONDITION_OPS)}")
            continue
        if not valid_path(item["path"]):
            problems.append(f"{item_key}.path: {item['path']!r} is not a valid path")
        if ops[0] == "in" and not isinstance(item["in"], list):
            problems.append(f"{item_key}.in: must be a list")
            continue
        conditions.append(Condition(path=item["path"], op=ops[0], value=item[ops[0]]))
    return conditions
