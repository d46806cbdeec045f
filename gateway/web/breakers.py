"""GET /v1/health/breakers: the circuit breaker of every sink and provider that has been called (S7)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gateway.desk import access
from gateway.web import auth, shapes
from gateway.web.common import json, services
from gateway.web.operation import ok, operation


@operation("GET /v1/health/breakers", "listBreakers", access.RUNS_READ, ok(200, "The breakers", shapes.Breakers))
async def list_breakers(request: Request) -> Response:
    """The circuit breaker of every sink and provider that has been called"""
    svc = services(request)
    auth.operator(svc, request)
    return json({"breakers": svc.breakers.snapshot()})
