"""The review queue's JSON API; it mirrors the UI. Guarded by gateway.web.guard (bearer credentials + scope).

GET /v1/reviews (filters, newest or most urgent first, keyset paging), POST /v1/reviews/search (the same with
search text in the body: it may name a patient, so it never goes in a URL), POST /v1/reviews/bulk (claim,
release, reassign or decide several items, a result per item), GET /v1/reviews/{id} (payload only for roles
that may see it; audited), GET /v1/reviews/{id}/audit, POST .../decision (Idempotency-Key), .../claim,
.../release, .../reassign, .../approve, .../reject.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from msgspec import UNSET
from starlette.requests import Request
from starlette.responses import Response

from gateway.desk import access, views
from gateway.desk.service import BulkResult, Desk
from gateway.domain import errors
from gateway.domain.desk import Order, QueueFilter, SlaState
from gateway.domain.model import ReviewState
from gateway.store import audit_sql
from gateway.store.queue_sql import urgent_cursor
from gateway.web import shapes
from gateway.web.body import B, read_body
from gateway.web.common import json, query_enum, query_limit, query_text, services
from gateway.web.guard import principal
from gateway.web.operation import Answer, Body, E, Param, limit, ok, one_of, operation, query, text
from gateway.web.status import status_for

_SECONDS = re.compile(r"[0-9]{1,9}")  # ASCII digits, at most ~31 years: str.isdigit() also takes "²"
MAX_SEARCH = 200  # characters of search text, as on the queue page
LIST_PARAMS = (
    one_of("state", [*(s.value for s in ReviewState), "any"], "Review state (default OPEN; any for every state)"),
    text("flow", "Only reviews of this flow"),
    text("assignee", "Only items claimed by this operator (me: the caller; none: unclaimed)"),
    query(
        "older_than", {"type": "string", "pattern": "^[0-9]{1,9}$"}, "Only items opened at least this many seconds ago"
    ),
    one_of("sla", [s.value for s in SlaState], "Only items in this SLA state"),
    one_of("order", [o.value for o in Order], "Sort order", default="newest"),
    text("after", "Return items after this cursor (next_after of the previous page)"),
    limit(),
)
IDEMPOTENCY_KEY = Param(
    "Idempotency-Key",
    "header",
    "The same key with the same input answers the first answer again",
    {"type": "string", "minLength": 1, "maxLength": 255},
)


def acts(action: str, op_id: str, answers: tuple[Answer, ...], *errors: int, **kw: Any) -> Callable[[E], E]:
    """The operation of ``POST /v1/reviews/{review_id}/<action>``: 409 for an item that is not OPEN."""
    return operation(
        f"POST /v1/reviews/{{review_id}}/{action}", op_id, access.REVIEWS_DECIDE, answers, 409, *errors, **kw
    )


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


@operation(
    "GET /v1/reviews",
    "listReviews",
    access.REVIEWS_READ,
    ok(200, "Review items, newest or most urgent first", shapes.ReviewPage),
    params=LIST_PARAMS,
)
async def list_reviews(request: Request) -> Response:
    """Review items, newest or most urgent first"""
    if "q" in request.query_params:
        raise errors.BadRequest(
            'search text may name a patient and never goes in a URL: POST /v1/reviews/search {"q": ...}'
        )
    who = principal(request)
    flt = queue_filter(request, who.name)
    items = await desk(request).page(flt, who)
    now = services(request).clock.now()
    return json({"items": [views.summary(item, now) for item in items], "next_after": next_cursor(items, flt)})


@operation(
    "POST /v1/reviews/search",
    "searchReviews",
    access.REVIEWS_READ,
    ok(200, "One page of matches", shapes.ReviewPage),
    422,
    params=LIST_PARAMS,
    body=Body(shapes.ReviewSearch, "At most 64 KiB"),
)
async def search_reviews(request: Request) -> Response:
    """Search the review items (the text in the body, never in a URL: it may name a patient)

    The queue's search (review, run or event id, or words of the subject through its blind index, for roles that
    see payloads), with the list's filters and paging from the query string."""
    who = principal(request)
    flt = queue_filter(request, who.name)
    body = await _body(request, shapes.ReviewSearch)
    text = " ".join(body.q.split())
    if not text:
        raise errors.BadRequest(shapes.ReviewSearch.refused)
    if len(text) > MAX_SEARCH:
        raise errors.InvalidInput(f"q is longer than {MAX_SEARCH} characters")
    flt = replace(flt, search=text, search_subject=who.sees_payload)
    items = await desk(request).page(flt, who)
    now = services(request).clock.now()
    return json({"items": [views.summary(item, now) for item in items], "next_after": next_cursor(items, flt)})


