"""Every JSON shape of the HTTP API, once: a msgspec ``Struct`` per request body and per answer.

One definition drives three things: request bodies are decoded and checked against it (``decode``, after the
untrusted-JSON guard of ``gateway.core.jsontext``), answers are built from it and encoded by msgspec
(``gateway.web.common.json``), and ``gateway.web.openapi`` derives the OpenAPI 3.1 document from it.
A Struct's docstring is its schema's description; ``Meta`` carries constraints and field descriptions.

Request shapes check what the handlers check and no more: rules the services enforce themselves (a reason's
length, a provider run id's characters) are stated with ``doc(...)`` (``extra_json_schema``), so a value that
breaks them still gets the service's own answer. Some answers are built outside ``gateway.web`` (the desk's
views, an event's stored first answer, the breaker snapshot, stuck-run repair); their Structs describe them
and the tests hold the producers to them.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal, TypeVar

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from gateway.core.breaker import BreakerState
from gateway.domain import errors, model, ports
from gateway.domain.desk import SlaState
from gateway.domain.model import DeliveryState, JobKind, JobState, ReviewState, RunStatus
from gateway.domain.ports import PushKind
from gateway.engine import stuck

S = TypeVar("S", bound="Body")
A = TypeVar("A", bound=Struct)

DATE_TIME = Meta(extra_json_schema={"format": "date-time"})
Moment = Annotated[datetime, DATE_TIME]
Time = Moment | None
TimeText = Annotated[str, DATE_TIME]
Count = Annotated[int, Meta(ge=0)]


def doc(description: str | None = None, **schema: Any) -> Meta:
    """Documentation only: what the document states about a field that decoding does not check."""
    return Meta(description=description, extra_json_schema=schema or None)


def copied(shape: type[A], item: Any) -> A:
    """The shape filled from ``item``'s attributes of the same names."""
    return msgspec.convert(item, shape, from_attributes=True)


class Shape(Struct, kw_only=True):
    """Base of the answer shapes (not itself in the document)."""


# errors -----------------------------------------------------------------------------------------------------


class ErrorDetail(Struct, forbid_unknown_fields=True):
    code: str
    message: str


class Error(Struct, forbid_unknown_fields=True):
    """Every error answer: a fixed code and a message safe to show."""

    error: ErrorDetail


# health -----------------------------------------------------------------------------------------------------


class Alive(Shape):
    status: Literal["ok"]


class Ready(Shape):
    status: Literal["ready"]
    store: str | UnsetType = UNSET
    pending_migrations: Annotated[list[str], Meta(max_length=0)] | UnsetType = UNSET


class NotReady(Shape):
    status: Literal["unavailable"]


# events and webhooks ----------------------------------------------------------------------------------------

ATTRIBUTE = Meta(min_length=1, max_length=1024)
OPTIONAL_ATTRIBUTE = Meta(max_length=1024)


class CloudEvent(Struct, kw_only=True):
    """A CloudEvents 1.0 event in structured mode. Binary mode (ce-* headers, percent-encoded UTF-8, the data as
    the body) is also accepted; batched mode (application/cloudevents-batch+json) is refused with 415. Extension
    attributes are 1-20 lower-case letters or digits with string, integer or boolean values; data and
    data_base64 exclude each other."""

    # Parsed by gateway.core.cloudevents on the tuned ingest path; this Struct is its description.
    schema_extra: ClassVar[dict[str, Any]] = {"additionalProperties": {"type": ["string", "integer", "boolean"]}}

    specversion: Literal["1.0"]
    id: Annotated[str, ATTRIBUTE]
    source: Annotated[str, ATTRIBUTE]
    type: Annotated[str, ATTRIBUTE]
    subject: Annotated[str, OPTIONAL_ATTRIBUTE] | UnsetType = UNSET
    time: Annotated[str, Meta(max_length=1024, extra_json_schema={"format": "date-time"})] | UnsetType = UNSET
    datacontenttype: Annotated[str, OPTIONAL_ATTRIBUTE] | UnsetType = UNSET
    dataschema: Annotated[str, Meta(max_length=1024, extra_json_schema={"format": "uri"})] | UnsetType = UNSET
    data: Any = UNSET
    data_base64: Annotated[str, doc(contentEncoding="base64")] | UnsetType = UNSET


