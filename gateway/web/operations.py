"""Operating endpoints: a delivery's attempts, dead jobs (listed and retried), sink states, and ``GET /metrics``."""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.responses import Response

from gateway.desk import access
from gateway.domain import errors
from gateway.domain.model import DeliveryAttempt, Job, JobKind, JobState, SinkState
from gateway.observability.metrics import CONTENT_TYPE
from gateway.runtime.wiring import Services
from gateway.web import auth, guard, shapes
from gateway.web.common import json, plain, query_enum, query_limit, query_text, services
from gateway.web.operation import Answer, limit, ok, one_of, operation, text


@operation(
    "GET /v1/deliveries/{delivery_id}/attempts",
    "listDeliveryAttempts",
    access.RUNS_READ,
    ok(200, "Every attempt of a delivery, oldest first (never a body)", shapes.DeliveryAttempts),
)
async def delivery_attempts(request: Request) -> Response:
    """Every attempt of a delivery, oldest first (never a body)"""
    svc = services(request)
    auth.operator(svc, request)
    delivery_id = request.path_params["delivery_id"]
    if await svc.store.get_delivery(delivery_id) is None:
        raise errors.NotFound("no such delivery")
    return json(
        shapes.DeliveryAttempts(items=[shapes.DeliveryAttempt.of(a) for a in await svc.ops.attempts(delivery_id)])
    )


@operation(
    "GET /v1/jobs/dead",
    "listDeadJobs",
    access.RUNS_READ,
    ok(200, "Jobs that gave up (buried), oldest first", shapes.DeadJobPage),
    params=(
        one_of("kind", [k.value for k in JobKind], "Only jobs of this kind"),
        text("after", "Return jobs after this id (next_after of the previous page)"),
        limit(),
    ),
)
async def dead_jobs(request: Request) -> Response:
    """Jobs that gave up (buried), oldest first"""
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


@operation("POST /v1/jobs/{job_id}/retry", "retryJob", access.RUNS_RETRY, ok(202, "Queued again", shapes.DeadJob), 409)
async def retry_job(request: Request) -> Response:
    """Queue a dead job again with a fresh attempt budget (a delivery job: its delivery, same id)"""
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


@operation("GET /v1/sinks", "listSinks", access.RUNS_READ, ok(200, "The sinks", shapes.SinkStates))
async def list_sinks(request: Request) -> Response:
    """Every configured sink: disabled or not, failing since"""
    svc = services(request)
    auth.operator(svc, request)
    states = {state.sink: state for state in await svc.ops.sink_states()}
    found = [shapes.SinkState.of(states.get(name) or SinkState(sink=name)) for name in svc.settings.sinks]
    return json(shapes.SinkStates(items=found))


@operation(
    "POST /v1/sinks/{sink}/enable", "enableSink", access.DELIVERIES_REPLAY, ok(200, "Enabled", shapes.SinkState), 409
)
async def enable_sink(request: Request) -> Response:
    """Enable a sink disabled after 410 Gone or too long failing"""
    svc = services(request)
    auth.operator(svc, request)
    name = request.path_params["sink"]
    if name not in svc.settings.sinks:
        raise errors.NotFound("no such sink")
    if not await svc.guard.enable(name):
        raise errors.Conflict(f"sink {name} is not disabled")
    await guard.record(request, "sink_enabled", f"sink:{name}")
    return json(shapes.SinkState.of(await svc.ops.sink_state(name)))


@operation(
    "GET /metrics",
    "metrics",
    guard.PUBLIC,  # the guard lets it through: it checks a token of its own, not an operator's
    (Answer(200, "The metrics", (str,), media=CONTENT_TYPE),),
    401,
    security=[{"metricsToken": []}, {}],
)
async def metrics(request: Request) -> Response:
    """Prometheus metrics (text format); a bearer token when [metrics] token_env is set"""
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
