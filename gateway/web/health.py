"""/healthz: the process answers. /readyz: the store answers and every migration is applied."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gateway.web import shapes
from gateway.web.common import json, services

ALIVE = shapes.Alive(status="ok")


async def healthz(request: Request) -> Response:
    return json(ALIVE)


async def readyz(request: Request) -> Response:
    try:
        report = await services(request).store.check()
    except Exception:
        return json({"status": "unavailable", "store": "unreachable"}, status=503)
    if report["pending_migrations"]:
        return json({"status": "unavailable", **report}, status=503)
    return json({"status": "ready", **report})
