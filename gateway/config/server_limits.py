"""The ``[server]`` settings that protect the HTTP listener: size and time limits, the connection cap, and which
reverse proxies may say who the client is. Pure: parsed from the config, applied by ``gateway.serving.server``."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.core.config_types import ParseContext

KEYS = {"trusted_proxies", "header_bytes", "header_timeout", "body_timeout", "max_connections"}


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpLimits:
    header_bytes: int = 32 * 1024  # request line and headers together; more answers 431
    header_timeout: float = 10.0  # seconds from a request's first byte to the end of its headers; then 408
    body_timeout: float = 30.0  # seconds from the end of the headers to the end of the body; then 408
    max_connections: int = 1000  # open connections; more are answered 503 and closed
    trusted_proxies: tuple[str, ...] = ()  # addresses or networks whose X-Forwarded-For is believed


def parse_http_limits(data: Mapping[str, Any], ctx: ParseContext) -> HttpLimits:
    default = HttpLimits()
    return HttpLimits(
        header_bytes=ctx.integer(
            "server.header_bytes", data.get("header_bytes"), default=default.header_bytes, minimum=1024, maximum=2**20
        ),
        header_timeout=ctx.number(
            "server.header_timeout", data.get("header_timeout"), default=default.header_timeout, minimum=0.1
        ),
        body_timeout=ctx.number(
            "server.body_timeout", data.get("body_timeout"), default=default.body_timeout, minimum=0.1
        ),
        max_connections=ctx.integer(
            "server.max_connections", data.get("max_connections"), default=default.max_connections, minimum=1
        ),
        trusted_proxies=_proxies(data.get("trusted_proxies"), ctx),
    )


def _proxies(value: Any, ctx: ParseContext) -> tuple[str, ...]:
    proxies: list[str] = []
    for entry in ctx.string_list("server.trusted_proxies", value):
        try:
            proxies.append(str(ipaddress.ip_network(entry, strict=False)))
        except ValueError:
            ctx.problem("server.trusted_proxies", f"{entry!r} is not an IP address or network")
    return tuple(proxies)
