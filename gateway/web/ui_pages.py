"""The UI's pages and forms: the queue, the item page with its actions, runs and deliveries with retry buttons.

Lists show ids, flow, state and age only; what a flow gathered appears on the item page alone, to roles
that may see it, and each showing is audited (A13, A8).
"""

from __future__ import annotations

import secrets

from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from gateway import errors
from gateway.desk import access, forms, views
from gateway.desk.audit import AuditEntry
from gateway.model import DeliveryState, ReviewState, RunStatus
from gateway.ports import RunFilter
from gateway.store import audit_sql
from gateway.web import render as json_render
from gateway.web.common import query_enum, query_limit, query_text
from gateway.web.operations import attempt_json
from gateway.web.reviews import next_cursor, queue_filter
from gateway.web.ui import Ctx, endpoint

QUEUE_REFRESH_SECONDS = 15


async def queue(ctx: Ctx) -> Response:
    flt = queue_filter(ctx.request, ctx.who.name)
    items = await ctx.parts.desk.page(flt, ctx.who)
    now = ctx.services.clock.now()
    return ctx.render(
        "queue.html",
        items=[views.summary(item, now) for item in items],
        next_after=next_cursor(items, flt),
        params={k: v for k, v in ctx.request.query_params.items() if k != "after"},
        flows=sorted(ctx.services.settings.flows),
        states=[s.value for s in ReviewState],
        refresh=QUEUE_REFRESH_SECONDS,
    )


async def item_page(ctx: Ctx) -> Response:
    review_id = ctx.request.path_params["review_id"]
    item, payload = await ctx.parts.desk.view(review_id, ctx.who)
    now = ctx.services.clock.now()
    run = await ctx.services.store.get_run(item.review.run_id)
    timeline = await ctx.services.store.timeline(item.review.run_id)
    trail = await audit_sql.for_object(ctx.services.store.db, f"review:{review_id}")
    holder = item.holder(now)
    return ctx.render(
        "item.html",
        item=views.detail(item, now, payload=payload),
        run=json_render.run_summary(run) if run else None,
        timeline=[json_render.transition(step) for step in timeline],
        trail=[record.as_dict() for record in trail],
        fields=forms.fields(item.review.request),
        payload=payload,
        holder=holder,
        can_decide=ctx.who.may(access.REVIEWS_DECIDE) and item.is_open and holder in (None, ctx.who.name),
        can_approve=ctx.who.approves
        and item.proposal_digest is not None
        and ctx.who.name not in (item.proposed_by, item.proposed_claimer),
        form_key=secrets.token_urlsafe(16),  # a double-submitted form gets the first answer back
        refresh=5 if not item.is_open and run is not None and not run.is_terminal else 0,
    )


def _item_url(ctx: Ctx) -> str:
    return f"/ui/reviews/{ctx.request.path_params['review_id']}"


async def claim(ctx: Ctx) -> Response:
    await ctx.parts.desk.claim(ctx.request.path_params["review_id"], ctx.who)
    return ctx.back(_item_url(ctx))


async def release(ctx: Ctx) -> Response:
    await ctx.parts.desk.release(ctx.request.path_params["review_id"], ctx.who)
    return ctx.back(_item_url(ctx))


async def reassign(ctx: Ctx) -> Response:
    review_id = ctx.request.path_params["review_id"]
    await ctx.parts.desk.reassign(review_id, ctx.who, ctx.form.get("to", "").strip(), ctx.form.get("reason", ""))
    return ctx.back(_item_url(ctx))


async def decide(ctx: Ctx) -> Response:
    review_id = ctx.request.path_params["review_id"]
    item = await ctx.parts.desk.item(review_id)
    value = forms.read(item.review.request, ctx.form)
    await ctx.parts.desk.decide(review_id, ctx.who, value, ctx.form.get("idempotency_key") or None)
    return ctx.back(_item_url(ctx))


async def approve(ctx: Ctx) -> Response:
    review_id = ctx.request.path_params["review_id"]
    await ctx.parts.desk.approve(review_id, ctx.who, ctx.form.get("proposal_digest") or None)
    return ctx.back(_item_url(ctx))


