"""GET /v1/runs/stuck (what is stuck) and POST /v1/runs/stuck/repair (repair what is safe to repair)."""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response

from gateway.desk import access
from gateway.domain import errors
from gateway.engine.stuck import StuckRuns
from gateway.web import auth, shapes
from gateway.web.common import json, query_limit, services
from gateway.web.operation import Answer, E, limit, ok, operation


def on_stuck(route: str, op_id: str, scope: str, answers: tuple[Answer, ...]) -> Callable[[E], E]:
    """An operation on the stuck runs: 404 where stuck-run detection is not configured, at most ``limit`` runs."""
    return operation(route, op_id, scope, answers, 404, params=(limit(100, "At most this many"),))


def _stuck(request: Request) -> StuckRuns:
    svc = services(request)
    auth.operator(svc, request)
    if svc.stuck is None:
        raise errors.NotFound("stuck-run detection is not configured")
    return svc.stuck


@on_stuck("GET /v1/runs/stuck", "listStuckRuns", access.RUNS_READ, ok(200, "What is stuck", shapes.StuckRuns))
async def list_stuck(request: Request) -> Response:
    """Runs in a state the pipeline should never leave them in"""
    stuck = _stuck(request)
    found = await stuck.find(query_limit(request, default=100))
    return json(shapes.StuckRuns(items=[shapes.StuckRun.of(item) for item in found]))


@on_stuck(
    "POST /v1/runs/stuck/repair",
    "repairStuckRuns",
    access.RUNS_RETRY,
    ok(200, "The runs repaired", shapes.RepairedRuns),
)
async def repair_stuck(request: Request) -> Response:
    """Repair the stuck runs that are safe to repair (a run that moved meanwhile is skipped)"""
    stuck = _stuck(request)
    repaired = await stuck.repair(query_limit(request, default=100))
    return json(shapes.RepairedRuns(repaired=[shapes.StuckRun.of(item) for item in repaired]))
