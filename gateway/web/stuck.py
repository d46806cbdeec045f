"""GET /v1/runs/stuck (what is stuck) and POST /v1/runs/stuck/repair (repair what is safe to repair)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gateway.domain import errors
from gateway.engine.stuck import StuckRuns
from gateway.web import auth, shapes
from gateway.web.common import json, query_limit, services


def _stuck(request: Request) -> StuckRuns:
    svc = services(request)
    auth.operator(svc, request)
    if svc.stuck is None:
        raise errors.NotFound("stuck-run detection is not configured")
    return svc.stuck


async def list_stuck(request: Request) -> Response:
    stuck = _stuck(request)
    found = await stuck.find(query_limit(request, default=100))
    return json(shapes.StuckRuns(items=[shapes.StuckRun.of(item) for item in found]))


async def repair_stuck(request: Request) -> Response:
    stuck = _stuck(request)
    repaired = await stuck.repair(query_limit(request, default=100))
    return json(shapes.RepairedRuns(repaired=[shapes.StuckRun.of(item) for item in repaired]))
