"""JSONPath-like paths into a run context: ``$.input.patientId``, ``$.items[0].id``, or ``coverage``."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.domain.model import JSON

_SEGMENT = re.compile(r"\.([A-Za-z0-9_-]+)|\[(\d+)\]")


@dataclass(frozen=True, slots=True)
class Path:
    """A parsed path: object keys (str) and list indexes (int), outermost first."""

    segments: tuple[str | int, ...]

    def __str__(self) -> str:
        return "$" + "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in self.segments)


def parse(text: str) -> Path | None:
    """Parse ``$.a.b[0]`` (a leading ``$.`` may be left out); None when the text is not a path."""
    if not text or text == "$":
        return None
    body = text[1:] if text.startswith("$") else "." + text
    segments: list[str | int] = []
    position = 0
    while position < len(body):
        match = _SEGMENT.match(body, position)
        if match is None:
            return None
        key, index = match.groups()
        segments.append(key if key is not None else int(index))
        position = match.end()
    return Path(tuple(segments))


def resolve(context: Any, path: Path) -> tuple[bool, Any]:
    """Return (found, value) for ``path`` in ``context``."""
    value = context
    for segment in path.segments:
        if isinstance(segment, int) and isinstance(value, list) and segment < len(value):
            value = value[segment]
        elif isinstance(segment, str) and isinstance(value, Mapping) and segment in value:
            value = value[segment]
        else:
            return False, None
    return True, value


def assign(context: Mapping[str, Any], path: Path, value: Any) -> JSON:
    """A copy of ``context`` with ``value`` at ``path``; missing or non-object parents become objects.

    Only key segments are honoured when writing; an index segment is used as a key.
    """
    result = copy.deepcopy(dict(context))
    target = result
    *parents, last = (str(s) for s in path.segments)
    for key in parents:
        child = target.get(key)
        if not isinstance(child, dict):
            child = target[key] = {}
        target = child
    target[last] = copy.deepcopy(value)
    return result