class AcceptedRun(Shape):
    id: str
    route: str
    status: RunStatus


class EventAccepted(Shape):
    """The runs an event started (kept with the event: a repeated event gets this answer again)."""

    event_id: str
    runs: list[AcceptedRun]


class Notification(Struct, kw_only=True):
    """A provider's status notification (Sohar: flow.updated), signed over the raw body."""

    event: str
    flowRunId: str
    status: str | UnsetType = UNSET
    stateId: str | UnsetType = UNSET


class NotificationAccepted(Shape):
    status: Literal["accepted"]
    run_id: str | None


class NotificationSeen(Shape):
    status: Literal["duplicate", "ignored"]


# runs -------------------------------------------------------------------------------------------------------


class Capabilities(Shape):
    can_resume: bool
    can_cancel: bool
    push: PushKind

    @classmethod
    def of(cls, found: ports.Capabilities | None) -> Capabilities | None:
        return cls(can_resume=found.can_resume, can_cancel=found.can_cancel, push=found.push) if found else None


class PendingInput(Shape):
    key: str | None
    kind: str
    message: str | None
    options: list[str] | None
    schema: dict[str, Any] | None
    assignee: str | None

    @classmethod
    def of(cls, pending: model.PendingInput) -> PendingInput:
        return cls(**pending.as_dict())


class Transition(Shape):
    at: Time
    from_: RunStatus | None = msgspec.field(name="from")
    to: RunStatus
    cause: str
    detail: Any

    @classmethod
    def of(cls, step: model.Transition) -> Transition:
        return cls(at=step.at, from_=step.from_status, to=step.to_status, cause=step.cause, detail=step.detail)


class RunSummary(Shape):
    id: str
    event_id: str
    route: str
    flow: str
    provider: str
    template: str
    status: RunStatus
    provider_status: str | None
    provider_run_id: str | None
    created_at: Time
    updated_at: Time
    finished_at: Time

    @classmethod
    def of(cls, run: model.Run) -> RunSummary:
        return cls(**_run_fields(run))


def _run_fields(run: model.Run) -> dict[str, Any]:
    return {
        "id": run.id,
        "event_id": run.event_id,
        "route": run.route,
        "flow": run.flow,
        "provider": run.provider,
        "template": run.template,
        "status": run.status,
        "provider_status": run.provider_status,
        "provider_run_id": run.provider_run_id,
        "created_at": run.created_at,
        "updated_at": run.updated_at,
        "finished_at": run.finished_at,
    }


class RunListItem(RunSummary):
    capabilities: Capabilities | None

    @classmethod
    def listed(cls, run: model.Run, capabilities: ports.Capabilities | None) -> RunListItem:
        return cls(**_run_fields(run), capabilities=Capabilities.of(capabilities))


class RunDetail(RunSummary):
    input: Any
    output: Any
    error: Any
    pending: PendingInput | None
    capabilities: Capabilities | None
    timeline: list[Transition]

    @classmethod
    def detailed(
        cls, run: model.Run, timeline: list[model.Transition], capabilities: ports.Capabilities | None
    ) -> RunDetail:
        return cls(
            **_run_fields(run),
            input=run.input,
            output=run.output,
            error=run.error,
            pending=PendingInput.of(run.pending) if run.pending else None,
            capabilities=Capabilities.of(capabilities),
            timeline=[Transition.of(step) for step in timeline],
        )


class CancelRequested(RunSummary):
    cancel: Literal["requested"]

    @classmethod
    def of(cls, run: model.Run) -> CancelRequested:
        return cls(**_run_fields(run), cancel="requested")


class RunPage(Shape):
    """One page, newest first; pass next_before as before= for the next page."""

    items: list[RunListItem]
    next_before: str | None


class OrphanRun(Shape):
    provider: str
    provider_run_id: str
    notifications: Annotated[int, Meta(ge=1)]
    first_received_at: Moment
    last_received_at: Moment
    last_status: str | None
    last_state_id: str | None

    @classmethod
    def of(cls, found: ports.OrphanRun) -> OrphanRun:
        return copied(cls, found)


class OrphanRuns(Shape):
    items: list[OrphanRun]


