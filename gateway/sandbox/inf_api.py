"""The inference.sh emulator's HTTP surface (mounted at ``/sandbox/inferencesh``).

``X-API-Version: 2`` gets bare objects and RFC 9457 ``application/problem+json`` errors; without it, v1
envelopes ``{success, status, data | error}``. ``GET /flowruns/{id}/stream`` is SSE: the full run first
(``event: flowrun``), then partial ``{"data", "fields"}`` updates, ``: ping`` comments while idle; it ends
when the run finishes or after ``stream_max_seconds``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from gateway.domain import errors
from gateway.domain.model import JSON
from gateway.sandbox.body import json_object
from gateway.sandbox.inferencesh import FINISHED, InfEmulator

PROBLEM_BASE = "https://api.inference.sh/errors/"
_PROBLEMS: tuple[tuple[type[errors.GatewayError], int, str, str], ...] = (
    (errors.PayloadTooLarge, 400, "invalid_request", "Invalid request"),
    (errors.BadRequest, 400, "invalid_request", "Invalid request"),
    (errors.Conflict, 400, "invalid_request", "Invalid request"),
    (errors.AuthError, 401, "unauthorized", "Unauthorized"),
    (errors.NotFound, 404, "not_found", "Not found"),
    (errors.RateLimited, 429, "rate_limited", "Too many requests"),
)


def create_inf_app(emulator: InfEmulator) -> Starlette:
    api = _Api(emulator)
    routes = [
        Route("/flowruns", api.create, methods=["POST"]),
        Route("/flowruns/{run_id}", api.get, methods=["GET"]),
        Route("/flowruns/{run_id}/cancel", api.cancel, methods=["POST"]),
        Route("/flowruns/{run_id}/stream", api.stream, methods=["GET"]),
        Route("/_stats", api.stats, methods=["GET"]),
    ]
    return Starlette(routes=routes, exception_handlers={errors.GatewayError: _on_error, HTTPException: _on_http})


class _Api:
    def __init__(self, emulator: InfEmulator) -> None:
        self._emulator = emulator

    def _enter(self, request: Request) -> dict[str, str]:
        self._emulator.authenticate(request.headers.get("authorization"))
        request.state.rate_headers = headers = self._emulator.spend()
        return dict(headers)

    async def create(self, request: Request) -> Response:
        headers = self._enter(request)
        body = await json_object(request)
        flow, flow_input = body.get("flow"), body.get("input")
        if not isinstance(flow, str) or not flow:
            raise errors.BadRequest("flow is required")
        if not isinstance(flow_input, dict):
            raise errors.BadRequest("input is required and must be an object")
        return _ok(request, self._emulator.create(flow, flow_input), headers)

    async def get(self, request: Request) -> Response:
        headers = self._enter(request)
        return _ok(request, self._emulator.flow_run(request.path_params["run_id"]), headers)

    async def cancel(self, request: Request) -> Response:
        headers = self._enter(request)
        self._emulator.cancel(request.path_params["run_id"])
        if _v2(request):
            return Response(status_code=204, headers=headers)
        return _ok(request, None, headers)

    async def stream(self, request: Request) -> Response:
        headers = self._enter(request)
        run_id = request.path_params["run_id"]
        self._emulator.flow_run(run_id)  # 404 before the stream starts
        self._emulator.stats.streams += 1
        return StreamingResponse(
            _events(self._emulator, run_id),
            media_type="text/event-stream",
            headers={**headers, "Cache-Control": "no-cache"},
        )

    async def stats(self, request: Request) -> Response:
        self._emulator.authenticate(request.headers.get("authorization"))  # it lists run ids
        return JSONResponse(self._emulator.stats.as_dict())


async def _events(emulator: InfEmulator, run_id: str) -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + emulator.settings.stream_max_seconds
    yield ": connected\n\n"
    previous: JSON | None = None
    while True:
        version, run = emulator.version(run_id), emulator.flow_run(run_id)
        if previous is None:
            yield f"event: flowrun\ndata: {json.dumps(run)}\n\n"
        else:
            fields = [name for name in run if run[name] != previous.get(name)]
            if fields:
                yield f"data: {json.dumps({'data': {f: run[f] for f in fields}, 'fields': fields})}\n\n"
        previous = run
        left = deadline - loop.time()
        if run["status"] in FINISHED or left <= 0:
            return
        if not await emulator.wait_change(run_id, version, min(emulator.settings.keepalive, left)):
            yield ": ping\n\n"


def _v2(request: Request) -> bool:
    return request.headers.get("x-api-version", "").strip() == "2"


def _ok(request: Request, data: Any, headers: Mapping[str, str]) -> Response:
    body = data if _v2(request) else {"success": True, "status": 200, "data": data}
    return JSONResponse(body, headers=dict(headers))


def _problem(request: Request, status: int, code: str, title: str, detail: str, headers: Mapping[str, str]) -> Response:
    if _v2(request):
        body: JSON = {"type": PROBLEM_BASE + code, "title": title, "status": status, "detail": detail}
        return JSONResponse(body, status_code=status, headers=dict(headers), media_type="application/problem+json")
    envelope = {"success": False, "status": status, "error": {"code": code, "message": detail}}
    return JSONResponse(envelope, status_code=status, headers=dict(headers))


async def _on_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.GatewayError)
    status, code, title = next(
        ((s, c, t) for kind, s, c, t in _PROBLEMS if isinstance(exc, kind)), (500, "internal_error", "Internal error")
    )
    headers = dict(getattr(request.state, "rate_headers", {}))
    if isinstance(exc, errors.RateLimited):
        headers["Retry-After"] = str(int(exc.retry_after))
    return _problem(request, status, code, title, exc.message, headers)


async def _on_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "invalid_request"}.get(exc.status_code, "invalid_request")
    return _problem(request, exc.status_code, code, "Error", str(exc.detail), {})
