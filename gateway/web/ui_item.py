"""The item page and its actions: claim, release, reassign, decide, approve, reject.

What the flow gathered shows only to roles that may see payloads, and showing it is audited once per login
and item (A8, A13), not on every reload or live refresh. After each action the page says what was done; a
refused action shows the page again with the reason and what was typed.
"""

from __future__ import annotations

import secrets

from starlette.responses import Response

from gateway.desk import access, forms, views
from gateway.store import audit_sql
from gateway.web import live
from gateway.web import render as json_render
from gateway.web.ui import Ctx


async def item_page(ctx: Ctx) -> Response:
    live_from = await live.position(ctx)
    review_id = ctx.request.path_params["review_id"]
    item, payload = await ctx.parts.desk.view(review_id, ctx.who, ctx.login, activity=ctx.activity)
    now = ctx.services.clock.now()
    run = await ctx.services.store.get_run(item.review.run_id)
    timeline = await ctx.services.store.timeline(item.review.run_id)
    trail = await audit_sql.for_object(ctx.services.store.db, f"review:{review_id}")
    holder = item.holder(now)
    policy = ctx.services.settings.desk.policy(item.review.flow)
    may_decide = ctx.who.may(access.REVIEWS_DECIDE) and item.is_open
    fields = forms.fields(item.review.request)
    return ctx.render(
        "item.html",
        live_from=live_from,
        item=views.detail(item, now, payload=payload),
        run=json_render.run_summary(run) if run else None,
        timeline=[json_render.transition(step) for step in timeline],
        trail=[record.as_dict() for record in trail],
        fields=fields,
        shortcuts=forms.shortcut_keys(fields),
        payload=payload,
        holder=holder,
        claim_first=policy.claim_to_decide,
        can_claim=may_decide and holder is None,
        can_release=may_decide and holder == ctx.who.name,
        can_decide=may_decide and (holder == ctx.who.name or (holder is None and not policy.claim_to_decide)),
        can_reassign=may_decide and (holder in (None, ctx.who.name) or ctx.who.approves),
        can_approve=ctx.who.may(access.REVIEWS_DECIDE)
        and ctx.who.approves
        and item.proposal_digest is not None
        and ctx.who.name not in (item.proposed_by, item.proposed_claimer),
        form_key=ctx.form.get("idempotency_key") or secrets.token_urlsafe(16),  # a resent form gets the first answer
        refresh=5 if not item.is_open and run is not None and not run.is_terminal else 0,
    )


def _item_url(ctx: Ctx) -> str:
    return f"/ui/reviews/{ctx.request.path_params['review_id']}"


async def claim(ctx: Ctx) -> Response:
    await ctx.parts.desk.claim(ctx.request.path_params["review_id"], ctx.who)
    return ctx.back(_item_url(ctx), "Claimed: the item is yours while you work on it.")


async def release(ctx: Ctx) -> Response:
    await ctx.parts.desk.release(ctx.request.path_params["review_id"], ctx.who)
    return ctx.back(_item_url(ctx), "Released: the item is back in the queue for anyone.")


async def reassign(ctx: Ctx) -> Response:
    review_id = ctx.request.path_params["review_id"]
    to = ctx.form.get("to", "").strip()
    await ctx.parts.desk.reassign(review_id, ctx.who, to, ctx.form.get("reason", ""))
    return ctx.back(_item_url(ctx), f"Reassigned to {to}.")


async def decide(ctx: Ctx) -> Response:
    review_id = ctx.request.path_params["review_id"]
    item = await ctx.parts.desk.item(review_id)
    value = forms.read(item.review.request, ctx.form)
    outcome = await ctx.parts.desk.decide(review_id, ctx.who, value, ctx.form.get("idempotency_key") or None)
    if outcome.body.get("state") == "OPEN":
        needed = outcome.body.get("awaiting_approvals")
        return ctx.back(_item_url(ctx), f"Proposal recorded: it needs {needed} approval(s) by someone else.")
    return ctx.back(_item_url(ctx), "Decision recorded: the run resumes.")


async def approve(ctx: Ctx) -> Response:
    review_id = ctx.request.path_params["review_id"]
    outcome = await ctx.parts.desk.approve(review_id, ctx.who, ctx.form.get("proposal_digest") or None)
    if outcome.body.get("state") == "OPEN":
        return ctx.back(_item_url(ctx), "Approval recorded: more approvals are needed.")
    return ctx.back(_item_url(ctx), "Approved: the decision is taken and the run resumes.")


async def reject(ctx: Ctx) -> Response:
    await ctx.parts.desk.reject(ctx.request.path_params["review_id"], ctx.who, ctx.form.get("reason", ""))
    return ctx.back(_item_url(ctx), "Proposal rejected: the item is open for a new decision.")
