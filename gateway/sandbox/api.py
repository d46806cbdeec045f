"""The sandbox's HTTP surface, shaped like the Sohar Flows API.

Errors answer ``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.domain import errors
from gateway.sandbox.body import json_object
from gateway.sandbox.emulator import Emulator

_STATUS: tuple[tuple[type[errors.GatewayError], int], ...] = (
    (errors.PayloadTooLarge, 413),
    (errors.BadRequest, 400),
    (errors.AuthError, 401),
    (errors.NotFound, 404),
    (errors.Conflict, 409),
)

_HTTP_CODES = {404: "not_found", 405: "method_not_allowed"}


class SoharApi:
    def __init__(self, emulator: Emulator) -> None:
        self._emulator = emulator

    def routes(self) -> list[Route]:
        return [
            Route("/oauth/token", self.token, methods=["POST"]),
            Route("/v1/flows/{template_id}/runs", self.create_run, methods=["POST"]),
            Route("/v1/flow-runs/{run_id}", self.get_run, methods=["GET"]),
            Route("/v1/flow-runs/{run_id}", self.update_run, methods=["PUT"]),
            Route("/_stats", self.stats, methods=["GET"]),
        ]

    async def token(self, request: Request) -> Response:
        body = await json_object(request)
        return JSONResponse(self._emulator.issue_token(body.get("client_id"), body.get("client_secret")))

    async def create_run(self, request: Request) -> Response:
        self._emulator.authenticate(request.headers.get("authorization"))
        template_id = request.path_params["template_id"]
        if template_id not in self._emulator.settings.templates:
            raise errors.NotFound("no such flow template")
        body = await json_object(request, allow_empty=True)
        input_data = body.get("inputData", {})
        if not isinstance(input_data, dict):
            raise errors.BadRequest("inputData must be an object")
        key = request.headers.get("idempotency-key") or None
        run_id = self._emulator.create_run(template_id, input_data, key)
        return JSONResponse({"flowRunId": run_id}, status_code=201)

    async def get_run(self, request: Request) -> Response:
        self._emulator.authenticate(request.headers.get("authorization"))
        return JSONResponse(self._emulator.get_run(request.path_params["run_id"]))

    async def update_run(self, request: Request) -> Response:
        self._emulator.authenticate(request.headers.get("authorization"))
        run_id = request.path_params["run_id"]
        self._emulator.get_run(run_id)  # 404 before looking at the body
        body = await json_object(request)
        if not isinstance(body.get("input"), dict):
            raise errors.BadRequest("input is required and must be an object")
        return JSONResponse(self._emulator.update_run(run_id, body["input"]))

    async def stats(self, request: Request) -> Response:
        self._emulator.authenticate(request.headers.get("authorization"))  # it lists idempotency keys and run ids
        return JSONResponse(self._emulator.stats.as_dict())


async def on_gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.GatewayError)
    status = next((code for kind, code in _STATUS if isinstance(exc, kind)), 500)
    headers = {"www-authenticate": "Bearer"} if status == 401 else None
    return error_response(status, exc.code, exc.message, headers)


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, exc.detail, exc.headers)


def error_response(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> Response:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)
