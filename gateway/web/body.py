"""Reading request bodies with a hard size limit, with or without Content-Length, chunked or not."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any, TypeVar

from starlette.requests import ClientDisconnect, Request
from starlette.types import Receive

from gateway.core import jsontext
from gateway.domain import errors
from gateway.web import shapes

B = TypeVar("B", bound=shapes.Body)

_LENGTH = re.compile(r"[0-9]{1,19}")  # ASCII digits only: str.isdigit() also takes "²", which int() refuses


async def read_limited(request: Request, limit: int) -> bytes:
    return await limited(request.headers.get("content-length"), request.stream(), limit)


async def limited(declared: str | None, stream: AsyncIterator[bytes], limit: int) -> bytes:
    """The body from ``stream``, refused as soon as ``declared`` (Content-Length) or what arrived is over ``limit``."""
    if declared is not None:
        if not _LENGTH.fullmatch(declared):
            raise errors.BadRequest("Content-Length is not a number")
        if int(declared) > limit:
            raise errors.PayloadTooLarge(f"body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in stream:
            size += len(chunk)
            if size > limit:
                raise errors.PayloadTooLarge(f"body is larger than {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        raise errors.BadRequest("client disconnected before the body was read") from None
    return b"".join(chunks)


async def chunks(receive: Receive) -> AsyncIterator[bytes]:
    """The body of an ASGI request as it arrives (what ``Request.stream()`` does, without a Request)."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        body: bytes = message.get("body", b"")
        if body:
            yield body
        if not message.get("more_body", False):
            return


async def read_json(request: Request, limit: int) -> Any:
    return parse_json(await read_limited(request, limit))


async def read_body(request: Request, limit: int, shape: type[B], *, empty: bool = False) -> B:
    """The body as ``shape`` (``gateway.web.shapes``): read within ``limit``, through the JSON guard, then
    decoded by msgspec. ``empty``: a blank body counts as ``{}``."""
    raw = await read_limited(request, limit)
    return shapes.decode({} if empty and not raw.strip() else parse_json(raw), shape)


def parse_json(body: bytes) -> Any:
    """The request body as JSON, through the one guard for untrusted JSON (``gateway.core.jsontext``)."""
    try:
        return jsontext.loads(body)
    except ValueError as exc:
        raise errors.BadRequest(f"body is not usable JSON ({exc})") from None