async def reject(ctx: Ctx) -> Response:
    await ctx.parts.desk.reject(ctx.request.path_params["review_id"], ctx.who, ctx.form.get("reason", ""))
    return ctx.back(_item_url(ctx))


# runs and deliveries ---------------------------------------------------------------------------------


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
        now=ctx.services.clock.now(),
    )


async def run_page(ctx: Ctx) -> Response:
    run = await ctx.services.gateway.get_run(ctx.request.path_params["run_id"])
    timeline = await ctx.services.store.timeline(run.id)
    deliveries = await ctx.services.store.list_deliveries(state=None, run_id=run.id, sink=None, limit=100, before=None)
    reviews = await ctx.parts.desk.queue.review_ids_for_run(run.id)
    return ctx.render(
        "run.html",
        run=json_render.run_summary(run),
        timeline=[json_render.transition(step) for step in timeline],
        deliveries=[json_render.delivery(d) for d in deliveries],
        reviews=reviews,
        refresh=0 if run.is_terminal else 5,
    )


async def retry_run(ctx: Ctx) -> Response:
    run_id = ctx.request.path_params["run_id"]
    await ctx.services.gateway.retry_start(run_id)
    await ctx.parts.desk.access.audit(
        [AuditEntry(actor=ctx.who.name, action="run_retried", object=f"run:{run_id}")], ctx.services.clock.now()
    )
    return ctx.back(f"/ui/runs/{run_id}")


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
    delivery = await ctx.services.store.get_delivery(ctx.request.path_params["delivery_id"])
    if delivery is None:
        raise errors.NotFound("no such delivery")
    attempts = await ctx.services.ops.attempts(delivery.id)
    return ctx.render(
        "delivery.html",
        delivery=json_render.delivery(delivery),
        attempts=[attempt_json(a) for a in attempts],
    )


async def retry_delivery(ctx: Ctx) -> Response:
    delivery_id = ctx.request.path_params["delivery_id"]
    delivery = await ctx.services.gateway.retry_delivery(delivery_id)
    await ctx.parts.desk.access.audit(
        [AuditEntry(actor=ctx.who.name, action="delivery_replayed", object=f"delivery:{delivery_id}")],
        ctx.services.clock.now(),
    )
    if ctx.form.get("back") == "run":
        return ctx.back(f"/ui/runs/{delivery.run_id}")
    return ctx.back("/ui/deliveries")


def routes() -> list[BaseRoute]:
    decide_scope = access.REVIEWS_DECIDE
    item = "/reviews/{review_id}"
    return [
        Route("/reviews", endpoint(access.REVIEWS_READ, queue), methods=["GET"]),
        Route(item, endpoint(access.REVIEWS_READ, item_page), methods=["GET"]),
        Route(f"{item}/claim", endpoint(decide_scope, claim), methods=["POST"]),
        Route(f"{item}/release", endpoint(decide_scope, release), methods=["POST"]),
        Route(f"{item}/reassign", endpoint(decide_scope, reassign), methods=["POST"]),
        Route(f"{item}/decide", endpoint(decide_scope, decide), methods=["POST"]),
        Route(f"{item}/approve", endpoint(decide_scope, approve), methods=["POST"]),
        Route(f"{item}/reject", endpoint(decide_scope, reject), methods=["POST"]),
        Route("/runs", endpoint(access.RUNS_READ, runs_page), methods=["GET"]),
        Route("/runs/{run_id}", endpoint(access.RUNS_READ, run_page), methods=["GET"]),
        Route("/runs/{run_id}/retry", endpoint(access.RUNS_RETRY, retry_run), methods=["POST"]),
        Route("/deliveries", endpoint(access.RUNS_READ, deliveries_page), methods=["GET"]),
        Route("/deliveries/{delivery_id}", endpoint(access.RUNS_READ, delivery_page), methods=["GET"]),
        Route("/deliveries/{delivery_id}/retry", endpoint(access.DELIVERIES_REPLAY, retry_delivery), methods=["POST"]),
    ]
