"""create_app(services) -> App (Starlette): the route table, and the one place errors become HTTP statuses."""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from gateway.domain import errors
from gateway.observability.logs import AccessLog
from gateway.runtime.wiring import Services
from gateway.web import api, events, guard, operations, ui_pages
from gateway.web.abuse import AuthThrottle, SourceLimits
from gateway.web.front import App, Front, Handler
from gateway.web.observe import RequestObserver
from gateway.web.status import status_for
from gateway.web.ui import HSTS, SECURITY_HEADERS

log = logging.getLogger("gateway.http")


def error_body(code: str, message: str) -> dict[str, dict[str, str]]:
    return {"error": {"code": code, "message": message}}


async def on_gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.GatewayError)
    status = status_for(exc)
    code = "malformed_signature" if status == 400 and isinstance(exc, errors.SignatureError) else exc.code
    count_refusal(request, code)
    headers = {"Retry-After": str(int(exc.retry_after))} if isinstance(exc, errors.RateLimited) else None
    return JSONResponse(error_body(code, exc.message), status_code=status, headers=headers)


def count_refusal(request: Request, code: str) -> None:
    """Refused events and webhooks are counted by source or provider and reason (a fixed error code)."""
    path, svc = request.url.path, request.app.state.services
    if path.startswith("/v1/events"):
        svc.metrics.event(request.path_params.get("source"), "refused", code)
    elif path.startswith("/v1/webhooks/"):
        svc.metrics.webhook(request.path_params.get("provider"), code)


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    codes = {404: "not_found", 405: "method_not_allowed"}
    return JSONResponse(
        error_body(codes.get(exc.status_code, "http_error"), str(exc.detail)),
        status_code=exc.status_code,
        headers=exc.headers,
    )


async def on_unexpected(request: Request, exc: Exception) -> Response:
    log.error("unhandled error", extra={"path": request.url.path, "error": type(exc).__name__})
    return JSONResponse(error_body("internal_error", "internal error"), status_code=500)


def routes(services: Services) -> list[BaseRoute]:
    """The JSON API's routes (``gateway.web.api``; ``/metrics`` only when served on this port), then the mounts."""
    metrics_here = services.settings.metrics.enabled and services.settings.metrics.port is None
    table: list[BaseRoute] = [*api.routes(api.OPERATIONS, leave_out=() if metrics_here else ("/metrics",))]
    if services.sandbox is not None:
        table.append(Mount("/sandbox/sohar", app=services.sandbox.asgi))
        if getattr(services.sandbox, "reminix_asgi", None) is not None:
            table.append(Mount("/sandbox/reminix", app=services.sandbox.reminix_asgi))
        table.extend(Mount(f"/sandbox/{name}", app=sub) for name, sub in services.sandbox.mounts.items())
    table.append(Mount("/ui", routes=ui_pages.routes()))
    return guard.declare(table)


def create_app(services: Services, *, run_background: bool = True) -> App:
    @asynccontextmanager
    async def lifespan(app: App) -> AsyncIterator[None]:
        if run_background:
            await services.start_background()
        try:
            yield
        finally:
            access.flush()
            if run_background:
                await services.stop_background()

    access = AccessLog()
    throttle = AuthThrottle(limit=services.settings.limits.failed_auth, clock=services.clock)
    handlers: dict[type[Exception], Handler] = {
        errors.GatewayError: on_gateway_error,
        HTTPException: on_http_error,
        Exception: on_unexpected,
    }
    source_limits = SourceLimits(services.settings.sources, services.clock)
    https = services.settings.desk.ui.secure_cookies
    ui_headers = {**SECURITY_HEADERS, **({"Strict-Transport-Security": HSTS} if https else {})}
    plain = {("POST", "/v1/events"): functools.partial(events.submit_plain, services, source_limits)}
    app = App(
        routes=routes(services),
        lifespan=lifespan,
        front=lambda router: Front(
            router,
            handlers=handlers,
            throttle=throttle,
            access=access,
            observer=RequestObserver(services.metrics, services.tracing),
            ui_headers=ui_headers,
            plain=plain,
        ),
    )
    app.router.redirect_slashes = False  # a JSON API answers 404 JSON, not a 307 with no body
    app.state.services = services
    app.state.source_limits = source_limits
    return app


def create_metrics_app(services: Services) -> Starlette:
    """``GET /metrics`` alone, for ``[metrics] port``: scrapers reach it without reaching the API."""
    app = Starlette(
        routes=[Route("/metrics", operations.metrics, methods=["GET"])],
        exception_handlers={errors.GatewayError: on_gateway_error, HTTPException: on_http_error},
    )
    app.state.services = services
    return app
