"""GET /v1/runs, GET /v1/runs/{id}, POST /v1/runs/{id}/retry."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from gateway.model import RunStatus
from gateway.ports import RunFilter
from gateway.web import auth, guard, render
from gateway.web.common import json, page, query_enum, query_limit, query_text, services
from gateway.wiring import Services


async def list_runs(request: Request) -> Response:
    svc = services(request)
    auth.operator(svc, request)
    limit = query_limit(request)
    flt = RunFilter(
        status=query_enum(request, "status", RunStatus),
        flow=query_text(request, "flow"),
        route=query_text(request, "route"),
        provider=query_text(request, "provider"),
        event_id=query_text(request, "event_id"),
        before=query_text(request, "before"),
        limit=limit,
    )
    runs = await svc.store.list_runs(flt)
    items = [{**render.run_summary(run), "capabilities": _capabilities(svc, run.provider)} for run in runs]
    return json(page(items, limit))


async def get_run(request: Request) -> Response:
    svc = services(request)
    auth.operator(svc, request)
    run = await svc.gateway.get_run(request.path_params["run_id"])
    timeline = await svc.store.timeline(run.id)
    provider = svc.providers.get(run.provider)
    return json(render.run_detail(run, timeline, provider.capabilities if provider else None))


async def retry_run(request: Request) -> Response:
    svc = services(request)
    auth.operator(svc, request)
    run = await svc.gateway.retry_start(request.path_params["run_id"])
    await guard.record(request, "run_retried", f"run:{run.id}")
    return json(render.run_summary(run), status=202)


async def cancel_run(request: Request) -> Response:
    """Queue a cancel; 202. 409 unsupported_operation when the provider cannot cancel, 409 conflict when finished."""
    svc = services(request)
    auth.operator(svc, request)
    run = await svc.gateway.request_cancel(request.path_params["run_id"])
    return json({**render.run_summary(run), "cancel": "requested"}, status=202)


def _capabilities(svc: Services, provider_name: str) -> dict[str, Any] | None:
    provider = svc.providers.get(provider_name)
    return provider.capabilities.as_dict() if provider else None
