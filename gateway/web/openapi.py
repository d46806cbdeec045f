"""The OpenAPI 3.1 document of the JSON API, generated from ``gateway.web.shapes`` and served at ``/openapi.json``.

Nothing here describes a body by hand: ``OPERATIONS`` is the route table (path, method, request shape, answer
shapes by status, error statuses, parameters, security) and every schema comes from the shapes' msgspec Structs
(``msgspec.json.schema_components``). Tests check that the operations are exactly the routes the app serves, and
a schemathesis run against the live server checks that every answer matches.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from gateway import __version__
from gateway.domain.desk import Order, SlaState
from gateway.domain.model import DeliveryState, JobKind, ReviewState, RunStatus
from gateway.web import shapes

JSONSchema = dict[str, Any]
Security = list[dict[str, list[str]]]

REF = "#/components/schemas/{name}"
ID_PATTERN = "^[A-Za-z0-9_-]{1,100}$"
JSON = "application/json"

OPERATOR: Security = [{"operatorToken": []}]
SOURCE: Security = [{"sourceToken": []}]
SIGNED: Security = [{"webhookSignature": []}]
PUBLIC: Security = []
OPERATOR_ERRORS = (401, 403, 429)  # the guard (bearer credentials, scope) and the failed-auth throttle

ERRORS = {
    400: "The request is malformed (bad JSON, bad query value, malformed signature headers)",
    401: "Missing or invalid credentials or signature",
    403: "The credentials lack the scope or role this needs",
    404: "No such object, source or provider",
    409: "The object is not in a state that allows this",
    413: "The body is larger than this endpoint accepts",
    415: "The body is in a form this endpoint does not take (a batch of CloudEvents)",
    422: "Well-formed input that does not fit what is asked for",
    429: "Too many requests or failed authentications; see Retry-After",
}


@dataclass(frozen=True)
class Answer:
    """One answer: a status, what it means, and its body's shape(s) (several: any one of them; none: no body)."""

    status: int
    description: str
    shapes: tuple[Any, ...] = ()
    media: str = JSON


@dataclass(frozen=True)
class Param:
    name: str
    where: str  # path, query or header
    description: str
    schema: JSONSchema

    def document(self) -> JSONSchema:
        return {
            "name": self.name,
            "in": self.where,
            "required": self.where == "path",
            "description": self.description,
            "schema": self.schema,
        }


@dataclass(frozen=True)
class Body:
    shape: type[msgspec.Struct]
    description: str
    media: tuple[str, ...] = (JSON,)
    required: bool = True


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    id: str
    summary: str
    answers: tuple[Answer, ...]
    errors: tuple[int, ...] = ()
    params: tuple[Param, ...] = ()
    body: Body | None = None
    security: Security = field(default_factory=lambda: OPERATOR)
    description: str | None = None


def path(name: str, description: str) -> Param:
    return Param(name, "path", description, {"type": "string", "pattern": ID_PATTERN})


def query(name: str, schema: JSONSchema, description: str) -> Param:
    return Param(name, "query", description, schema)


def text(name: str, description: str) -> Param:
    return query(name, {"type": "string", "minLength": 1, "maxLength": 200}, description)


def one_of(name: str, values: list[str], description: str, **extra: Any) -> Param:
    return query(name, {"type": "string", "enum": values, **extra}, description)


def limit(default: int = 50, description: str = "Page size") -> Param:
    return query("limit", {"type": "integer", "minimum": 1, "maximum": 500, "default": default}, description)


def ok(status: int, description: str, *shape: Any) -> tuple[Answer, ...]:
    return (Answer(status, description, shape),)


RUN_ID = path("run_id", "A run id (run_...)")
REVIEW_ID = path("review_id", "A review id (rev_...)")
DELIVERY_ID = path("delivery_id", "A delivery id (dlv_...)")
BEFORE = text("before", "Return items older than this id (next_before of the previous page)")
STUCK_LIMIT = limit(100, "At most this many")
EVENT_BODY = Body(shapes.CloudEvent, "At most 1 MiB", media=("application/cloudevents+json", JSON))
EVENT_ANSWERS = (
    Answer(202, "Stored; one queued run per matching route", (shapes.EventAccepted,)),
    Answer(
        200, "This (source, id) was seen before; the first answer again, nothing new started", (shapes.EventAccepted,)
    ),
)
EVENT_ERRORS = (400, 401, 404, 413, 415, 429)
REDIRECT = (Answer(303, "To /ui/reviews"),)


