"""Operating endpoints: a delivery's attempts, dead jobs (listed and retried), sink states, and ``GET /metrics``."""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.responses import Response

from gateway.domain import errors
from gateway.domain.model import DeliveryAttempt, Job, JobKind, JobState, SinkState
from gateway.observability.metrics import CONTENT_TYPE
from gateway.runtime.wiring import Services
from gateway.web import auth, guard, shapes
from gateway.web.common import json, plain, query_enum, query_limit, query_text, services


async def delivery_attempts(request: Request) -> Response:
    svc = services(request)
    auth.operator(svc, request)
    delivery_id = request.path_params["delivery_id"]
    if await svc.store.get_delivery(delivery_id) is None:
        raise errors.NotFound("no such delivery")
    return json(
        shapes.DeliveryAttempts(items=[shapes.DeliveryAttempt.of(a) for a in await svc.ops.attempts(delivery_id)])
    )


async def dead_jobs(request: Request) -> Response:
    svc = services(request)
    auth.operator(svc, request)
    limit = query_limit(request)
    after = query_text(request, "after")
    if after is not None and not (after.isascii() and after.isdigit() and len(after) < 19):
        raise errors.BadRequest("after must be a job id")
    jobs = await svc.ops.dead_jobs(
        kind=query_enum(request, "kind", JobKind), limit=limit, after=int(after) if after else None
    )
    items = [shapes.DeadJob.of(job) for job in jobs]
    return json(shapes.DeadJobPage(items=items, next_after=str(items[-1].id) if len(items) == limit else None))


async def retry_job(request: Request) -> Response:
    svc = services(request)
    auth.operator(svc, request)
    raw = request.path_params["job_id"]
    job = await svc.ops.get_job(int(raw)) if raw.isascii() and raw.isdigit() and len(raw) < 19 else None
    if job is None:
        raise errors.NotFound("no such job")
    revived = await revive(svc, job)
    await guard.record(request, "job_retried", f"job:{job.id}")
    return json(shapes.DeadJob.of(revived), status=202)


async def revive(svc: Services, job: Job) -> Job:
    """Queue a dead job again. A dead delivery job is retried through its delivery (same delivery id)."""
    if job.state != JobState.DEAD:
        raise errors.Conflict(f"job {job.id} is {job.state.value}; only dead jobs can be retried")
    if job.kind == JobKind.DELIVER:
        await svc.gateway.retry_delivery(job.ref)
    elif not await svc.ops.revive_job(job.id, svc.clock.now()):
        raise errors.Conflict(f"job {job.id} changed; try again")
    svc.dispatcher.wake()
    return await svc.ops.get_job(job.id) or job


async def list_sinks(request: Request) -> Response:
    svc = services(request)
    auth.operator(svc, request)
    states = {state.sink: state for state in await svc.ops.sink_states()}
    found = [shapes.SinkState.of(states.get(name) or SinkState(sink=name)) for name in svc.settings.sinks]
    return json(shapes.SinkStates(items=found))


async def enable_sink(request: Request) -> Response:
    svc = services(request)
    auth.operator(svc, request)
    name = request.path_params["sink"]
    if name not in svc.settings.sinks:
        raise errors.NotFound("no such sink")
    if not await svc.guard.enable(name):
        raise errors.Conflict(f"sink {name} is not disabled")
    await guard.record(request, "sink_enabled", f"sink:{name}")
    return json(shapes.SinkState.of(await svc.ops.sink_state(name)))


async def metrics(request: Request) -> Response:
    """Prometheus text format; behind ``[metrics] token_env`` when set (a token of its own, not an operator's)."""
    svc = services(request)
    token = svc.settings.metrics.token
    if token is not None:
        given = auth.bearer_token(request) or ""
        if not hmac.compare_digest(given.encode(), token.reveal().encode()):
            raise errors.AuthError("a valid metrics bearer token is required")
    now = svc.clock.now()
    body = svc.metrics.render(await svc.ops.gauges(now), svc.breakers.snapshot(), now)
    return Response(body, media_type=CONTENT_TYPE)


# Plain dicts of the same shapes, for the operations CLI and the desk's pages.


def attempt_json(attempt: DeliveryAttempt) -> dict[str, object]:
    return plain(shapes.DeliveryAttempt.of(attempt))


def job_json(job: Job) -> dict[str, object]:
    return plain(shapes.DeadJob.of(job))


def sink_json(state: SinkState) -> dict[str, object]:
    return plain(shapes.SinkState.of(state))
