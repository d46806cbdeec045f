"""Reading a JSON object from a request, as every emulator's HTTP surface does: 413 past ``MAX_BODY_BYTES``,
400 for a body that is not a JSON object, and optionally 415 for one not declared as ``application/json``."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from gateway.core import jsontext
from gateway.domain import errors
from gateway.domain.model import JSON

MAX_BODY_BYTES = 1_000_000


class NotJson(errors.UnsupportedMediaType):
    """The body must be sent as application/json."""


async def json_object(request: Request, *, allow_empty: bool = False, declared_json: bool = False) -> JSON:
    """The body as a JSON object; ``allow_empty``: an empty body is ``{}``; ``declared_json``: the content type
    must say ``application/json`` (``NotJson`` otherwise)."""
    if declared_json and request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise NotJson()
    body = await request.body()
    if len(body) > MAX_BODY_BYTES:
        raise errors.PayloadTooLarge()
    if allow_empty and not body.strip():
        return {}
    try:
        data: Any = jsontext.loads(body)
    except ValueError:
        raise errors.BadRequest("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise errors.BadRequest("the body must be a JSON object")
    return data
