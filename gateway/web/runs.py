"""GET /v1/runs, GET /v1/runs/{id}, POST /v1/runs/{id}/retry, /cancel, and for a HELD run /abandon and /adopt
(gateway.engine.starts); GET /v1/notifications/orphans (provider runs the gateway does not know)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gateway.desk import access
from gateway.domain.model import RunStatus
from gateway.domain.ports import Capabilities, RunFilter
from gateway.runtime.wiring import Services
from gateway.web import auth, guard, shapes
from gateway.web.body import read_body
from gateway.web.common import json, next_before, query_enum, query_limit, query_text, services
from gateway.web.operation import BEFORE, Body, limit, ok, one_of, operation, text


@operation(
    "GET /v1/runs",
    "listRuns",
    access.RUNS_READ,
    ok(200, "Runs, newest first", shapes.RunPage),
    params=(
        one_of("status", [s.value for s in RunStatus], "Only runs in this status"),
        text("flow", "Only runs of this flow"),
        text("route", "Only runs started by this route"),
        text("provider", "Only runs on this provider"),
        text("event_id", "Only runs started by this event"),
        BEFORE,
        limit(),
    ),
)
async def list_runs(request: Request) -> Response:
    """Runs, newest first"""
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


@operation("GET /v1/runs/{run_id}", "getRun", access.RUNS_READ, ok(200, "One run with its timeline", shapes.RunDetail))
async def get_run(request: Request) -> Response:
    """One run with its timeline"""
    svc = services(request)
    auth.operator(svc, request)
    run = await svc.gateway.get_run(request.path_params["run_id"])
    timeline = await svc.store.timeline(run.id)
    return json(shapes.RunDetail.detailed(run, timeline, _capabilities(svc, run.provider)))


@operation(
    "POST /v1/runs/{run_id}/retry", "retryRun", access.RUNS_RETRY, ok(202, "Queued again", shapes.RunSummary), 409
)
async def retry_run(request: Request) -> Response:
    """Start a FAILED_TO_START or HELD run again"""
    svc = services(request)
    auth.operator(svc, request)
    run = await svc.gateway.retry_start(request.path_params["run_id"])
    await guard.record(request, "run_retried", f"run:{run.id}")
    return json(shapes.RunSummary.of(run), status=202)


@operation(
    "POST /v1/runs/{run_id}/abandon",
    "abandonRun",
    access.RUNS_RETRY,
    ok(200, "The run, FAILED_TO_START", shapes.RunSummary),
    409,
)
async def abandon_run(request: Request) -> Response:
    """Give up on a HELD run (its start's outcome is unknown): it ends FAILED_TO_START

    Audited."""
    svc = services(request)
    who = guard.principal(request)
    run = await svc.gateway.abandon_start(request.path_params["run_id"], who.name)
    await guard.record(request, "run_abandoned", f"run:{run.id}")
    return json(shapes.RunSummary.of(run))


@operation(
    "POST /v1/runs/{run_id}/adopt",
    "adoptRun",
    access.RUNS_RETRY,
    ok(202, "The run, CREATED; a fetch is queued", shapes.RunSummary),
    409,
    422,
    body=Body(shapes.Adoption, "The provider's id of the run"),
)
async def adopt_run(request: Request) -> Response:
    """A HELD run is this provider run (the lost start did start it): record its id and fetch it

    ``{"provider_run_id": "..."}``; audited."""
    svc = services(request)
    who = guard.principal(request)
    body = await read_body(request, svc.settings.limits.operator_body_bytes, shapes.Adoption)
    provider_run_id = body.provider_run_id
    run = await svc.gateway.adopt_start(request.path_params["run_id"], provider_run_id, who.name)
    await guard.record(request, "run_adopted", f"run:{run.id}", {"provider_run_id": provider_run_id})
    return json(shapes.RunSummary.of(run), status=202)


@operation(
    "GET /v1/notifications/orphans",
    "listOrphanNotifications",
    access.RUNS_READ,
    ok(200, "The orphan provider runs", shapes.OrphanRuns),
    params=(text("provider", "Only this provider"), limit()),
)
async def list_orphans(request: Request) -> Response:
    """Provider runs the gateway does not know, seen in notifications, most recently heard from first

    Seen only in notifications: a duplicate left by a start whose answer was lost, a run started elsewhere, or one
    whose start is being recorded right now."""
    svc = services(request)
    orphans = await svc.store.orphan_runs(provider=query_text(request, "provider"), limit=query_limit(request))
    return json(shapes.OrphanRuns(items=[shapes.OrphanRun.of(orphan) for orphan in orphans]))


@operation(
    "POST /v1/runs/{run_id}/cancel",
    "cancelRun",
    access.RUNS_RETRY,
    ok(202, "The cancel is queued", shapes.CancelRequested),
    409,
    description=(
        "409 with code conflict when the run has finished, unsupported_operation when its provider cannot cancel"
    ),
)
async def cancel_run(request: Request) -> Response:
    """Queue a cancel of a live run"""
    svc = services(request)
    auth.operator(svc, request)
    run = await svc.gateway.request_cancel(request.path_params["run_id"])
    return json(shapes.CancelRequested.of(run), status=202)


def _capabilities(svc: Services, provider_name: str) -> Capabilities | None:
    provider = svc.providers.get(provider_name)
    return provider.capabilities if provider else None
