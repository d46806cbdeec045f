"""The Protocols, one per plug-in kind: Clock, Provider, Sink, Store. Implementations do not inherit from them."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from gateway.domain.model import (
    JSON,
    CloudEvent,
    Delivery,
    DeliveryAttempt,
    DeliveryEnvelope,
    DeliveryState,
    Job,
    JobKind,
    JobState,
    Notification,
    PendingInput,
    Review,
    ReviewState,
    Run,
    RunSnapshot,
    RunStatus,
    Transition,
)


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class PushKind(enum.StrEnum):
    WEBHOOK = "webhook"
    STREAM = "stream"
    POLL = "poll"


@dataclass(frozen=True, slots=True, kw_only=True)
class Capabilities:
    can_resume: bool
    can_cancel: bool
    push: PushKind

    def as_dict(self) -> JSON:
        return {"can_resume": self.can_resume, "can_cancel": self.can_cancel, "push": self.push.value}


class StartProgress(Protocol):
    """The ids a start made of several calls got from the calls it finished, kept across attempts and restarts,
    so a retried start reuses them instead of creating them again (TransactionLink legacy cases)."""

    async def done(self) -> Mapping[str, str]: ...

    async def record(self, name: str, value: str) -> None: ...


class Provider(Protocol):
    """One flow API. Raises TransientProviderError / PermanentProviderError / UnsupportedOperation.

    ``idempotent_start``: the adapter sends an idempotency key the provider is known to honour, so a start whose
    answer was lost can be sent again without starting a second run."""

    name: str
    capabilities: Capabilities
    idempotent_start: bool

    async def create_run(
        self, template: str, input: JSON, *, idempotency_key: str, progress: StartProgress | None = None
    ) -> RunSnapshot: ...

    async def get_run(self, provider_run_id: str, *, state_hint: str | None = None) -> RunSnapshot: ...

    async def resume_run(
        self, provider_run_id: str, pending: PendingInput | None, input: JSON
    ) -> RunSnapshot | None: ...

    async def cancel_run(self, provider_run_id: str) -> None: ...

    async def parse_notification(self, body: bytes, headers: Mapping[str, str], now: datetime) -> Notification | None:
        """Verify and parse a Notification. Raises SignatureError or BadRequest.

        Returns None for a validly signed message of a type the gateway does not act on: it is answered
        200 ``{"status": "ignored"}`` so the sender does not retry it for days."""
        ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryOutcome:
    """What became of one delivery attempt: the delivery's next state (PENDING: again at ``next_at``)."""

    state: DeliveryState
    next_at: datetime | None = None
    error: str | None = None
    status_code: int | None = None
    attempt: DeliveryAttempt | None = None  # the attempt's record, when a sink was called


@dataclass(frozen=True, slots=True, kw_only=True)
class DeliveryReceipt:
    status_code: int | None = None
    detail: str | None = None
    response_bytes: int | None = None  # how much of the answer was read (never kept)


class Sink(Protocol):
    """One output destination. Raises TransientSinkError / PermanentSinkError."""

    name: str

    async def deliver(self, envelope: DeliveryEnvelope) -> DeliveryReceipt: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class RunFilter:
    status: RunStatus | None = None
    flow: str | None = None
    route: str | None = None
    provider: str | None = None
    event_id: str | None = None
    before: str | None = None  # cursor: a run id; lists are newest first
    limit: int = 50


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplayQuery:
    """Which finished deliveries a bulk replay sends again (D10); times bound ``created_at``."""

    state: DeliveryState = DeliveryState.DEAD
    sink: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    limit: int = 100


@dataclass(frozen=True, slots=True, kw_only=True)
class NewRun:
    run: Run
    job_data: JSON


@dataclass(frozen=True, slots=True, kw_only=True)
class EventRecord:
    id: str
    source: str
    ce_id: str
    received_at: datetime
    response: JSON
    event: CloudEvent | None = None
    traceparent: str | None = None  # the W3C trace context the event arrived in (tracing.py)


@dataclass(frozen=True, slots=True, kw_only=True)
class NewJob:
    kind: JobKind
    ref: str
    due_at: datetime
    data: JSON | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class OrphanRun:
    """A provider run the gateway does not know, seen in notifications (a duplicate from a lost start's answer,
    a run started elsewhere, or one whose start has not been recorded yet)."""

    provider: str
    provider_run_id: str
    notifications: int
    first_received_at: datetime
    last_received_at: datetime
    last_status: str | None
    last_state_id: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class NotificationOutcome:
    duplicate: bool
    run_id: str | None
    ignored: bool = False  # validly signed, but of a type the gateway does not act on