@operation(
    "POST /v1/reviews/bulk",
    "bulkReviews",
    access.REVIEWS_DECIDE,
    ok(200, "A result per item (refusals included); one refusal stops no other", shapes.BulkOutcome),
    422,
    body=Body(shapes.BulkAction, "At most 64 KiB"),
    description="decide: an Idempotency-Key header becomes KEY:REVIEW_ID for each item",
)
async def bulk(request: Request) -> Response:
    """Claim, release, reassign or decide up to 100 items; each goes through the single action's rules and audit

    200 with a result per item: each is its own change, one refusal stops no other."""
    body = await _body(request, shapes.BulkAction)
    if body.action == "decide" and body.input is UNSET:
        raise errors.BadRequest('a bulk decision needs an "input" member (the decision for every item)')
    key = request.headers.get("idempotency-key")
    value = None if body.input is UNSET else body.input
    outcome = await desk(request).bulk(
        body.action, body.review_ids, principal(request), to=body.to, reason=body.reason, value=value, key=key
    )
    now = services(request).clock.now()
    results = [_bulk_result(result, now) for result in outcome.results]
    answer = shapes.BulkOutcome(
        action=body.action, done=len(outcome.done), refused=len(outcome.refused), results=results
    )
    return json(answer)


def _bulk_result(result: BulkResult, now: Any) -> shapes.BulkItemResult:
    if result.error is not None:
        detail = shapes.ErrorDetail(code=result.error.code, message=result.error.message)
        return shapes.BulkItemResult(review_id=result.review_id, status=status_for(result.error), error=detail)
    if result.outcome is not None:
        return shapes.BulkItemResult(review_id=result.review_id, status=result.outcome.status, body=result.outcome.body)
    assert result.item is not None
    return shapes.BulkItemResult(review_id=result.review_id, status=200, body=views.summary(result.item, now))


@operation(
    "GET /v1/reviews/{review_id}",
    "getReview",
    access.REVIEWS_READ,
    ok(200, "One review item (the payload only for roles that may see it)", shapes.ReviewDetail),
)
async def get_review(request: Request) -> Response:
    """One review item (the payload only for roles that may see it)"""
    item, payload = await desk(request).view(request.path_params["review_id"], principal(request))
    return json(views.detail(item, services(request).clock.now(), payload=payload))


@operation(
    "GET /v1/reviews/{review_id}/audit",
    "getReviewAudit",
    access.REVIEWS_READ,
    ok(200, "The audit trail of one review item", shapes.AuditTrail),
)
async def review_audit(request: Request) -> Response:
    """The audit trail of one review item"""
    item = await desk(request).item(request.path_params["review_id"])
    records = await audit_sql.for_object(services(request).store.db, f"review:{item.id}")
    return json({"items": [views.audit_record(record) for record in records]})


@acts(
    "decision",
    "decideReview",
    ok(
        202,
        "Decided (the resume is queued), or proposed when the flow needs approvals",
        shapes.Decided,
        shapes.Proposed,
    ),
    422,
    body=Body(shapes.Decision, "At most 64 KiB"),
    params=(IDEMPOTENCY_KEY,),
)
async def decide(request: Request) -> Response:
    """Decide an OPEN review; the run is resumed with the input (with four-eyes: a proposal to approve)"""
    body = await _body(request, shapes.Decision)
    key = request.headers.get("idempotency-key")
    outcome = await desk(request).decide(request.path_params["review_id"], principal(request), body.input, key)
    return json(outcome.body, status=outcome.status)


@acts("claim", "claimReview", ok(200, "Claimed", shapes.ReviewSummary))
async def claim(request: Request) -> Response:
    """Claim an OPEN review (or renew one's own claim)"""
    item = await desk(request).claim(request.path_params["review_id"], principal(request))
    return json(views.summary(item, services(request).clock.now()))


@acts("release", "releaseReview", ok(200, "Released", shapes.ReviewSummary))
async def release(request: Request) -> Response:
    """Release one's own claim on an OPEN review"""
    item = await desk(request).release(request.path_params["review_id"], principal(request))
    return json(views.summary(item, services(request).clock.now()))


@acts(
    "reassign",
    "reassignReview",
    ok(200, "Reassigned", shapes.ReviewSummary),
    422,
    body=Body(shapes.Reassign, "At most 64 KiB"),
)
async def reassign(request: Request) -> Response:
    """Hand an OPEN review to another operator (the claimer or an approver)"""
    body = await _body(request, shapes.Reassign)
    item = await desk(request).reassign(request.path_params["review_id"], principal(request), body.to, body.reason)
    return json(views.summary(item, services(request).clock.now()))


@acts(
    "approve",
    "approveReview",
    ok(202, "Approved", shapes.Approved),
    body=Body(shapes.Approve, "At most 64 KiB; may be empty", required=False),
)
async def approve(request: Request) -> Response:
    """Four-eyes: approve the decision proposed on an OPEN review (approver role)"""
    body = await _body(request, shapes.Approve)
    outcome = await desk(request).approve(request.path_params["review_id"], principal(request), body.proposal_digest)
    return json(outcome.body, status=outcome.status)


@acts(
    "reject",
    "rejectReview",
    ok(200, "The proposal is withdrawn; the item stays OPEN", shapes.ReviewSummary),
    422,
    body=Body(shapes.Reject, "At most 64 KiB"),
)
async def reject(request: Request) -> Response:
    """Four-eyes: reject the decision proposed on an OPEN review (approver role)"""
    body = await _body(request, shapes.Reject)
    item = await desk(request).reject(request.path_params["review_id"], principal(request), body.reason)
    return json(views.summary(item, services(request).clock.now()))


async def _body(request: Request, shape: type[B]) -> B:
    """A blank body counts as ``{}`` (``approve`` needs none; the others then name what they miss)."""
    return await read_body(request, services(request).settings.limits.operator_body_bytes, shape, empty=True)