def _review(op_id: str, summary: str, action: str, answers: tuple[Answer, ...], *extra: int, **kw: Any) -> Operation:
    return Operation(
        "POST",
        f"/v1/reviews/{{review_id}}/{action}",
        op_id,
        summary,
        answers,
        (404, 409, *extra),
        (REVIEW_ID, *kw.pop("params", ())),
        **kw,
    )


LIST_REVIEW_PARAMS = (
    one_of("state", [*(s.value for s in ReviewState), "any"], "Review state (default OPEN; any for every state)"),
    text("flow", "Only reviews of this flow"),
    text("assignee", "Only items claimed by this operator (me: the caller; none: unclaimed)"),
    query(
        "older_than",
        {"type": "string", "pattern": "^[0-9]{1,9}$"},
        "Only items opened at least this many seconds ago",
    ),
    one_of("sla", [s.value for s in SlaState], "Only items in this SLA state"),
    one_of("order", [o.value for o in Order], "Sort order", default="newest"),
    text("after", "Return items after this cursor (next_after of the previous page)"),
    limit(),
)


OPERATIONS: tuple[Operation, ...] = (
    Operation("GET", "/healthz", "healthz", "The process answers", ok(200, "Alive", shapes.Alive), security=PUBLIC),
    Operation(
        "GET",
        "/readyz",
        "readyz",
        "The store answers and every migration is applied",
        (Answer(200, "Ready", (shapes.Ready,)), Answer(503, "Not ready", (shapes.NotReady,))),
        security=PUBLIC,
    ),
    Operation("GET", "/", "home", "Redirects to the operator review desk", REDIRECT, security=PUBLIC),
    Operation("GET", "/ui", "desk", "Redirects to the operator review desk", REDIRECT, security=PUBLIC),
    Operation(
        "GET", "/openapi.json", "openapi", "This document", ok(200, "The OpenAPI 3.1 document", dict), security=PUBLIC
    ),
    Operation(
        "POST",
        "/v1/events",
        "submitEvent",
        "Submit a CloudEvent from an internal system (bearer token names the source)",
        EVENT_ANSWERS,
        EVENT_ERRORS,
        body=EVENT_BODY,
        security=SOURCE,
    ),
    Operation(
        "POST",
        "/v1/events/{source}",
        "submitEventForSource",
        "Submit a CloudEvent for a named source (bearer token or Standard Webhooks signature)",
        EVENT_ANSWERS,
        EVENT_ERRORS,
        (path("source", "A source name from the configuration"),),
        body=EVENT_BODY,
        security=[*SOURCE, *SIGNED],
    ),
    Operation(
        "POST",
        "/v1/webhooks/{provider}",
        "receiveNotification",
        "A provider's signed status notification",
        (
            Answer(202, "Verified and recorded", (shapes.NotificationAccepted,)),
            Answer(
                200,
                "This message id was seen before (duplicate), or it is about nothing the gateway follows",
                (shapes.NotificationSeen,),
            ),
        ),
        (400, 401, 404, 413, 429),
        (path("provider", "A provider name from the configuration"),),
        body=Body(shapes.Notification, "At most 256 KiB; verified over the raw bytes"),
        security=SIGNED,
    ),
    Operation(
        "GET",
        "/v1/runs",
        "listRuns",
        "Runs, newest first",
        ok(200, "Runs, newest first", shapes.RunPage),
        (400,),
        (
            one_of("status", [s.value for s in RunStatus], "Only runs in this status"),
            text("flow", "Only runs of this flow"),
            text("route", "Only runs started by this route"),
            text("provider", "Only runs on this provider"),
            text("event_id", "Only runs started by this event"),
            BEFORE,
            limit(),
        ),
    ),
    Operation(
        "GET",
        "/v1/runs/stuck",
        "listStuckRuns",
        "Runs in a state the pipeline should never leave them in",
        ok(200, "What is stuck", shapes.StuckRuns),
        (400, 404),
        (STUCK_LIMIT,),
    ),
    Operation(
        "POST",
        "/v1/runs/stuck/repair",
        "repairStuckRuns",
        "Repair the stuck runs that are safe to repair (a run that moved meanwhile is skipped)",
        ok(200, "The runs repaired", shapes.RepairedRuns),
        (400, 404),
        (STUCK_LIMIT,),
    ),
    Operation(
        "GET",
        "/v1/runs/{run_id}",
        "getRun",
        "One run with its timeline",
        ok(200, "One run with its timeline", shapes.RunDetail),
        (404,),
        (RUN_ID,),
    ),
    Operation(
        "POST",
        "/v1/runs/{run_id}/retry",
        "retryRun",
        "Start a FAILED_TO_START or HELD run again",
        ok(202, "Queued again", shapes.RunSummary),
        (404, 409),
        (RUN_ID,),
    ),
    Operation(
        "POST",
        "/v1/runs/{run_id}/cancel",
        "cancelRun",
        "Queue a cancel of a live run",
        ok(202, "The cancel is queued", shapes.CancelRequested),
        (404, 409),
        (RUN_ID,),
        description=(
            "409 with code conflict when the run has finished, unsupported_operation when its provider cannot cancel"
        ),
    ),
    Operation(
        "POST",
        "/v1/runs/{run_id}/abandon",
        "abandonRun",
        "Give up on a HELD run (its start's outcome is unknown): it ends FAILED_TO_START",
        ok(200, "The run, FAILED_TO_START", shapes.RunSummary),
        (404, 409),
        (RUN_ID,),
    ),
    Operation(
        "POST",
        "/v1/runs/{run_id}/adopt",
        "adoptRun",
        "A HELD run is this provider run (the lost start did start it): record its id and fetch it",
        ok(202, "The run, CREATED; a fetch is queued", shapes.RunSummary),
        (400, 404, 409, 413, 422),
        (RUN_ID,),
        body=Body(shapes.Adoption, "The provider's id of the run"),
    ),
    Operation(
        "GET",
        "/v1/notifications/orphans",
        "listOrphanNotifications",
        "Provider runs the gateway does not know, seen in notifications, most recently heard from first",
        ok(200, "The orphan provider runs", shapes.OrphanRuns),
        (400,),
        (text("provider", "Only this provider"), limit()),
    ),
    Operation(
        "GET",
        "/v1/reviews",
        "listReviews",
        "Review items, newest or most urgent first",
        ok(200, "Review items, newest or most urgent first", shapes.ReviewPage),
        (400,),
        LIST_REVIEW_PARAMS,
    ),
    Operation(
        "POST",
        "/v1/reviews/search",
        "searchReviews",
        "Search the review items (the text in the body, never in a URL: it may name a patient)",
        ok(200, "One page of matches", shapes.ReviewPage),
        (400, 413, 422),
        LIST_REVIEW_PARAMS,
        Body(shapes.ReviewSearch, "At most 64 KiB"),
    ),
    Operation(
        "POST",
        "/v1/reviews/bulk",
        "bulkReviews",
        "Claim, release, reassign or decide up to 100 items; each goes through the single action's rules and audit",
        ok(200, "A result per item (refusals included); one refusal stops no other", shapes.BulkOutcome),
        (400, 413, 422),
        (),
        Body(shapes.BulkAction, "At most 64 KiB"),
        description="decide: an Idempotency-Key header becomes KEY:REVIEW_ID for each item",
    ),
    Operation(
        "GET",
        "/v1/reviews/{review_id}",
        "getReview",
        "One review item (the payload only for roles that may see it)",
        ok(200, "One review item (the payload only for roles that may see it)", shapes.ReviewDetail),
        (404,),
        (REVIEW_ID,),
    ),
    _review(
        "decideReview",
        "Decide an OPEN review; the run is resumed with the input (with four-eyes: a proposal to approve)",
        "decision",
        ok(
            202,
            "Decided (the resume is queued), or proposed when the flow needs approvals",
            shapes.Decided,
            shapes.Proposed,
        ),
        400,
        413,
        422,
        body=Body(shapes.Decision, "At most 64 KiB"),
        params=(
            Param(
                "Idempotency-Key",
                "header",
                "The same key with the same input answers the first answer again",
                {"type": "string", "minLength": 1, "maxLength": 255},
            ),
        ),
    ),
    Operation(
        "GET",
        "/v1/reviews/{review_id}/audit",
        "getReviewAudit",
        "The audit trail of one review item",
        ok(200, "The audit trail of one review item", shapes.AuditTrail),
        (404,),
        (REVIEW_ID,),
    ),
    _review(
        "claimReview",
        "Claim an OPEN review (or renew one's own claim)",
        "claim",
        ok(200, "Claimed", shapes.ReviewSummary),
    ),
    _review(
        "releaseReview",
        "Release one's own claim on an OPEN review",
        "release",
        ok(200, "Released", shapes.ReviewSummary),
    ),
    _review(
        "reassignReview",
        "Hand an OPEN review to another operator (the claimer or an approver)",
        "reassign",
        ok(200, "Reassigned", shapes.ReviewSummary),
        400,
        413,
        422,
        body=Body(shapes.Reassign, "At most 64 KiB"),
    ),
    _review(
        "approveReview",
        "Four-eyes: approve the decision proposed on an OPEN review (approver role)",
        "approve",
        ok(202, "Approved", shapes.Approved),
        400,
        413,
        body=Body(shapes.Approve, "At most 64 KiB; may be empty", required=False),
    ),
    _review(
        "rejectReview",
        "Four-eyes: reject the decision proposed on an OPEN review (approver role)",
        "reject",
        ok(200, "The proposal is withdrawn; the item stays OPEN", shapes.ReviewSummary),
        400,
        413,
        422,
        body=Body(shapes.Reject, "At most 64 KiB"),
    ),
    Operation(
        "GET",
        "/v1/audit/verify",
        "verifyAudit",
        "Walk the audit chain and name the first broken link (admin scope)",
        ok(200, "The verdict", shapes.AuditVerdict),
    ),
    Operation(
        "GET",
        "/v1/health/breakers",
        "listBreakers",
        "The circuit breaker of every sink and provider that has been called",
        ok(200, "The breakers", shapes.Breakers),
    ),
    Operation(
        "GET",
        "/v1/deliveries",
        "listDeliveries",
        "Sink deliveries, newest first",
        ok(200, "Sink deliveries, newest first", shapes.DeliveryPage),
        (400,),
        (
            one_of("state", [s.value for s in DeliveryState], "Only deliveries in this state"),
            text("run_id", "Only deliveries of this run"),
            text("sink", "Only deliveries to this sink"),
            BEFORE,
            limit(),
        ),
    ),
    Operation(
        "POST",
        "/v1/deliveries/replay",
        "replayDeliveries",
        "Send finished deliveries again, filtered by sink, state and creation time; each keeps its id",
        ok(202, "Queued again", shapes.Replayed),
        (400, 413, 422),
        body=Body(shapes.ReplayQuery, "At most 64 KiB"),
    ),
    Operation(
        "GET",
        "/v1/deliveries/{delivery_id}",
        "getDelivery",
        "One delivery",
        ok(200, "One delivery", shapes.Delivery),
        (404,),
        (DELIVERY_ID,),
    ),
    Operation(
        "POST",
        "/v1/deliveries/{delivery_id}/retry",
        "retryDelivery",
        "Send a delivery again with the same delivery id",
        ok(202, "Queued again", shapes.Delivery),
        (404, 409),
        (DELIVERY_ID,),
    ),
    Operation(
        "GET",
        "/v1/deliveries/{delivery_id}/attempts",
        "listDeliveryAttempts",
        "Every attempt of a delivery, oldest first (never a body)",
        ok(200, "Every attempt of a delivery, oldest first (never a body)", shapes.DeliveryAttempts),
        (404,),
        (DELIVERY_ID,),
    ),
    Operation(
        "GET",
        "/v1/jobs/dead",
        "listDeadJobs",
        "Jobs that gave up (buried), oldest first",
        ok(200, "Jobs that gave up (buried), oldest first", shapes.DeadJobPage),
        (400,),
        (
            one_of("kind", [k.value for k in JobKind], "Only jobs of this kind"),
            text("after", "Return jobs after this id (next_after of the previous page)"),
            limit(),
        ),
    ),
    Operation(
        "POST",
        "/v1/jobs/{job_id}/retry",
        "retryJob",
        "Queue a dead job again with a fresh attempt budget (a delivery job: its delivery, same id)",
        ok(202, "Queued again", shapes.DeadJob),
        (404, 409),
        (path("job_id", "A job id (an integer)"),),
    ),
    Operation(
        "GET",
        "/v1/sinks",
        "listSinks",
        "Every configured sink: disabled or not, failing since",
        ok(200, "The sinks", shapes.SinkStates),
    ),
    Operation(
        "POST",
        "/v1/sinks/{sink}/enable",
        "enableSink",
        "Enable a sink disabled after 410 Gone or too long failing",
        ok(200, "Enabled", shapes.SinkState),
        (404, 409),
        (path("sink", "A sink name from the config"),),
    ),
    Operation(
        "GET",
        "/metrics",
        "metrics",
        "Prometheus metrics (text format); a bearer token when [metrics] token_env is set",
        (Answer(200, "The metrics", (str,), media="text/plain; version=0.0.4; charset=utf-8"),),
        (401,),
        security=[{"metricsToken": []}, {}],
    ),
)