class StuckRun(Shape):
    run_id: str
    problem: Literal[
        "pending_without_review",
        "finished_without_deliveries",
        "queued_without_start",
        "decided_without_resume",
        "delivery_without_job",
        "start_held",
    ]
    status: RunStatus
    flow: str
    provider: str
    sinks: list[str]
    owed: list[str]  # the reviews or deliveries owed a job (decided_without_resume, delivery_without_job)

    @classmethod
    def of(cls, found: stuck.StuckRun) -> StuckRun:
        problem: Any = found.problem
        return cls(
            run_id=found.run.id,
            problem=problem,
            status=found.run.status,
            flow=found.run.flow,
            provider=found.run.provider,
            sinks=list(found.sinks),
            owed=list(found.owed),
        )


class StuckRuns(Shape):
    items: list[StuckRun]


class RepairedRuns(Shape):
    repaired: list[StuckRun]


# deliveries and jobs ----------------------------------------------------------------------------------------


class Delivery(Shape):
    id: str
    run_id: str
    sink: str
    state: DeliveryState
    attempts: Count
    next_attempt_at: Time
    last_error: str | None
    last_status_code: int | None
    created_at: Time
    delivered_at: Time

    @classmethod
    def of(cls, item: model.Delivery) -> Delivery:
        return copied(cls, item)


class DeliveryPage(Shape):
    """One page, newest first; pass next_before as before= for the next page."""

    items: list[Delivery]
    next_before: str | None


class DeliveryAttempt(Shape):
    attempt: Annotated[int, Meta(ge=1)]
    at: TimeText
    duration_ms: Annotated[float, Meta(ge=0)]
    status_code: int | None
    error: str | None
    response_bytes: Annotated[int | None, Meta(description="How much of the answer was read; never kept")]

    @classmethod
    def of(cls, attempt: model.DeliveryAttempt) -> DeliveryAttempt:
        return cls(
            attempt=attempt.attempt,
            at=attempt.at.isoformat(),
            duration_ms=round(attempt.duration_ms, 3),
            status_code=attempt.status_code,
            error=attempt.error,
            response_bytes=attempt.response_bytes,
        )


class DeliveryAttempts(Shape):
    items: list[DeliveryAttempt]


class Replayed(Shape):
    replayed: Count
    items: list[Delivery]


class DeadJob(Shape):
    id: int
    kind: JobKind
    ref: Annotated[str, Meta(description="The run, review or delivery the job works on")]
    state: JobState
    attempts: Count
    due_at: TimeText
    last_error: str | None

    @classmethod
    def of(cls, job: model.Job) -> DeadJob:
        return cls(
            id=job.id,
            kind=job.kind,
            ref=job.ref,
            state=job.state,
            attempts=job.attempts,
            due_at=job.due_at.isoformat(),
            last_error=job.last_error,
        )


class DeadJobPage(Shape):
    """Oldest first; pass next_after as after= for the next page."""

    items: list[DeadJob]
    next_after: str | None


class SinkState(Shape):
    sink: str
    disabled: bool
    disabled_at: TimeText | None
    disabled_reason: str | None
    failing_since: TimeText | None

    @classmethod
    def of(cls, state: model.SinkState) -> SinkState:
        return cls(
            sink=state.sink,
            disabled=state.disabled_at is not None,
            disabled_at=state.disabled_at.isoformat() if state.disabled_at else None,
            disabled_reason=state.disabled_reason,
            failing_since=state.failing_since.isoformat() if state.failing_since else None,
        )


class SinkStates(Shape):
    items: list[SinkState]


class Breaker(Shape):
    state: BreakerState
    consecutive_failures: Count
    recent_failures: Count
    recent_calls: Count
    opened_at: Time


class Breakers(Shape):
    """One circuit breaker per sink and provider that has been called."""

    breakers: dict[str, Breaker]


# reviews ----------------------------------------------------------------------------------------------------


class Due(Shape):
    kind: Literal["claim", "decide", "expires"]
    at: Time


