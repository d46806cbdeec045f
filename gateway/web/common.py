"""Small helpers shared by the JSON endpoints."""

from __future__ import annotations

import enum
import re
from typing import Any, TypeVar

import msgspec
from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.core import fastjson
from gateway.domain import errors
from gateway.runtime.wiring import Services

E = TypeVar("E", bound=enum.Enum)
_DIGITS = re.compile(r"[0-9]{1,6}")  # ASCII only: str.isdigit() also takes "²", which int() refuses


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


class FastJSONResponse(JSONResponse):
    """JSONResponse rendered with msgspec (a shape from ``gateway.web.shapes``) or orjson (plain data)."""

    def render(self, content: Any) -> bytes:
        if isinstance(content, msgspec.Struct):
            return msgspec.json.encode(content)
        return fastjson.dumps(content)


def json(data: Any, status: int = 200) -> JSONResponse:
    return FastJSONResponse(data, status_code=status)


def plain(shape: msgspec.Struct) -> dict[str, Any]:
    """A shape as plain data (for templates and the CLI): what its JSON encoding holds."""
    found: dict[str, Any] = msgspec.to_builtins(shape)
    return found


def query_limit(request: Request, default: int = 50, maximum: int = 500) -> int:
    raw = request.query_params.get("limit")
    if raw is None:
        return default
    if not _DIGITS.fullmatch(raw) or not 1 <= int(raw) <= maximum:
        raise errors.BadRequest(f"limit must be an integer from 1 to {maximum}")
    return int(raw)


def query_enum(request: Request, name: str, kind: type[E]) -> E | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        return kind(raw)
    except ValueError:
        allowed = ", ".join(str(m.value) for m in kind)
        raise errors.BadRequest(f"{name} must be one of: {allowed}") from None


def query_text(request: Request, name: str) -> str | None:
    raw = request.query_params.get(name)
    if raw is not None and (not raw or len(raw) > 200):
        raise errors.BadRequest(f"{name} must be 1 to 200 characters")
    return raw


def next_before(items: list[Any], limit: int) -> str | None:
    """The cursor of the next page (the last item's id) when this page is full."""
    last: str | None = items[-1].id if len(items) == limit else None
    return last
