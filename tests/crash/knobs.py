"""Fault knobs shared by the process fakes (fake provider, fake sink), set at start or through ``POST /_control``.

Each request draws once: with probability ``error_rate`` it gets one of ``faults`` (picked uniformly), otherwise a
healthy answer, delayed by ``uniform(*delay)`` seconds with probability ``slow_rate``. Faults: ``503``, ``500``,
``429`` (Retry-After in seconds), ``429-date`` (Retry-After as an HTTP-date), ``reset`` (a half-sent answer, the
connection drops), ``timeout`` (no answer for ``hang`` seconds), ``302`` (to a metadata address), ``410``, ``huge``
(a 200 with a multi-megabyte body).
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, fields
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

FAULTS = ("503", "500", "429", "429-date", "reset", "timeout", "302", "410", "huge")


@dataclass(slots=True, kw_only=True)
class Knobs:
    slow_rate: float = 0.0
    delay: tuple[float, float] = (0.2, 1.5)
    error_rate: float = 0.0
    faults: list[str] = field(default_factory=lambda: ["503"])
    retry_after: int = 1
    hang: float = 30.0

    def update(self, data: dict[str, Any]) -> None:
        names = {f.name for f in fields(self)}
        for key, value in data.items():
            if key not in names:
                raise ValueError(f"unknown knob {key}")
            setattr(self, key, tuple(value) if key == "delay" else value)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


def draw_fault(knobs: Knobs, rng: random.Random) -> str | None:
    if knobs.error_rate and rng.random() < knobs.error_rate:
        return rng.choice(knobs.faults)
    return None


async def maybe_slow(knobs: Knobs, rng: random.Random) -> None:
    if knobs.slow_rate and rng.random() < knobs.slow_rate:
        await asyncio.sleep(rng.uniform(*knobs.delay))


async def fault_response(name: str, knobs: Knobs) -> Response:
    if name in ("503", "500"):
        return JSONResponse({"error": {"code": "injected"}}, status_code=int(name))
    if name == "429":
        return JSONResponse({}, status_code=429, headers={"Retry-After": str(knobs.retry_after)})
    if name == "429-date":
        when = email.utils.formatdate(time.time() + knobs.retry_after, usegmt=True)
        return JSONResponse({}, status_code=429, headers={"Retry-After": when})
    if name == "302":
        return Response(status_code=302, headers={"Location": "http://169.254.169.254/latest/meta-data/"})
    if name == "410":
        return JSONResponse({}, status_code=410)
    if name == "huge":
        return StreamingResponse(_huge(8 * 1024 * 1024), media_type="application/json")
    if name == "timeout":
        await asyncio.sleep(knobs.hang)
        return JSONResponse({}, status_code=504)
    if name == "reset":
        return HalfResponse()
    raise ValueError(f"unknown fault {name}")


async def _huge(size: int) -> AsyncIterator[bytes]:
    chunk = b" " * 65536
    for _ in range(size // len(chunk)):
        yield chunk


class HalfResponse(Response):
    """Promises 1000 bytes, sends 10, then ends: the server drops the connection mid-answer."""

    def __init__(self) -> None:
        super().__init__(status_code=200)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1000")]})
        await send({"type": "http.response.body", "body": b"{" * 10, "more_body": False})


async def control(request: Request, knobs: Knobs) -> Response:
    if request.method == "POST":
        try:
            knobs.update(await request.json())
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
    return JSONResponse(knobs.as_dict())
