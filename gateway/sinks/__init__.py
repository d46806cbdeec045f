"""Sinks: where finished runs are delivered. A registry of kind → module, imported lazily.

Each sink module defines ``parse_settings(name, data, ctx)`` (pure; problems go to ``ctx``) and
``build(settings, *, http, clock)``, which returns an object implementing ``gateway.domain.ports.Sink``.

A plug-in: may import ``outbound``, ``store``, ``observability``, ``core`` and ``domain``; not the other
plug-ins, and nothing above them.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, Protocol, cast

import httpx

from gateway.core.config_types import ParseContext
from gateway.domain.ports import Clock, Sink

SINKS: dict[str, str] = {"http": "gateway.sinks.http", "jsonl": "gateway.sinks.jsonl"}

# Settings keys every sink table may hold; the settings loader reads them, sink modules ignore them.
COMMON_KEYS = frozenset(
    {"kind", "flows", "on", "retry_delays", "max_attempts", "per_second", "timeout", "disable_after_days"}
)


class SinkModule(Protocol):
    def parse_settings(self, name: str, data: Mapping[str, Any], ctx: ParseContext) -> Any: ...

    def build(self, settings: Any, *, http: httpx.AsyncClient, clock: Clock) -> Sink: ...


def sink_module(kind: str) -> SinkModule:
    """The module implementing sink ``kind``. Raises KeyError for unknown kinds."""
    return cast(SinkModule, importlib.import_module(SINKS[kind]))