SECURITY_SCHEMES = {
    "operatorToken": {"type": "http", "scheme": "bearer", "description": "An operator token"},
    "metricsToken": {"type": "http", "scheme": "bearer", "description": "The [metrics] token, when set"},
    "sourceToken": {"type": "http", "scheme": "bearer", "description": "A bearer source's token"},
    "webhookSignature": {
        "type": "apiKey",
        "in": "header",
        "name": "webhook-signature",
        "description": (
            "Standard Webhooks: webhook-id, webhook-timestamp and webhook-signature headers "
            "(svix-* accepted too), signed over the raw body"
        ),
    },
}


def build(operations: tuple[Operation, ...] = OPERATIONS) -> dict[str, Any]:
    """The document: every shape the operations name (and the Error shape) as a component, then the paths."""
    types: list[Any] = [shapes.Error]
    for op in operations:
        types.extend(kind for answer in op.answers for kind in answer.shapes)
        if op.body:
            types.append(op.body.shape)
    unique = list(dict.fromkeys(types))
    inline, components = msgspec.json.schema_components(unique, ref_template=REF)
    schema_of = dict(zip(unique, inline, strict=True))
    for name, schema in components.items():
        schema.pop("title", None)
        schema.update(getattr(getattr(shapes, name, None), "schema_extra", {}))
    paths: dict[str, dict[str, Any]] = {}
    for op in operations:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, schema_of)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "gateway",
            "version": __version__,
            "description": (
                "Webhook-driven integration gateway for hosted flow APIs. Every error answer is "
                '{"error": {"code", "message"}}. Routes under /v1/ answer 429 with Retry-After after repeated '
                "failed authentication from one address."
            ),
        },
        "paths": paths,
        "components": {"schemas": dict(sorted(components.items())), "securitySchemes": SECURITY_SCHEMES},
    }


