"""The TransactionLink emulator's HTTP surface (mounted at ``/sandbox/transactionlink``).

Errors answer ``{"message", "status"}`` (TransactionLink's real error body is not documented); a POST whose
body is not declared as JSON answers 415, as the real authentication endpoints do.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.domain import errors
from gateway.domain.model import JSON
from gateway.sandbox.body import NotJson, json_object
from gateway.sandbox.transactionlink import TLEmulator

_STATUS: tuple[tuple[type[errors.GatewayError], int], ...] = (
    (errors.PayloadTooLarge, 413),
    (errors.BadRequest, 400),
    (errors.AuthError, 401),
    (errors.NotFound, 404),
    (errors.Conflict, 409),
)


def create_tl_app(emulator: TLEmulator) -> Starlette:
    api = _Api(emulator)
    routes = [
        Route("/auth/authorize", api.authorize, methods=["POST"]),
        Route("/auth/refresh", api.refresh, methods=["POST"]),
        Route("/auth/webhooks/key/{kid}", api.key, methods=["GET"]),
        Route("/workflows", api.start, methods=["POST"]),
        Route("/workflows/run", api.run_case, methods=["POST"]),
        Route("/workflows/{run_id}", api.get, methods=["GET"]),
        Route("/workflows/{run_id}/result", api.result, methods=["GET"]),
        Route("/cases", api.create_case, methods=["POST"]),
        Route("/parameters", api.create_parameters, methods=["POST"]),
        Route("/_stats", api.stats, methods=["GET"]),
    ]
    return Starlette(routes=routes, exception_handlers={errors.GatewayError: _on_error, HTTPException: _on_http})


class _Api:
    def __init__(self, emulator: TLEmulator) -> None:
        self._emulator = emulator

    async def authorize(self, request: Request) -> Response:
        body = await json_object(request, declared_json=True)
        return JSONResponse(self._emulator.authorize(body.get("key"), body.get("secret")))

    async def refresh(self, request: Request) -> Response:
        body = await json_object(request, declared_json=True)
        return JSONResponse(self._emulator.refresh(body.get("refreshToken")))

    async def key(self, request: Request) -> Response:
        pem = request.query_params.get("pem", "true").lower() != "false"
        text = self._emulator.public_key(request.path_params["kid"], pem=pem)
        return Response(text, media_type="text/plain")

    async def start(self, request: Request) -> Response:
        self._emulator.authenticate(request.headers.get("authorization"))
        body = await json_object(request, declared_json=True)
        definition, locale = _required_text(body, "workflowDefinitionId"), _required_text(body, "locale")
        parameters = body.get("parameters")
        if not isinstance(parameters, dict):
            raise errors.BadRequest("parameters must be an object")
        record_id = body.get("recordId")
        if record_id is not None and not isinstance(record_id, str):
            raise errors.BadRequest("recordId must be a string")
        expires = _expires_at(body.get("expiresAt"))
        return JSONResponse(self._emulator.start_execution(definition, locale, parameters, expires, record_id))

    async def run_case(self, request: Request) -> Response:
        self._emulator.authenticate(request.headers.get("authorization"))
        body = await json_object(request, declared_json=True)
        parameters_id = body.get("parametersId")
        if parameters_id is not None and not isinstance(parameters_id, str):
            raise errors.BadRequest("parametersId must be a string")
        run = self._emulator.run_case(
            _required_text(body, "caseId"), _required_text(body, "workflowDefinitionId"), parameters_id
        )
        return JSONResponse(run)

    async def get(self, request: Request) -> Response:
        self._emulator.authenticate(request.headers.get("authorization"))
        return JSONResponse(self._emulator.execution(request.path_params["run_id"]))

    async def result(self, request: Request) -> Response:
        self._emulator.authenticate(request.headers.get("authorization"))
        return JSONResponse(self._emulator.result(request.path_params["run_id"]))

    async def create_case(self, request: Request) -> Response:
        self._emulator.authenticate(request.headers.get("authorization"))
        return JSONResponse(self._emulator.create_case(await json_object(request, declared_json=True)), status_code=201)

    async def create_parameters(self, request: Request) -> Response:
        self._emulator.authenticate(request.headers.get("authorization"))
        body = await json_object(request, declared_json=True)
        wrapped = body.get("parameters")
        parameters = wrapped if isinstance(wrapped, dict) and len(body) == 1 else body
        return JSONResponse(self._emulator.create_parameters(parameters), status_code=201)

    async def stats(self, request: Request) -> Response:
        self._emulator.authenticate(request.headers.get("authorization"))  # it lists run ids
        return JSONResponse(self._emulator.stats.as_dict())


def _required_text(body: JSON, name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise errors.BadRequest(f"{name} must not be null")
    return value


def _expires_at(value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise errors.BadRequest("expiresAt must be an ISO 8601 date-time") from None
    if when.tzinfo is None:
        raise errors.BadRequest("expiresAt needs a time zone")
    return when


async def _on_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.GatewayError)
    status = 415 if isinstance(exc, NotJson) else None
    status = status or next((code for kind, code in _STATUS if isinstance(exc, kind)), 500)
    return JSONResponse({"message": exc.message, "status": status}, status_code=status)


async def _on_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"message": str(exc.detail), "status": exc.status_code}, status_code=exc.status_code)
