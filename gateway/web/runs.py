"""GET /v1/runs, GET /v1/runs/{id}, POST /v1/runs/{id}/retry, /cancel, and for a HELD run /abandon and /adopt
(gateway.engine.starts); GET /v1/notifications/orphans (provider runs the gateway does not know)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gateway.domain.model import RunStatus
from gateway.domain.ports import Capabilities, RunFilter
from gateway.runtime.wiring import Services
from gateway.web import auth, guard, shapes
from gateway.web.body import read_body
from gateway.web.common import json, next_before, query_enum, query_limit, query_text, services


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
    items = [shapes.RunListItem.listed(run, _capabilities(svc, run.provider)) for run in runs]
    return json(shapes.RunPage(items=items, next_before=next_before(items, limit)))


async def get_run(request: Request) -> Response:
    svc = services(request)
    auth.operator(svc, request)
    run = await svc.gateway.get_run(request.path_params["run_id"])
    timeline = await svc.store.timeline(run.id)
    return json(shapes.RunDetail.detailed(run, timeline, _capabilities(svc, run.provider)))


async def retry_run(request: Request) -> Response:
    svc = services(request)
    auth.operator(svc, request)
    run = await svc.gateway.retry_start(request.path_params["run_id"])
    await guard.record(request, "run_retried", f"run:{run.id}")
    return json(shapes.RunSummary.of(run), status=202)


async def abandon_run(request: Request) -> Response:
    """Give up on a HELD run (its start's outcome was unknown): FAILED_TO_START; audited."""
    svc = services(request)
    who = guard.principal(request)
    run = await svc.gateway.abandon_start(request.path_params["run_id"], who.name)
    await guard.record(request, "run_abandoned", f"run:{run.id}")
    return json(shapes.RunSummary.of(run))


async def adopt_run(request: Request) -> Response:
    """``{"provider_run_id": "..."}``: the HELD run is that provider run; it is fetched. Audited."""
    svc = services(request)
    who = guard.principal(request)
    body = await read_body(request, svc.settings.limits.operator_body_bytes, shapes.Adoption)
    provider_run_id = body.provider_run_id
    run = await svc.gateway.adopt_start(request.path_params["run_id"], provider_run_id, who.name)
    await guard.record(request, "run_adopted", f"run:{run.id}", {"provider_run_id": provider_run_id})
    return json(shapes.RunSummary.of(run), status=202)


async def list_orphans(request: Request) -> Response:
    """Provider runs seen only in notifications: a duplicate left by a start whose answer was lost, a run started
    elsewhere, or one whose start is being recorded right now. Most recently heard from first."""
    svc = services(request)
    orphans = await svc.store.orphan_runs(provider=query_text(request, "provider"), limit=query_limit(request))
    return json(shapes.OrphanRuns(items=[shapes.OrphanRun.of(orphan) for orphan in orphans]))


async def cancel_run(request: Request) -> Response:
    """Queue a cancel; 202. 409 unsupported_operation when the provider cannot cancel, 409 conflict when finished."""
    svc = services(request)
    auth.operator(svc, request)
    run = await svc.gateway.request_cancel(request.path_params["run_id"])
    return json(shapes.CancelRequested.of(run), status=202)


def _capabilities(svc: Services, provider_name: str) -> Capabilities | None:
    provider = svc.providers.get(provider_name)
    return provider.capabilities if provider else None
