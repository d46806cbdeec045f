"""Domain objects: frozen dataclasses and str Enums whose values are the stored values. No I/O here."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

JSON = dict[str, Any]


class RunStatus(enum.StrEnum):
    QUEUED = "QUEUED"  # accepted by the gateway; the provider has not been asked yet
    HELD = "HELD"  # the start's answer was lost and the provider may have started it: an operator decides
    CREATED = "CREATED"
    IN_PROGRESS = "IN_PROGRESS"
    PENDING = "PENDING"  # paused, waiting for input
    COMPLETE = "COMPLETE"
    ERROR = "ERROR"
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"
    FAILED_TO_START = "FAILED_TO_START"
    UNKNOWN = "UNKNOWN"  # a provider status the adapter does not know


TERMINAL_RUN_STATUSES = frozenset(
    {RunStatus.COMPLETE, RunStatus.ERROR, RunStatus.CANCELLED, RunStatus.EXPIRED, RunStatus.FAILED_TO_START}
)
SUCCEEDED_RUN_STATUSES = frozenset({RunStatus.COMPLETE})


class ReviewState(enum.StrEnum):
    OPEN = "OPEN"
    DECIDED = "DECIDED"  # a decision was taken; the resume is being sent
    RESUMED = "RESUMED"  # the provider accepted the resume
    CLOSED = "CLOSED"  # the run left the pause without this review's decision
    EXPIRED = "EXPIRED"


OPEN_REVIEW_STATES = frozenset({ReviewState.OPEN})


class DeliveryState(enum.StrEnum):
    PENDING = "PENDING"
    DELIVERED = "DELIVERED"
    DEAD = "DEAD"


class JobKind(enum.StrEnum):
    START_RUN = "start_run"
    FETCH_RUN = "fetch_run"
    RESUME_RUN = "resume_run"
    DELIVER = "deliver"
    CANCEL_RUN = "cancel_run"
    POLL_RUN = "poll_run"  # a fetch on a timer, for providers whose pushes can be lost (``poll_interval``)
    REVIEW_OPENED = "review_opened"  # apply the flow's review policy to a new review (gateway.desk)
    REVIEW_TIMER = "review_timer"  # an SLA, expiry or claim-lease timer of a review (gateway.desk)
    ALERT = "alert"  # a signed alert about the review queue (gateway.desk)


class JobState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    DEAD = "dead"


@dataclass(frozen=True, slots=True, kw_only=True)
class CloudEvent:
    """An inbound CloudEvents 1.0 event, already validated."""

    id: str
    source: str
    type: str
    specversion: str = "1.0"
    subject: str | None = None
    time: str | None = None
    datacontenttype: str | None = None
    dataschema: str | None = None
    data: Any = None
    extensions: JSON = field(default_factory=dict)

    def as_dict(self) -> JSON:
        out: JSON = {"id": self.id, "source": self.source, "type": self.type, "specversion": self.specversion}
        for name in ("subject", "time", "datacontenttype", "dataschema"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        out.update(self.extensions)
        out["data"] = self.data
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class PendingInput:
    """What a paused run asks for."""

    key: str | None = None  # Sohar: the callback state id; Reminix: pendingAction.step
    kind: str = "callback"
    message: str | None = None
    options: list[str] | None = None
    schema: JSON | None = None
    assignee: str | None = None

    def as_dict(self) -> JSON:
        return {
            "key": self.key,
            "kind": self.kind,
            "message": self.message,
            "options": self.options,
            "schema": self.schema,
            "assignee": self.assignee,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSnapshot:
    """What a provider says about a run at one moment."""

    provider_run_id: str
    status: RunStatus
    provider_status: str
    output: JSON | None = None
    error: JSON | None = None
    pending: PendingInput | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Notification:
    """A provider's status webhook, verified and parsed."""

    provider: str
    message_id: str
    provider_run_id: str
    status: str | None = None
    state_id: str | None = None
    event_type: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Run:
    # what started it
    id: str
    event_id: str
    route: str
    flow: str
    provider: str
    template: str
    input: JSON | None = None
    idempotency_key: str
    traceparent: str | None = None  # W3C trace context of the event that started the run; its jobs continue it
    # where it stands
    status: RunStatus
    provider_run_id: str | None = None
    provider_status: str | None = None
    pending: PendingInput | None = None
    output: JSON | None = None
    error: JSON | None = None
    # when
    created_at: datetime
    updated_at: datetime
    last_news_at: datetime | None = None
    finished_at: datetime | None = None
    version: int = 0

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_RUN_STATUSES


@dataclass(frozen=True, slots=True, kw_only=True)
class Transition:
    run_id: str
    at: datetime
    from_status: RunStatus | None
    to_status: RunStatus
    cause: str
    detail: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Review:
    id: str
    run_id: str
    flow: str
    request: PendingInput
    state: ReviewState
    gathered: JSON | None = None
    decision: JSON | None = None
    decided_by: str | None = None
    created_at: datetime
    updated_at: datetime
    decided_at: datetime | None = None
    version: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    id: str
    run_id: str
    sink: str
    state: DeliveryState
    created_at: datetime
    updated_at: datetime
    attempts: int = 0
    next_attempt_at: datetime | None = None
    last_error: str | None = None
    last_status_code: int | None = None
    delivered_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryAttempt:
    """One try of a delivery: when, how long, what came back (never the body)."""

    delivery_id: str
    attempt: int
    at: datetime
    duration_ms: float
    status_code: int | None = None
    error: str | None = None
    response_bytes: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SinkState:
    """A sink's standing: failing since when, and disabled (410 Gone, or failing too long) until re-enabled."""

    sink: str
    failing_since: datetime | None = None
    disabled_at: datetime | None = None
    disabled_reason: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Job:
    id: int
    kind: JobKind
    ref: str
    data: JSON = field(default_factory=dict)
    state: JobState
    due_at: datetime
    attempts: int
    last_error: str | None = None
    fence: int  # bumped on each claim: a worker whose lease was taken over cannot finish the job
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryEnvelope:
    """What a sink is given: the run's outcome, with a delivery id stable across retries."""

    delivery_id: str
    run: Run
    attempt: int

    def body(self) -> JSON:
        run = self.run
        return {
            "type": "run.completed" if run.status == RunStatus.COMPLETE else "run.finished",
            "delivery_id": self.delivery_id,
            "run": {
                "id": run.id,
                "event_id": run.event_id,
                "route": run.route,
                "flow": run.flow,
                "provider": run.provider,
                "provider_run_id": run.provider_run_id,
                "status": run.status.value,
                "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            },
            "output": run.output,
            "error": run.error,
        }
