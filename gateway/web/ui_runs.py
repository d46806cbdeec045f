"""Runs and deliveries: lists, the run page with its input, output and error, the delivery page, retries.

Input, output and error are payloads: they show only to roles that may see them, and showing them is audited
once per login and run (A8, A13). Retrying a start or sending a delivery again asks for confirmation first.
"""

from __future__ import annotations

from starlette.responses import Response

from gateway.domain import errors
from gateway.domain.audit import AuditEntry
from gateway.domain.model import DeliveryState, RunStatus
from gateway.domain.ports import RunFilter
from gateway.web import live
from gateway.web import render as json_render
from gateway.web.common import query_enum, query_limit, query_text
from gateway.web.operations import attempt_json
from gateway.web.ui import Ctx


async def runs_page(ctx: Ctx) -> Response:
    limit = query_limit(ctx.request)
    flt = RunFilter(
        status=query_enum(ctx.request, "status", RunStatus),
        flow=query_text(ctx.request, "flow"),
        before=query_text(ctx.request, "before"),
        limit=limit,
    )
    runs = await ctx.services.store.list_runs(flt)
    return ctx.render(
        "runs.html",
        runs=[json_render.run_summary(run) for run in runs],
        next_before=runs[-1].id if len(runs) == limit else None,
        params={k: v for k, v in ctx.request.query_params.items() if k != "before"},
        flows=sorted(ctx.services.settings.flows),
        statuses=[s.value for s in RunStatus],
    )


async def run_page(ctx: Ctx) -> Response:
    live_from = await live.position(ctx)
    run = await ctx.services.gateway.get_run(ctx.request.path_params["run_id"])
    timeline = await ctx.services.store.timeline(run.id)
    deliveries = await ctx.services.store.list_deliveries(state=None, run_id=run.id, sink=None, limit=100, before=None)
    reviews = await ctx.parts.desk.queue.review_ids_for_run(run.id)
    payload = ctx.who.sees_payload
    if payload and (run.input is not None or run.output is not None or run.error is not None):
        await ctx.parts.desk.record_view(ctx.who, f"run:{run.id}", ctx.login)
    return ctx.render(
        "run.html",
        live_from=live_from,
        run=json_render.run_summary(run),
        data={"input": run.input, "output": run.output, "error": run.error} if payload else None,
        timeline=[json_render.transition(step) for step in timeline],
        deliveries=[json_render.delivery(d) for d in deliveries],
        reviews=reviews,
        refresh=0 if run.is_terminal else 5,
    )


async def retry_run(ctx: Ctx) -> Response:
    run_id = ctx.request.path_params["run_id"]
    if (asking := ctx.unconfirmed(f"Start run {run_id} again?", "Retry start")) is not None:
        return asking
    await ctx.services.gateway.retry_start(run_id)
    await ctx.parts.desk.access.audit(
        [AuditEntry(actor=ctx.who.name, action="run_retried", object=f"run:{run_id}")], ctx.services.clock.now()
    )
    return ctx.back(f"/ui/runs/{run_id}", "The start is queued again.")


async def deliveries_page(ctx: Ctx) -> Response:
    limit = query_limit(ctx.request)
    items = await ctx.services.store.list_deliveries(
        state=query_enum(ctx.request, "state", DeliveryState),
        run_id=None,
        sink=query_text(ctx.request, "sink"),
        limit=limit,
        before=query_text(ctx.request, "before"),
    )
    return ctx.render(
        "deliveries.html",
        deliveries=[json_render.delivery(d) for d in items],
        next_before=items[-1].id if len(items) == limit else None,
        params={k: v for k, v in ctx.request.query_params.items() if k != "before"},
        states=[s.value for s in DeliveryState],
    )


async def delivery_page(ctx: Ctx) -> Response:
    delivery_id = ctx.request.path_params["delivery_id"]
    found = await ctx.services.store.get_delivery(delivery_id)
    if found is None:
        raise errors.NotFound(f"no delivery {delivery_id}")
    run = await ctx.services.store.get_run(found.run_id)
    attempts = await ctx.services.ops.attempts(found.id)
    return ctx.render(
        "delivery.html",
        delivery=json_render.delivery(found),
        attempts=[attempt_json(attempt) for attempt in attempts],
        run=json_render.run_summary(run) if run else None,
        refresh=5 if found.state == DeliveryState.PENDING else 0,
    )


async def retry_delivery(ctx: Ctx) -> Response:
    delivery_id = ctx.request.path_params["delivery_id"]
    found = await ctx.services.store.get_delivery(delivery_id)
    if found is None:
        raise errors.NotFound(f"no delivery {delivery_id}")
    again = "Send again" if found.state == DeliveryState.DELIVERED else "Retry"
    question = f"{again}: deliver run {found.run_id} to {found.sink} once more (same delivery id {delivery_id})?"
    if (asking := ctx.unconfirmed(question, again)) is not None:
        return asking
    delivery = await ctx.services.gateway.retry_delivery(delivery_id)
    await ctx.parts.desk.access.audit(
        [AuditEntry(actor=ctx.who.name, action="delivery_replayed", object=f"delivery:{delivery_id}")],
        ctx.services.clock.now(),
    )
    message = f"Delivery {delivery_id} is queued to be sent again."
    back = ctx.form.get("back")
    if back == "run":
        return ctx.back(f"/ui/runs/{delivery.run_id}", message)
    if back == "delivery":
        return ctx.back(f"/ui/deliveries/{delivery_id}", message)
    return ctx.back("/ui/deliveries", message)
