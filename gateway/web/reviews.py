"""The review queue's JSON API; it mirrors the UI. Guarded by gateway.web.guard (bearer credentials + scope).

GET /v1/reviews (filters, newest or most urgent first, keyset paging), GET /v1/reviews/{id} (payload only
for roles that may see it; audited), GET /v1/reviews/{id}/audit, POST .../decision (Idempotency-Key),
.../claim, .../release, .../reassign, .../approve, .../reject.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from gateway.desk import views
from gateway.desk.service import Desk
from gateway.domain import errors
from gateway.domain.desk import Order, QueueFilter, SlaState
from gateway.domain.model import ReviewState
from gateway.store import audit_sql
from gateway.store.queue_sql import urgent_cursor
from gateway.web.body import parse_json, read_limited
from gateway.web.common import json, query_enum, query_limit, query_text, services
from gateway.web.guard import principal

_SECONDS = re.compile(r"[0-9]{1,9}")  # ASCII digits, at most ~31 years: str.isdigit() also takes "²"


def desk(request: Request) -> Desk:
    parts = services(request).desk
    assert parts is not None
    return parts.desk


def queue_filter(request: Request, me: str) -> QueueFilter:
    """The queue's filters from the query string (shared by the JSON API and the UI)."""
    raw_state = request.query_params.get("state", ReviewState.OPEN.value)
    older = request.query_params.get("older_than")
    if older is not None and not _SECONDS.fullmatch(older):
        raise errors.BadRequest("older_than must be a whole number of seconds (at most 9 digits)")
    assignee = query_text(request, "assignee")
    return QueueFilter(
        state=None if raw_state == "any" else (query_enum(request, "state", ReviewState) or ReviewState.OPEN),
        flow=query_text(request, "flow"),
        assignee=me if assignee == "me" else assignee,
        older_than=float(older) if older else None,
        sla_state=query_enum(request, "sla", SlaState),
        order=query_enum(request, "order", Order) or Order.NEWEST,
        after=query_text(request, "after"),
        limit=query_limit(request),
    )


def next_cursor(items: list[Any], flt: QueueFilter) -> str | None:
    if len(items) < flt.limit or not items:
        return None
    return urgent_cursor(items[-1]) if flt.order == Order.URGENT else str(items[-1].id)


async def list_reviews(request: Request) -> Response:
    who = principal(request)
    flt = queue_filter(request, who.name)
    items = await desk(request).page(flt, who)
    now = services(request).clock.now()
    return json({"items": [views.summary(item, now) for item in items], "next_after": next_cursor(items, flt)})


async def get_review(request: Request) -> Response:
    item, payload = await desk(request).view(request.path_params["review_id"], principal(request))
    return json(views.detail(item, services(request).clock.now(), payload=payload))


async def review_audit(request: Request) -> Response:
    item = await desk(request).item(request.path_params["review_id"])
    records = await audit_sql.for_object(services(request).store.db, f"review:{item.id}")
    return json({"items": [views.audit_record(record) for record in records]})


async def decide(request: Request) -> Response:
    body = await _body(request)
    if "input" not in body:
        raise errors.BadRequest('body must be a JSON object with an "input" member')
    key = request.headers.get("idempotency-key")
    outcome = await desk(request).decide(request.path_params["review_id"], principal(request), body["input"], key)
    return json(outcome.body, status=outcome.status)


async def claim(request: Request) -> Response:
    item = await desk(request).claim(request.path_params["review_id"], principal(request))
    return json(views.summary(item, services(request).clock.now()))


async def release(request: Request) -> Response:
    item = await desk(request).release(request.path_params["review_id"], principal(request))
    return json(views.summary(item, services(request).clock.now()))


async def reassign(request: Request) -> Response:
    body = await _body(request)
    to, reason = body.get("to"), body.get("reason")
    if not isinstance(to, str) or not isinstance(reason, str):
        raise errors.BadRequest('body must be {"to": "<operator>", "reason": "<why>"}')
    item = await desk(request).reassign(request.path_params["review_id"], principal(request), to, reason)
    return json(views.summary(item, services(request).clock.now()))


async def approve(request: Request) -> Response:
    body = await _body(request)
    digest = body.get("proposal_digest")
    if digest is not None and not isinstance(digest, str):
        raise errors.BadRequest("proposal_digest must be a string")
    outcome = await desk(request).approve(request.path_params["review_id"], principal(request), digest)
    return json(outcome.body, status=outcome.status)


async def reject(request: Request) -> Response:
    body = await _body(request)
    reason = body.get("reason")
    if not isinstance(reason, str):
        raise errors.BadRequest('body must be {"reason": "<why>"}')
    item = await desk(request).reject(request.path_params["review_id"], principal(request), reason)
    return json(views.summary(item, services(request).clock.now()))


async def _body(request: Request) -> dict[str, Any]:
    raw = await read_limited(request, services(request).settings.limits.operator_body_bytes)
    if not raw.strip():
        return {}
    body = parse_json(raw)
    if not isinstance(body, dict):
        raise errors.BadRequest("body must be a JSON object")
    return body
