"""The provider registry: a ``kind`` in config names the module that parses settings and builds the provider.

Each module defines ``parse_settings(name, data, ctx)`` (pure) and ``build(settings, *, http, clock)``,
which returns an object that satisfies ``gateway.domain.ports.Provider``. Modules are imported only when used.

A plug-in: may import ``outbound``, ``store``, ``observability``, ``core`` and ``domain``; not the other
plug-ins, and nothing above them.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, cast

if TYPE_CHECKING:
    import httpx

    from gateway.core.config_types import ParseContext
    from gateway.domain.ports import Clock, Provider

PROVIDERS: dict[str, str] = {
    "sohar": "gateway.providers.sohar",
    "reminix": "gateway.providers.reminix",
    "transactionlink": "gateway.providers.transactionlink",
    "inferencesh": "gateway.providers.inferencesh",
}


class ProviderSettings(Protocol):
    @property
    def name(self) -> str: ...


class ProviderModule(Protocol):
    """What every provider module offers; the settings type is the module's own."""

    def parse_settings(self, name: str, data: Mapping[str, Any], ctx: ParseContext) -> ProviderSettings: ...

    def build(self, settings: Any, *, http: httpx.AsyncClient, clock: Clock) -> Provider: ...


def provider_module(kind: str) -> ProviderModule:
    """The module for a provider kind; KeyError for a kind that is not registered."""
    return cast("ProviderModule", importlib.import_module(PROVIDERS[kind]))