def _operation(op: Operation, schema_of: dict[Any, JSONSchema]) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for answer in op.answers:
        response: dict[str, Any] = {"description": answer.description}
        if answer.shapes:
            found = [schema_of[kind] for kind in answer.shapes]
            response["content"] = {answer.media: {"schema": found[0] if len(found) == 1 else {"oneOf": found}}}
        responses[str(answer.status)] = response
    codes = set(op.errors) | (set(OPERATOR_ERRORS) if op.security == OPERATOR else set())
    for code in sorted(codes):
        error: dict[str, Any] = {"description": ERRORS[code], "content": {JSON: {"schema": schema_of[shapes.Error]}}}
        if code == 429:
            error["headers"] = {"Retry-After": {"schema": {"type": "integer", "minimum": 1}}}
        responses[str(code)] = error
    out: dict[str, Any] = {"operationId": op.id, "summary": op.summary, "security": op.security}
    if op.description:
        out["description"] = op.description
    if op.params:
        out["parameters"] = [param.document() for param in op.params]
    if op.body:
        schema = schema_of[op.body.shape]
        out["requestBody"] = {
            "required": op.body.required,
            "description": op.body.description,
            "content": {media: {"schema": schema} for media in op.body.media},
        }
    out["responses"] = responses
    return out


@functools.cache
def document() -> dict[str, Any]:
    return build()


@functools.cache
def _served() -> bytes:
    return msgspec.json.encode(document())


DOCUMENT = document()


async def openapi_json(request: Request) -> Response:
    return Response(_served(), media_type=JSON)