class ReviewSummary(Shape):
    """A queue item without its payload."""

    id: str
    run_id: str
    flow: str
    subject: Annotated[str | None, Meta(description="Only for roles that may see payloads")]
    state: ReviewState
    waiting_in: str | None
    age_seconds: Count
    created_at: Time
    priority: int
    escalated_to: str | None
    sla_state: SlaState
    claim_due_at: Time
    decide_due_at: Time
    expires_at: Time
    due: Annotated[Due | None, Meta(description="What an open item must next meet")]
    claimed_by: Annotated[str | None, Meta(description="Who holds a live claim")]
    claim_expires_at: Time
    approvals_needed: Count
    awaiting_approval: bool
    decided_by: str | None
    decided_at: Time


class SlaOutcome(Shape):
    outcome: Literal["met", "breached", "no decision"]
    decided_in_seconds: Count | None
    state: ReviewState


class ReviewDetail(ReviewSummary):
    sla_outcome: Annotated[SlaOutcome | None, Meta(description="How a closed item ended against its SLA")]
    run_status: RunStatus | None
    template: str | None
    asks_for: PendingInput
    proposal_digest: str | None
    proposed_by: str | None
    approvals: list[str]
    approved_by: list[str]
    gathered: Annotated[Any, Meta(description="Only for roles that may see payloads")] = UNSET
    decision: Annotated[Any, Meta(description="Only for roles that may see payloads")] = UNSET
    proposal: Annotated[Any, Meta(description="Only for roles that may see payloads")] = UNSET


class ReviewPage(Shape):
    """One page; pass next_after as after= for the next page."""

    items: list[ReviewSummary]
    next_after: str | None


class Decided(Shape):
    """Decided; the resume is queued."""

    id: str
    state: Literal["DECIDED"]
    decided_by: str
    decided_at: Moment
    input_digest: str


class Proposed(Shape):
    """Four-eyes: the decision is a proposal awaiting approval."""

    id: str
    state: Literal["OPEN"]
    awaiting_approvals: Annotated[int, Meta(ge=1)]
    proposal_digest: str
    proposed_by: str


class Approved(Shape):
    """The approval is recorded; DECIDED once enough approvers agreed (the resume is then queued)."""

    id: str
    state: Literal["OPEN", "DECIDED"]
    approvals: Annotated[int, Meta(ge=1)]


class AuditRecord(Shape):
    seq: Annotated[int, Meta(ge=1)]
    at: Moment
    at_us: int
    actor: str
    action: str
    object: str
    details: dict[str, Any]
    prev_hash: str
    hash: str


class AuditTrail(Shape):
    items: list[AuditRecord]


class AuditVerdict(Shape):
    ok: bool
    checked: Count
    broken_at: Annotated[int | None, Meta(description="The seq of the first row that does not verify")]
    reason: str | None


# request bodies ---------------------------------------------------------------------------------------------

_FIELD = re.compile(r"`\$\.([A-Za-z_]+)|field `([A-Za-z_]+)`")


class Body(Struct, kw_only=True):
    """A request body: a JSON object. ``refused`` is the 400 message for one that does not fit."""

    not_an_object: ClassVar[str] = "body must be a JSON object"
    refused: ClassVar[str] = "body must be a JSON object"

    @classmethod
    def refusal(cls, field: str | None, value: dict[str, Any]) -> errors.GatewayError:
        """The error for a JSON object that does not fit (``field``: the one msgspec named, if any)."""
        return errors.BadRequest(cls.refused)


def decode(value: Any, shape: type[S]) -> S:
    """``value`` (already through ``gateway.core.jsontext``: no lone surrogates, NaN, duplicate keys or deep
    nesting) as ``shape``, or the shape's own 4xx error."""
    if not isinstance(value, dict):
        raise errors.BadRequest(shape.not_an_object)
    try:
        return msgspec.convert(value, shape)
    except msgspec.ValidationError as exc:
        named = _FIELD.search(str(exc))
        raise shape.refusal(named and (named.group(1) or named.group(2)), value) from None


class Adoption(Body):
    not_an_object = refused = 'body must be {"provider_run_id": "<the provider\'s run id>"}'

    provider_run_id: Annotated[str, doc("The provider's id of the run", pattern="^[!-~]{1,200}$")]


class Decision(Body):
    refused = 'body must be a JSON object with an "input" member'

    input: Annotated[Any, Meta(description="What the paused run asks for (see asks_for)")]


