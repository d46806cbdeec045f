"""GET /v1/health/breakers: the circuit breaker of every sink and provider that has been called (S7)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gateway.web import auth
from gateway.web.common import json, services


async def list_breakers(request: Request) -> Response:
    svc = services(request)
    auth.operator(svc, request)
    return json({"breakers": svc.breakers.snapshot()})
