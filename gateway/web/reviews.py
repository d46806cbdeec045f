"""GET /v1/reviews, GET /v1/reviews/{id}, POST /v1/reviews/{id}/decision."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gateway import errors
from gateway.model import ReviewState
from gateway.web import auth, render
from gateway.web.body import read_json
from gateway.web.common import json, page, query_enum, query_limit, query_text, services


async def list_reviews(request: Request) -> Response:
    svc = services(request)
    auth.operator(svc, request)
    limit = query_limit(request)
    state = query_enum(request, "state", ReviewState) or ReviewState.OPEN
    reviews = await svc.store.list_reviews(
        state=state.value, flow=query_text(request, "flow"), limit=limit, before=query_text(request, "before")
    )
    return json(page([render.review_summary(review) for review in reviews], limit))


async def get_review(request: Request) -> Response:
    svc = services(request)
    auth.operator(svc, request)
    review = await svc.gateway.get_review(request.path_params["review_id"])
    run = await svc.store.get_run(review.run_id)
    return json(render.review_detail(review, run))


async def decide(request: Request) -> Response:
    svc = services(request)
    who = auth.operator(svc, request)
    body = await read_json(request, svc.settings.limits.operator_body_bytes)
    if not isinstance(body, dict) or "input" not in body:
        raise errors.BadRequest('body must be a JSON object with an "input" member')
    review = await svc.gateway.decide(request.path_params["review_id"], body["input"], who.name)
    return json(render.review_summary(review), status=202)