class Reassign(Body):
    refused = 'body must be {"to": "<operator>", "reason": "<why>"}'

    to: Annotated[str, doc("An operator who may decide reviews")]
    reason: Annotated[str, doc("1 to 500 characters")]


class Approve(Body):
    refused = "proposal_digest must be a string"

    proposal_digest: Annotated[str | None, doc("The proposal looked at; 409 if it changed")] = None


class Reject(Body):
    refused = 'body must be {"reason": "<why>"}'

    reason: Annotated[str, doc("1 to 500 characters")]


class ReviewSearch(Body, forbid_unknown_fields=True):
    """Search text for the queue: in the body, never in a URL (it may name a patient)."""

    not_an_object = refused = 'body must be {"q": "<review, run or event id, or words of the subject>"}'

    q: Annotated[
        str,
        doc(
            "A review, run or event id, or words of the subject (words: roles that see payloads only)",
            minLength=1,
            maxLength=200,
        ),
    ]


class BulkAction(Body):
    """One action on several review items; each goes through the single action's rules and audit."""

    refused = 'body must be {"action": "claim|release|reassign|decide", "review_ids": ["rev_..."]}'

    action: Annotated[str, doc(enum=["claim", "release", "reassign", "decide"])]
    review_ids: Annotated[list[str], doc(minItems=1, maxItems=100)]
    to: Annotated[str, doc("reassign: an operator who may decide reviews")] = ""
    reason: Annotated[str, doc("reassign: 1 to 500 characters; claim, release: optional")] = ""
    input: Annotated[Any, Meta(description="decide: the decision for every item (see asks_for)")] = UNSET

    @classmethod
    def refusal(cls, field: str | None, value: dict[str, Any]) -> errors.GatewayError:
        if field in ("to", "reason"):
            return errors.BadRequest("to and reason must be strings")
        return errors.BadRequest(cls.refused)


class BulkItemResult(Shape):
    review_id: str
    status: Annotated[int, Meta(description="What the single action would have answered")]
    body: Annotated[Any, Meta(description="On success: the ReviewSummary, or Decided / Proposed for decide")] = UNSET
    error: ErrorDetail | msgspec.UnsetType = UNSET


class BulkOutcome(Shape):
    """A result per item (refusals included); one refusal stops no other."""

    action: str
    done: int
    refused: int
    results: list[BulkItemResult]


REPLAY_LIMIT = 1000
_REPLAY_TIME = "must be an ISO 8601 time with an offset, e.g. 2026-11-22T09:00:00Z"


class ReplayQuery(Body, forbid_unknown_fields=True):
    """Which finished deliveries to send again; times are ISO 8601 with an offset."""

    sink: Annotated[str, Meta(min_length=1, max_length=200)] | None = None
    state: Literal["DEAD", "DELIVERED"] = "DEAD"
    created_after: Annotated[str, Meta(max_length=64, extra_json_schema={"format": "date-time"})] | None = None
    created_before: Annotated[str, Meta(max_length=64, extra_json_schema={"format": "date-time"})] | None = None
    limit: Annotated[int, Meta(ge=1, le=REPLAY_LIMIT)] = 100

    @classmethod
    def refusal(cls, field: str | None, value: dict[str, Any]) -> errors.GatewayError:
        unknown = sorted(set(value) - set(cls.__struct_fields__))
        if unknown:
            return errors.InvalidInput(f"unknown field(s): {', '.join(unknown)}")
        messages = {
            "sink": "sink must be a sink name",
            "state": "state must be DEAD or DELIVERED",
            "limit": f"limit must be an integer from 1 to {REPLAY_LIMIT}",
            "created_after": f"created_after {_REPLAY_TIME}",
            "created_before": f"created_before {_REPLAY_TIME}",
        }
        return errors.InvalidInput(messages.get(field or "", "body does not fit ReplayQuery"))

    def times(self) -> tuple[datetime | None, datetime | None]:
        """The two times, parsed (with an offset), the first earlier than the second."""
        after, before = _time(self.created_after, "created_after"), _time(self.created_before, "created_before")
        if after and before and after >= before:
            raise errors.InvalidInput("created_after must be earlier than created_before")
        return after, before


def _time(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise errors.InvalidInput(f"{name} {_REPLAY_TIME}")
    return parsed
