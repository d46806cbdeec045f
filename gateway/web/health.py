"""/healthz: the process answers. /readyz: the store answers and every migration is applied."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gateway.web import guard, shapes
from gateway.web.common import json, services
from gateway.web.operation import Answer, ok, operation

ALIVE = shapes.Alive(status="ok")


@operation("GET /healthz", "healthz", guard.PUBLIC, ok(200, "Alive", shapes.Alive))
async def healthz(request: Request) -> Response:
    """The process answers"""
    return json(ALIVE)


@operation(
    "GET /readyz",
    "readyz",
    guard.PUBLIC,
    (Answer(200, "Ready", (shapes.Ready,)), Answer(503, "Not ready", (shapes.NotReady,))),
)
async def readyz(request: Request) -> Response:
    """The store answers and every migration is applied"""
    try:
        report = await services(request).store.check()
    except Exception:
        return json({"status": "unavailable", "store": "unreachable"}, status=503)
    if report["pending_migrations"]:
        return json({"status": "unavailable", **report}, status=503)
    return json({"status": "ready", **report})
