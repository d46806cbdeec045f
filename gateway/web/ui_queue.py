"""The queue page: filters kept in the URL, search, bulk claim / release / reassign.

A search may name a patient, so its text never goes in a URL (RELIABILITY.md A13): the search form is posted,
and the page it leads to carries the text sealed with the data key (``s=``), which only this gateway opens.
Filters are plain query parameters, so a filtered view can be bookmarked or shared.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import replace
from urllib.parse import urlencode

from starlette.responses import Response

from gateway.desk import views
from gateway.desk.service import BULK_ACTIONS
from gateway.domain import errors
from gateway.domain.model import ReviewState
from gateway.store.sealing import SealError
from gateway.web import live
from gateway.web.reviews import next_cursor, queue_filter
from gateway.web.ui import Ctx

FILTERS = ("flow", "state", "assignee", "older_than", "sla", "order", "limit")
SEARCH_PARAM = "s"
_SEARCH_AAD = "ui/queue/search"
_MAX_SEARCH = 200
_PAST_TENSE = {"claim": "Claimed", "release": "Released", "reassign": "Reassigned"}


def seal_search(ctx: Ctx, text: str) -> str:
    sealed = ctx.services.store.payloads.sealer.seal(_SEARCH_AAD, text.encode())
    return base64.urlsafe_b64encode(sealed).decode().rstrip("=")


def open_search(ctx: Ctx, token: str) -> str:
    try:
        sealed = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        return ctx.services.store.payloads.sealer.open(_SEARCH_AAD, sealed).decode()[:_MAX_SEARCH]
    except (ValueError, binascii.Error, SealError, UnicodeDecodeError):
        raise errors.BadRequest(
            "this search link is not from this gateway (or its key changed); search again"
        ) from None


def filter_params(ctx: Ctx) -> dict[str, str]:
    """The page's filters and sealed search, as they stand in its URL (without the page cursor)."""
    kept = (*FILTERS, SEARCH_PARAM)
    return {name: value for name, value in ctx.request.query_params.items() if name in kept and value}


async def queue(ctx: Ctx) -> Response:
    live_from = await live.position(ctx)
    flt = queue_filter(ctx.request, ctx.who.name)
    token = ctx.request.query_params.get(SEARCH_PARAM)
    text = open_search(ctx, token) if token else ""
    if text:
        flt = replace(flt, search=text, search_subject=ctx.who.sees_payload)
    items = await ctx.parts.desk.page(flt, ctx.who)
    now = ctx.services.clock.now()
    params = filter_params(ctx)
    return ctx.render(
        "queue.html",
        live_from=live_from,
        items=[views.summary(item, now, payload=ctx.who.sees_payload) for item in items],
        next_after=next_cursor(items, flt),
        params=params,
        query=urlencode(params),
        search=text,
        flows=sorted(ctx.services.settings.flows),
        states=[s.value for s in ReviewState],
    )


async def search(ctx: Ctx) -> Response:
    """The search form: its filters go in the URL as they are, its text sealed."""
    params = {name: ctx.form[name] for name in FILTERS if ctx.form.get(name)}
    text = " ".join(ctx.form.get("q", "").split())[:_MAX_SEARCH]
    if text:
        params[SEARCH_PARAM] = seal_search(ctx, text)
    return ctx.back(f"/ui/reviews?{urlencode(params)}")


async def bulk(ctx: Ctx) -> Response:
    action = ctx.form.get("action", "")
    if action not in BULK_ACTIONS:
        raise errors.BadRequest(f"action must be one of: {', '.join(BULK_ACTIONS)}")
    if not ctx.picked:
        raise errors.InvalidInput("tick the items first")
    if action != "claim":
        question = f"{action.capitalize()} {len(ctx.picked)} item(s)? Whoever holds them loses the claim."
        if (asking := ctx.unconfirmed(question, action.capitalize())) is not None:
            return asking
    outcome = await ctx.parts.desk.bulk(
        action, ctx.picked, ctx.who, to=ctx.form.get("to", "").strip(), reason=ctx.form.get("reason", "")
    )
    message = f"{_PAST_TENSE[action]} {len(outcome.done)} of {len(ctx.picked)} item(s)."
    if outcome.refused:
        shown = "; ".join(f"{review_id}: {why}" for review_id, why in outcome.refused[:3])
        more = f" (and {len(outcome.refused) - 3} more)" if len(outcome.refused) > 3 else ""
        message += f" Not done: {shown}{more}."
    query = ctx.request.url.query
    return ctx.back(f"/ui/reviews?{query}" if query else "/ui/reviews", message, ok=not outcome.refused)
