"""The Reminix sandbox's HTTP surface (mounted at /sandbox/reminix).

Errors answer Reminix's documented body ``{"error": {"code", "message", "status"}}`` with its codes
(missing_api_key / invalid_api_key 401, insufficient_permissions 403, agent_not_found / not_found 404,
invalid_request / missing_required_field / invalid_field_value 400).
"""

from __future__ import annotations

import re

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.domain import errors
from gateway.sandbox.body import json_object
from gateway.sandbox.reminix import ReminixEmulator

_AGENT = re.compile(r"[A-Za-z0-9_-]+")
_STATUS: tuple[tuple[type[errors.GatewayError], int], ...] = (
    (errors.PayloadTooLarge, 413),
    (errors.BadRequest, 400),
    (errors.AuthError, 401),
    (errors.Forbidden, 403),
    (errors.NotFound, 404),
)
_MESSAGES = {
    "missing_api_key": "No API key was provided.",
    "invalid_api_key": "The API key provided is invalid.",
    "insufficient_permissions": "The key may not use this project.",
    "agent_not_found": "No agent with that name.",
    "not_found": "No workflow run with that id.",
    "invalid_request": "The workflow run is not in a state that allows this.",
    "missing_required_field": "A required field is missing.",
    "invalid_field_value": "A field has a value that is not allowed.",
}


class ReminixApi:
    def __init__(self, emulator: ReminixEmulator) -> None:
        self._emulator = emulator

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/agents/{name}/workflow", self.start, methods=["POST"]),
                Route("/v1/workflow-runs/{run_id}", self.get, methods=["GET"]),
                Route("/v1/workflow-runs/{run_id}", self.cancel, methods=["DELETE"]),
                Route("/v1/workflow-runs/{run_id}/resume", self.resume, methods=["POST"]),
                Route("/_stats", self.stats, methods=["GET"]),
            ],
            exception_handlers={errors.GatewayError: on_gateway_error, HTTPException: on_http_error},
        )

    def _auth(self, request: Request) -> None:
        self._emulator.authenticate(request.headers.get("authorization"), request.headers.get("x-project"))

    async def start(self, request: Request) -> Response:
        self._auth(request)
        name = request.path_params["name"]
        if not _AGENT.fullmatch(name):
            raise errors.InvalidInput("invalid_field_value")
        body = await json_object(request)
        given = body.get("input")
        if not isinstance(given, dict):
            raise errors.InvalidInput("missing_required_field")
        answer = self._emulator.start(name, given, request.headers.get("idempotency-key") or None)
        return JSONResponse(answer)

    async def get(self, request: Request) -> Response:
        self._auth(request)
        return JSONResponse(self._emulator.record(request.path_params["run_id"]))

    async def resume(self, request: Request) -> Response:
        self._auth(request)
        body = await json_object(request)
        return JSONResponse(self._emulator.resume(request.path_params["run_id"], body))

    async def cancel(self, request: Request) -> Response:
        self._auth(request)
        self._emulator.cancel(request.path_params["run_id"])
        return Response(status_code=204)

    async def stats(self, request: Request) -> Response:
        self._auth(request)  # it lists idempotency keys and run ids
        return JSONResponse(self._emulator.stats.as_dict())


def error_response(status: int, code: str) -> Response:
    body = {"error": {"code": code, "message": _MESSAGES.get(code, code), "status": status}}
    return JSONResponse(body, status_code=status)


async def on_gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.GatewayError)
    status = next((code for kind, code in _STATUS if isinstance(exc, kind)), 500)
    code = exc.message if exc.message in _MESSAGES else "internal_error" if status >= 500 else "invalid_request"
    return error_response(status, code)


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error_response(exc.status_code, "not_found" if exc.status_code == 404 else "invalid_request")
