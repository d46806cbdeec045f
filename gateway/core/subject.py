"""An item's subject line from ``[flows.NAME.review] subject``, and the words a subject search matches. Pure.

The template language is deliberately tiny: literal text with ``{input.a.b}`` or ``{gathered.x}`` fields
(dotted keys, list indexes as numbers), ``{{`` and ``}}`` for literal braces. A field that is missing
renders empty; nothing is ever evaluated, called or formatted beyond turning a value into text.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ROOTS = ("input", "gathered")
MAX_LENGTH = 200
MAX_WORDS = 40
PREFIX_FROM = 3  # a search word of at least this many letters also matches the start of a longer word
PREFIX_UP_TO = 10  # prefixes longer than this are not indexed (a longer search word must match whole)
_FIELD = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_PATH = re.compile(r"[A-Za-z0-9_\-]+(\.[A-Za-z0-9_\-]+)*")
_WORD = re.compile(r"\w+")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Template:
    source: str  # as configured
    parts: tuple[str | tuple[str, ...], ...]  # literal text, or a field's path (root first)

    def render(self, data: Mapping[str, Any]) -> str:
        text = "".join(part if isinstance(part, str) else _text(_lookup(data, part)) for part in self.parts)
        text = _SPACE.sub(" ", "".join(ch for ch in text if unicodedata.category(ch)[0] != "C" or ch in "\t\n"))
        text = text.strip()
        return text if len(text) <= MAX_LENGTH else text[: MAX_LENGTH - 1] + "…"


def parse(source: str) -> Template:
    """The template, or ValueError naming what is wrong with it."""
    parts: list[str | tuple[str, ...]] = []
    at = 0
    for match in _FIELD.finditer(source):
        parts.append(source[at : match.start()])
        at = match.end()
        token = match.group(0)
        if token in ("{{", "}}"):
            parts.append(token[:1])
            continue
        path = (match.group(1) or "").strip()
        if match.group(1) is None or not _PATH.fullmatch(path):
            raise ValueError(
                f"{token!r} at {match.start()} is not a field like {{input.patientId}} (use {{{{ for a brace)"
            )
        keys = tuple(path.split("."))
        if keys[0] not in ROOTS or len(keys) < 2:
            raise ValueError(f"field {{{path}}} must start with input. or gathered.")
        parts.append(keys)
    parts.append(source[at:])
    return Template(source, tuple(part for part in parts if part != ""))


def _lookup(data: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = data
    for key in path:
        if isinstance(value, Mapping):
            value = value.get(key)
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            return None
    return value


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)  # the default separators: ", " and ": "


def words(text: str) -> list[str]:
    """The words of a subject or a search, in the one form both are compared in (NFKC, case-folded)."""
    return _WORD.findall(unicodedata.normalize("NFKC", text).casefold())[:MAX_WORDS]


def index_terms(subject: str) -> set[str]:
    """What a subject is found by: each whole word, and each word's prefixes of PREFIX_FROM..PREFIX_UP_TO letters."""
    terms: set[str] = set()
    for word in words(subject):
        terms.add(word)
        terms.update(word[:n] for n in range(PREFIX_FROM, min(len(word), PREFIX_UP_TO) + 1))
    return terms


def search_terms(query: str) -> list[str]:
    """The terms a search must all find (a longer word is looked up by its longest indexed prefix)."""
    return sorted({word[:PREFIX_UP_TO] for word in words(query)})