@dataclass(frozen=True, slots=True, kw_only=True)
class RunChange:
    """The writes that follow one step of work on a run, taken in one transaction or not at all."""

    run: Run | None
    expected_version: int = 0
    finish_job: Job | None = None  # fenced: the change is dropped when the lease was lost
    transitions: Sequence[Transition] = ()
    open_review: Review | None = None
    refine_review: PendingInput | None = None  # the open review's pause point became known
    close_reviews: bool = False  # the run left its pause: DECIDED -> RESUMED, OPEN -> CLOSED
    drop_reviews: str | None = None  # the run ended without its reviews: OPEN and DECIDED -> CLOSED, with this error
    resolve_review: tuple[str, ReviewState, str | None] | None = None
    deliveries: Sequence[Delivery] = ()
    jobs: Sequence[NewJob] = ()
    attach_orphans: bool = False  # apply notifications that arrived before the run had a provider id


class Store(Protocol):
    """Durable state. Every method is one transaction; writes are all-or-nothing."""

    async def migrate(self) -> int: ...

    async def check(self) -> JSON: ...

    async def aclose(self) -> None: ...

    async def find_event(self, source: str, ce_source: str, ce_id: str) -> EventRecord | None: ...

    async def insert_event(self, record: EventRecord, event: CloudEvent, runs: Sequence[NewRun]) -> EventRecord: ...

    async def event_body(self, event_id: str) -> CloudEvent | None: ...

    async def get_run(self, run_id: str) -> Run | None: ...

    async def get_run_by_provider_id(self, provider: str, provider_run_id: str) -> Run | None: ...

    async def list_runs(self, flt: RunFilter) -> list[Run]: ...

    async def timeline(self, run_id: str) -> list[Transition]: ...

    async def apply_run_change(self, change: RunChange, now: datetime) -> bool: ...

    async def record_notification(self, notification: Notification, received_at: datetime) -> NotificationOutcome: ...

    async def pause_state(self, run_id: str, provider_status: str) -> str | None: ...

    async def orphan_runs(self, *, provider: str | None, limit: int) -> list[OrphanRun]: ...

    async def start_progress(self, run_id: str) -> dict[str, str]: ...

    async def save_start_progress(self, run_id: str, done: Mapping[str, str], now: datetime) -> None: ...

    async def get_review(self, review_id: str) -> Review | None: ...

    async def list_reviews(
        self, *, state: str | None, flow: str | None, limit: int, before: str | None
    ) -> list[Review]: ...

    async def decide_review(self, review: Review, decision: JSON, decided_by: str, now: datetime) -> Review | None: ...

    async def get_delivery(self, delivery_id: str) -> Delivery | None: ...

    async def list_deliveries(
        self,
        *,
        state: DeliveryState | None,
        run_id: str | None,
        sink: str | None,
        limit: int,
        before: str | None,
    ) -> list[Delivery]: ...

    async def record_delivery_attempt(
        self, delivery: Delivery, job: Job, outcome: DeliveryOutcome, now: datetime, jobs: Sequence[NewJob] = ()
    ) -> bool: ...

    async def requeue_delivery(self, delivery_id: str, now: datetime) -> Delivery | None: ...

    async def replay_deliveries(self, query: ReplayQuery, now: datetime) -> list[Delivery]:
        """Queue every matching delivery again with its own delivery id, at most ``query.limit``, in one go."""
        ...

    async def enqueue(self, job: NewJob, now: datetime) -> None: ...

    async def claim_jobs(self, owner: str, now: datetime, lease_seconds: float, limit: int) -> list[Job]: ...

    async def finish_job(self, job: Job, now: datetime) -> bool: ...

    async def retry_job(self, job: Job, due_at: datetime, error: str, now: datetime) -> bool: ...

    async def bury_job(self, job: Job, error: str, now: datetime, jobs: Sequence[NewJob] = ()) -> bool: ...

    async def postpone_job(self, job: Job, due_at: datetime, reason: str, now: datetime) -> bool:
        """Queue the job again for later without counting this claim as an attempt (fenced)."""
        ...

    async def list_jobs(
        self, *, state: JobState | None = None, kind: JobKind | None = None, limit: int = 100
    ) -> list[Job]: ...

    async def next_due(self) -> datetime | None: ...

    async def stats(self) -> dict[str, Any]: ...

    async def quiet_runs(
        self, *, statuses: Sequence[RunStatus], before: datetime, providers: Sequence[str] | None, limit: int
    ) -> list[Run]: ...

    async def pending_without_review(self, limit: int) -> list[Run]: ...

    async def finished_without_deliveries(
        self, *, statuses: Sequence[RunStatus], flows: Sequence[str] | None, limit: int
    ) -> list[Run]: ...

    async def queued_without_start(self, limit: int) -> list[Run]: ...

    async def release_jobs(self, jobs: Sequence[Job], now: datetime) -> int: ...  # leases given back, not attempts

    async def held_starts(self, limit: int) -> list[Run]: ...

    async def decided_without_resume(self, limit: int) -> list[tuple[Run, str]]: ...  # (run, review id)

    async def pending_deliveries_without_job(self, limit: int) -> list[tuple[Run, str]]: ...  # (run, delivery id)
