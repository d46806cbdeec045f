"""Reading request bodies with a hard size limit, with or without Content-Length, chunked or not."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import ClientDisconnect, Request

from gateway import errors
from gateway.core import jsontext

_LENGTH = re.compile(r"[0-9]{1,19}")  # ASCII digits only: str.isdigit() also takes "²", which int() refuses


async def read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        if not _LENGTH.fullmatch(declared):
            raise errors.BadRequest("Content-Length is not a number")
        if int(declared) > limit:
            raise errors.PayloadTooLarge(f"body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise errors.PayloadTooLarge(f"body is larger than {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:
        raise errors.BadRequest("client disconnected before the body was read") from None
    return b"".join(chunks)


async def read_json(request: Request, limit: int) -> Any:
    return parse_json(await read_limited(request, limit))


def parse_json(body: bytes) -> Any:
    """The request body as JSON, through the one guard for untrusted JSON (``gateway.core.jsontext``)."""
    try:
        return jsontext.loads(body)
    except ValueError as exc:
        raise errors.BadRequest(f"body is not usable JSON ({exc})") from None
