"""What each kind of job does: start a run, fetch its state, send a resume, deliver output to a sink.

Handlers call one provider or sink, then record the outcome in one fenced transaction: a worker that
lost its lease cannot overwrite the work of the one that took over.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TypeVar

from opentelemetry.trace import SpanKind

from gateway.config.settings import Settings, SinkConfig
from gateway.core import lifecycle
from gateway.core import review as review_rules
from gateway.core.ids import new_id
from gateway.core.retry import BackoffPolicy, backoff_delay, next_attempt_at, schedule_delay
from gateway.desk.alerts import Alerts, run_alert_jobs
from gateway.domain import errors
from gateway.domain.model import (
    Delivery,
    DeliveryAttempt,
    DeliveryEnvelope,
    DeliveryState,
    Job,
    JobKind,
    PendingInput,
    Review,
    ReviewState,
    Run,
    RunSnapshot,
    RunStatus,
)
from gateway.domain.ports import (
    Clock,
    DeliveryOutcome,
    DeliveryReceipt,
    NewJob,
    Provider,
    PushKind,
    RunChange,
    Sink,
    Store,
)
from gateway.engine import outcomes, starts
from gateway.engine.breakers import BreakerBoard
from gateway.engine.sink_guard import SinkGuard
from gateway.observability import tracing
from gateway.observability.metrics import Metrics
from gateway.sinks.policy import DeliveryPolicy

log = logging.getLogger("gateway.jobs")
T = TypeVar("T")
OWED_RECHECKS = 5  # claims of a job whose subject is not as its creator committed it, before it is buried
_RECHECK_BACKOFF = BackoffPolicy(base=1.0, cap=30.0)
_RESULTS = {DeliveryState.DELIVERED: "delivered", DeliveryState.PENDING: "retrying", DeliveryState.DEAD: "dead"}


class Handlers:
    def __init__(
        self,
        *,
        settings: Settings,
        store: Store,
        providers: Mapping[str, Provider],
        sinks: Mapping[str, Sink],
        clock: Clock,
        rng: random.Random,
        breakers: BreakerBoard | None = None,
        metrics: Metrics | None = None,
        tracer: tracing.Tracing | None = None,
        guard: SinkGuard | None = None,
    ) -> None:
        self.breakers = breakers or BreakerBoard(settings.worker.breaker, clock)
        self.metrics = metrics or Metrics()
        self.tracing = tracer or tracing.Tracing(tracing.TracingSettings())
        self.guard = guard
        self.alerts: Alerts | None = None  # set by wiring once the desk is built
        self.settings = settings
        self.store = store
        self.providers = providers
        self.sinks = sinks
        self.clock = clock
        self.rng = rng
        self.extra: dict[JobKind, Callable[[Job], Awaitable[None]]] = {}  # handlers registered by other parts

    async def handle(self, job: Job) -> None:
        handler = {
            JobKind.START_RUN: self.start_run,
            JobKind.FETCH_RUN: self.fetch_run,
            JobKind.RESUME_RUN: self.resume_run,
            JobKind.DELIVER: self.deliver,
            JobKind.CANCEL_RUN: self.cancel_run,
            JobKind.POLL_RUN: self.fetch_run,
        }.get(job.kind) or self.extra[job.kind]
        await handler(job)

    # start ----------------------------------------------------------------------------------------

    async def start_run(self, job: Job) -> None:
        run = await self._run_owed(job, settled=lambda run: run.status != RunStatus.QUEUED)
        if run is None:
            return
        provider = self.providers[run.provider]
        if not await self._breaker_admits(job, f"provider:{run.provider}"):
            return
        hold = starts.policy(self.settings, provider, run) == starts.HOLD
        claim = starts.claim_mark(job) if hold else None
        progress = starts.StoredProgress(self.store, run.id, self.clock.now(), claim=claim)
        if await progress.sent_before():
            await self._hold(run, job, starts.UNRECORDED_SEND)
            return
        await progress.sending()
        try:
            snapshot = await self._ask(
                run,
                "create_run",
                provider.create_run(
                    run.template, run.input or {}, idempotency_key=run.idempotency_key, progress=progress
                ),
            )
        except errors.ProviderError as exc:
            await self._start_failed(run, job, exc, progress, hold=hold)
            return
        now = self.clock.now()
        started = replace(run, provider_run_id=snapshot.provider_run_id)
        await self._apply(
            started,
            job,
            lifecycle.apply(started, snapshot, cause="provider:create", now=now),
            attach_orphans=True,
        )

    async def _start_failed(
        self, run: Run, job: Job, exc: errors.ProviderError, progress: starts.StoredProgress, *, hold: bool
    ) -> None:
        """The provider may have started the run (its answer was lost): hold it or retry, as configured
        (gateway.engine.starts). Otherwise retry what may pass later, and fail what will not."""
        if exc.maybe_applied and hold:
            await self._hold(run, job, exc)
            return
        if not exc.maybe_applied:
            await progress.not_sent()
        if isinstance(exc, errors.TransientProviderError):
            await self._retry_or(job, exc, self.settings.worker.start_backoff, lambda e: self._fail_start(run, job, e))
        else:
            await self._fail_start(run, job, exc)

    async def _hold(self, run: Run, job: Job, exc: errors.ProviderError) -> None:
        now = self.clock.now()
        moved, step = starts.held(run, exc, now)
        log.warning(
            "start held: the provider may have started the run",
            extra={"run_id": run.id, "provider": run.provider, "code": exc.code, "status_code": exc.status_code},
        )
        alert = run_alert_jobs(self.settings.desk.alerts, "run.start_held", moved, now, self.rng)
        change = RunChange(run=moved, expected_version=run.version, finish_job=job, transitions=[step], jobs=alert)
        await self._commit(change, job)

    async def _fail_start(self, run: Run, job: Job, exc: errors.ProviderError) -> None:
        now = self.clock.now()
        moved, step = lifecycle.transition(
            run,
            RunStatus.FAILED_TO_START,
            cause="provider:create",
            now=now,
            detail=f"{exc.code} status={exc.status_code}",
        )
        moved = replace(moved, error={"code": exc.code, "message": exc.message, "status_code": exc.status_code})
        change = RunChange(
            run=moved,
            expected_version=run.version,
            finish_job=job,
            transitions=[step],
            deliveries=self._deliveries(moved, now),
        )
        await self._commit(change, job)

    # fetch ----------------------------------------------------------------------------------------

    async def fetch_run(self, job: Job) -> None:
        run = await self._run_owed(
            job,
            settled=lambda run: (
                run.provider_run_id is None or run.is_terminal or lifecycle.news_changes_nothing(run, job.data)
            ),
        )
        if run is None:
            return
        assert run.provider_run_id is not None  # a run with no provider run is settled: nothing to fetch
        if not await self._breaker_admits(job, f"provider:{run.provider}"):
            return
        try:
            snapshot = await self._look(run, run.provider_run_id)
        except errors.TransientProviderError as exc:
            await self._retry_or(job, exc, self.settings.worker.fetch_backoff, lambda e: self._bury(job, e))
            return
        except errors.ProviderError as exc:
            await (self._missing(run, job) if outcomes.is_missing(exc) else self._bury(job, exc))
            return
        now = self.clock.now()
        await self._apply(
            run,
            job,
            lifecycle.apply(run, snapshot, cause=f"provider:{job.data.get('cause', 'fetch')}", now=now),
        )

    async def _missing(self, run: Run, job: Job) -> None:
        """The provider answered 404 for the run: the same job checks again later, and after
        ``missing_run_confirmations`` 404s the run ends as ERROR, its reviews closed, an alert sent."""
        seen = outcomes.missing_count(job) + 1
        now = self.clock.now()
        worker = self.settings.worker
        if seen < worker.missing_run_confirmations:
            due = now + timedelta(seconds=worker.missing_run_interval)
            again = NewJob(kind=job.kind, ref=job.ref, due_at=due, data={**job.data, outcomes.MISSING_KEY: seen})
            await self._commit(RunChange(run=None, finish_job=job, jobs=[again]), job)
            return
        moved, step = outcomes.ended_missing(run, now, seen)
        log.warning(
            "provider run missing: run ended",
            extra={"run_id": run.id, "provider": run.provider, "provider_run_id": run.provider_run_id, "seen": seen},
        )
        change = RunChange(
            run=moved,
            expected_version=run.version,
            finish_job=job,
            transitions=[step],
            drop_reviews=f"{outcomes.MISSING_RUN}: the provider no longer knows the run",
            deliveries=self._deliveries(moved, now),
            jobs=run_alert_jobs(self.settings.desk.alerts, "run.provider_run_missing", moved, now, self.rng),
        )
        await self._commit(change, job)

    # resume ---------------------------------------------------------------------------------------

    async def resume_run(self, job: Job) -> None:
        review = await self.store.get_review(job.ref)
        run = await self.store.get_run(review.run_id) if review else None
        if review is not None and review.state not in (ReviewState.DECIDED, ReviewState.OPEN):
            await self.store.finish_job(job, self.clock.now())  # resumed, closed or expired: nothing is owed
            return
        if review is None or run is None or review.state != ReviewState.DECIDED or run.provider_run_id is None:
            # the job is written with the decision: an open review or a missing row means state not yet seen
            await self._owed(job, _missing_reason(review, run))
            return
        provider = self.providers[run.provider]
        if not await self._breaker_admits(job, f"provider:{run.provider}"):
            return
        try:
            snapshot = await self._ask(
                run, "resume_run", provider.resume_run(run.provider_run_id, review.request, review.decision or {})
            )
        except errors.ProviderError as exc:
            await self._resume_failed(review, run, job, exc)
            return
        await self._resumed(review, run, job, snapshot)

    async def _resumed(self, review: Review, run: Run, job: Job, snapshot: RunSnapshot | None) -> None:
        now = self.clock.now()
        update = (
            lifecycle.apply(run, snapshot, cause=f"review:{review.id}", now=now, after_resume=True)
            if snapshot
            else None
        )
        change = self._consequences(update, run, now) if update else RunChange(run=None)
        change = replace(change, finish_job=job, resolve_review=(review.id, ReviewState.RESUMED, None))
        change = replace(change, jobs=[*change.jobs, *self._polls(update.run if update else run, now)])
        await self._commit(change, job)

    async def _resume_failed(self, review: Review, run: Run, job: Job, exc: errors.ProviderError) -> None:
        """The resume failed, but it may have been applied (or an earlier attempt was): fetch the run at once
        and act on what the provider says, instead of resending blindly or reopening the review."""
        if not outcomes.worth_a_look(exc):
            await self._resend_or_reopen(review, job, exc)
            return
        assert run.provider_run_id is not None
        try:
            seen = await self._look(run, run.provider_run_id)
        except errors.ProviderError as looked:
            if outcomes.is_missing(looked):
                await self._missing(run, job)
            else:  # cannot tell now: the next attempt resends and looks again
                await self._resend_later(review, job, exc)
            return
        fate = lifecycle.pause_fate(run, seen)
        log.info("resume outcome looked up", extra={"review_id": review.id, "fate": fate.value, "code": exc.code})
        if fate is lifecycle.PauseFate.LEFT:
            await self._resumed(review, run, job, seen)
        elif fate is lifecycle.PauseFate.STILL:
            await self._resend_or_reopen(review, job, exc)
        else:
            await self._resend_later(review, job, exc)

    async def _resend_or_reopen(self, review: Review, job: Job, exc: errors.ProviderError) -> None:
        """The resume was not applied: send it again later if that may help, else the operator decides anew."""
        if isinstance(exc, errors.TransientProviderError):
            await self._resend_later(review, job, exc)
        else:
            await self._reopen(review, job, exc)

    async def _resend_later(self, review: Review, job: Job, exc: errors.ProviderError) -> None:
        """Send the resume again after the backoff; once the attempts are used up the operator decides anew."""
        await self._retry_or(job, exc, self.settings.worker.resume_backoff, lambda e: self._reopen(review, job, e))

    async def _reopen(self, review: Review, job: Job, exc: errors.ProviderError) -> None:
        """The provider refused the resume: the review opens again so an operator can decide anew."""
        change = RunChange(
            run=None,
            finish_job=job,
            resolve_review=(review.id, ReviewState.OPEN, f"{exc.code}: resume refused ({exc.status_code})"),
        )
        await self._commit(change, job)

    # cancel ---------------------------------------------------------------------------------------

    async def cancel_run(self, job: Job) -> None:
        """Ask the provider to cancel; its 2xx is the confirmation and the run moves to CANCELLED.
        A run not yet started is cancelled locally (its start job then finds it no longer QUEUED)."""
        run = await self._run_owed(job, settled=lambda run: run.is_terminal)
        if run is None:
            return
        if run.provider_run_id is not None:
            try:
                await self._ask(run, "cancel_run", self.providers[run.provider].cancel_run(run.provider_run_id))
            except errors.TransientProviderError as exc:
                await self._retry_or(job, exc, self.settings.worker.resume_backoff, lambda e: self._bury(job, e))
                return
            except errors.ProviderError as exc:
                await self._cancel_refused(run, job, exc)
                return
        gone = RunSnapshot(
            provider_run_id=run.provider_run_id or "",
            status=RunStatus.CANCELLED,
            provider_status=run.provider_status or "",
        )
        update = lifecycle.apply(run, gone, cause="operator:cancel", now=self.clock.now())
        # a run never started keeps no provider id (an empty one would collide in the unique index)
        await self._apply(run, job, replace(update, run=replace(update.run, provider_run_id=run.provider_run_id)))

    async def _cancel_refused(self, run: Run, job: Job, exc: errors.ProviderError) -> None:
        """The provider refused (the run may have finished meanwhile): fetch the run to learn where it is."""
        log.warning("cancel refused", extra={"run_id": run.id, "code": exc.code, "status_code": exc.status_code})
        fetch = NewJob(kind=JobKind.FETCH_RUN, ref=run.id, due_at=self.clock.now(), data={"cause": "cancel-refused"})
        await self._commit(RunChange(run=None, finish_job=job, jobs=[fetch]), job)

    # deliver --------------------------------------------------------------------------------------

    async def deliver(self, job: Job) -> None:
        delivery = await self.store.get_delivery(job.ref)
        run = await self.store.get_run(delivery.run_id) if delivery else None
        if delivery is None or run is None:
            await self._owed(job, "delivery not found" if delivery is None else "run not found")
            return
        if delivery.state != DeliveryState.PENDING:
            await self.store.finish_job(job, self.clock.now())  # delivered or dead: nothing is owed
            return
        sink, config = self.sinks.get(delivery.sink), self.settings.sinks.get(delivery.sink)
        if sink is None or config is None:
            await self._record(
                delivery, job, DeliveryOutcome(state=DeliveryState.DEAD, error="sink is no longer configured")
            )
            return
        disabled = await self.guard.disabled(delivery.sink) if self.guard else None
        if disabled is not None:
            reason = f"sink disabled: {disabled.disabled_reason or 'by an operator'}"
            await self._record(delivery, job, DeliveryOutcome(state=DeliveryState.DEAD, error=reason))
            return
        if not await self._breaker_admits(job, f"sink:{delivery.sink}") or not await self._throttle_admits(
            job, delivery.sink, config.policy
        ):
            return
        attempt = delivery.attempts + 1
        started = time.perf_counter()
        try:
            receipt = await self._through(
                f"sink:{delivery.sink}",
                _bounded(sink.deliver(DeliveryEnvelope(delivery_id=delivery.id, run=run, attempt=attempt)), config),
                parent=run.traceparent,
                operation="deliver",
            )
        except errors.SinkError as exc:
            await self._delivery_failed(delivery, job, exc, self._attempt(delivery, attempt, started, exc), config)
            return
        tried = self._attempt(delivery, attempt, started, receipt)
        delivered = DeliveryOutcome(state=DeliveryState.DELIVERED, status_code=receipt.status_code, attempt=tried)
        await self._record(delivery, job, delivered)

    async def _delivery_failed(
        self, delivery: Delivery, job: Job, exc: errors.SinkError, tried: DeliveryAttempt, config: SinkConfig
    ) -> None:
        now = self.clock.now()
        next_at = None
        if not isinstance(exc, errors.PermanentSinkError):
            schedule = config.policy.schedule(self.settings.worker.delivery_schedule)
            delay = schedule_delay(tried.attempt, schedule, self.rng, max_attempts=config.policy.max_attempts)
            next_at = next_attempt_at(now, delay, exc.retry_after, schedule.retry_after_cap)
        state = DeliveryState.PENDING if next_at else DeliveryState.DEAD
        outcome = DeliveryOutcome(
            state=state, next_at=next_at, error=exc.message, status_code=exc.status_code, attempt=tried
        )
        await self._record(delivery, job, outcome)
        reason = await self.guard.after_failure(delivery.sink, exc, config.policy) if self.guard else None
        if reason is not None and self.guard is not None:
            alert = self.alerts.sink_disabled(delivery.sink, reason, now) if self.alerts else []
            if await self.guard.disable(delivery.sink, reason, alert):  # the alert rides in the same transaction
                log.warning("sink disabled", extra={"sink": delivery.sink, "reason": reason})

    def _attempt(
        self, delivery: Delivery, attempt: int, started: float, outcome: DeliveryReceipt | errors.SinkError
    ) -> DeliveryAttempt:
        return DeliveryAttempt(
            delivery_id=delivery.id,
            attempt=attempt,
            at=self.clock.now(),
            duration_ms=(time.perf_counter() - started) * 1000,
            status_code=outcome.status_code,
            error=outcome.message if isinstance(outcome, errors.SinkError) else None,
            response_bytes=outcome.response_bytes,
        )

    async def _record(self, delivery: Delivery, job: Job, outcome: DeliveryOutcome) -> None:
        now = self.clock.now()
        alerts: Sequence[NewJob] = ()
        tried = outcome.attempt
        if outcome.state == DeliveryState.DEAD and tried is not None and self.alerts is not None:
            alerts = self.alerts.delivery_dead(
                delivery, status_code=outcome.status_code, attempts=tried.attempt, now=now
            )
        ok = await self.store.record_delivery_attempt(delivery, job, outcome, now, alerts)
        if not ok:
            log.warning("lease lost", extra={"job_id": job.id, "delivery_id": delivery.id})
            return
        self.metrics.delivery(delivery.sink, _RESULTS[outcome.state])
        if outcome.state == DeliveryState.DEAD:
            log.warning("delivery dead", extra={"delivery_id": delivery.id, "sink": delivery.sink})

    async def _throttle_admits(self, job: Job, sink: str, policy: DeliveryPolicy) -> bool:
        """False when the sink's ``per_second`` is used up: the job waits for a token without spending an attempt."""
        wait = self.guard.throttle_wait(sink, policy) if self.guard else None
        if wait is None:
            return True
        now = self.clock.now()
        await self.store.postpone_job(job, now + timedelta(seconds=wait), f"throttled: sink:{sink}", now)
        return False

    async def _alert(self, build: Callable[[Alerts], list[NewJob]]) -> None:
        """Queue an alert that has no transaction to ride in: a breaker's state lives in the worker's memory (see
        gateway.engine.breakers), so its change cannot roll back and is announced in a transaction of its own."""
        if self.alerts is None:
            return
        now = self.clock.now()
        for alert in build(self.alerts):
            await self.store.enqueue(alert, now)

    # circuit breakers (S7) ------------------------------------------------------------------------

    async def _breaker_admits(self, job: Job, key: str) -> bool:
        """False when the target's breaker is open: the job is postponed without spending an attempt."""
        wait = self.breakers.admit(key)
        if wait is None:
            return True
        now = self.clock.now()
        due = now + timedelta(seconds=max(wait, 0.1) * self.rng.uniform(1.0, 1.2))
        await self.store.postpone_job(job, due, f"circuit open: {key}", now)
        return False

    async def _through(self, key: str, call: Awaitable[T], *, parent: str | None, operation: str) -> T:
        """Await one provider or sink call inside the run's trace; tell the breaker and the metrics how it went."""
        target, _, name = key.partition(":")
        started = time.perf_counter()
        with self.tracing.span(
            f"{target} {operation}", parent, kind=SpanKind.CLIENT, attributes={f"gateway.{target}": name}
        ) as span:
            try:
                result = await call
            except BaseException as exc:
                refused = isinstance(exc, errors.PermanentSinkError) or (
                    isinstance(exc, errors.ProviderError) and not isinstance(exc, errors.TransientProviderError)
                )
                throttled = getattr(exc, "status_code", None) == 429  # up, asking us to slow down
                self._observe(target, name, operation, "refused" if refused else "transient", started)
                tracing.mark_failed(span, type(exc).__name__)
                # a 4xx refusal means the target is up
                await self._breaker_record(key, failed=not (refused or throttled))
                raise
        self._observe(target, name, operation, "ok", started)
        await self._breaker_record(key, failed=False)
        return result

    async def _ask(self, run: Run, operation: str, call: Awaitable[T]) -> T:
        """One call to the run's provider, inside the run's trace; its outcome told to the breaker and metrics."""
        return await self._through(f"provider:{run.provider}", call, parent=run.traceparent, operation=operation)

    def _observe(self, target: str, name: str, operation: str, outcome: str, started: float) -> None:
        seconds = time.perf_counter() - started
        if target == "sink":
            self.metrics.sink_call(name, outcome, seconds)
        else:
            self.metrics.provider_call(name, operation, outcome, seconds)

    async def _breaker_record(self, key: str, *, failed: bool) -> None:
        changed = self.breakers.record(key, failed=failed)
        if changed is not None:
            await self._alert(lambda alerts: alerts.breaker_changed(key, changed.value, self.clock.now()))

    # shared ---------------------------------------------------------------------------------------

    async def _run_owed(self, job: Job, *, settled: Callable[[Run], bool]) -> Run | None:
        """The job's run while work on it is owed. None when the job has been dealt with: finished when the run
        is ``settled`` (nothing left to do), or left to come back when the run is not (yet) visible."""
        run = await self.store.get_run(job.ref)
        if run is None:
            await self._owed(job, "run not found")
            return None
        if settled(run):
            await self.store.finish_job(job, self.clock.now())
            return None
        return run

    async def _look(self, run: Run, provider_run_id: str) -> RunSnapshot:
        """Get the run from its provider, its pause point named from the store where the provider does not."""
        snapshot = await self._ask(run, "get_run", self.providers[run.provider].get_run(provider_run_id))
        return await self._named(run, snapshot)

    async def _named(self, run: Run, snapshot: RunSnapshot) -> RunSnapshot:
        """Name an unnamed pause from what the store kept: the notifications seen with that status.
        A hint carried by the fetch job could be overwritten by a later, stale notification; the store cannot."""
        if not unnamed_pause(snapshot):
            return snapshot
        return named(snapshot, await self.store.pause_state(run.id, snapshot.provider_status))

    async def _apply(self, run: Run, job: Job, update: lifecycle.RunUpdate, *, attach_orphans: bool = False) -> None:
        change = replace(
            self._consequences(update, run, self.clock.now()), finish_job=job, attach_orphans=attach_orphans
        )
        change = replace(change, jobs=[*change.jobs, *self._polls(update.run, self.clock.now())])
        await self._commit(change, job)

    def _polls(self, run: Run, now: datetime) -> list[NewJob]:
        """A pushing provider with a ``poll_interval`` (seconds) has each live run fetched again after that long
        without news, until the run ends: its pushes can be lost (TransactionLink stops retrying after about a
        minute). Providers that never push are polled by the reconciler instead."""
        provider = self.providers.get(run.provider)
        interval = getattr(provider, "poll_interval", None)
        if not interval or run.is_terminal or provider is None or provider.capabilities.push == PushKind.POLL:
            return []
        due = now + timedelta(seconds=interval)
        return [NewJob(kind=JobKind.POLL_RUN, ref=run.id, due_at=due, data={"cause": "poll"})]

    def _consequences(self, update: lifecycle.RunUpdate, before: Run, now: datetime) -> RunChange:
        """The writes that follow a run update: open or close reviews, queue deliveries."""
        moved = update.run
        open_review = None
        if update.entered_pause:
            open_review = Review(
                id=new_id("rev", now, self.rng),
                run_id=moved.id,
                flow=moved.flow,
                state=ReviewState.OPEN,
                request=self._request(moved),
                created_at=now,
                updated_at=now,
                gathered=moved.output,
            )
        return RunChange(
            run=moved,
            expected_version=before.version,
            transitions=[update.transition] if update.transition else [],
            open_review=open_review,
            refine_review=self._request(moved) if update.refined_pause else None,
            close_reviews=update.left_pause,
            deliveries=self._deliveries(moved, now) if update.finished else [],
            jobs=[NewJob(kind=JobKind.REVIEW_OPENED, ref=open_review.id, due_at=now)] if open_review else [],
        )

    def _request(self, run: Run) -> PendingInput:
        """What the pause asks for: the provider's description, completed from the flow's config."""
        flow = self.settings.flows.get(run.flow)
        configured = None
        if flow is not None:
            key = run.pending.key if run.pending else None
            configured = flow.inputs.get(key or "", flow.default_input)
            if configured is None and key is None and len(flow.inputs) == 1:
                configured = next(iter(flow.inputs.values()))
        return review_rules.merge_request(run.pending, configured)

    def _deliveries(self, run: Run, now: datetime) -> list[Delivery]:
        return deliveries_for(self.settings, run, now, self.rng)

    async def _commit(self, change: RunChange, job: Job) -> None:
        now = self.clock.now()
        if await self.store.apply_run_change(change, now):
            moved = change.run
            if (
                moved is not None
                and moved.is_terminal
                and any(step.to_status == moved.status for step in change.transitions)
            ):
                self.metrics.run_finished(moved.flow, moved.status.value)
            return
        # The run moved underneath us (or our lease is gone): try again shortly with fresh state.
        await self.store.retry_job(job, now, "conflict: run changed concurrently", now)

    async def _retry_or(
        self,
        job: Job,
        exc: errors.ProviderError,
        policy: BackoffPolicy,
        give_up: Callable[[errors.ProviderError], Awaitable[None]],
    ) -> None:
        if exc.status_code == 429:
            await self._defer(job, exc, policy)
            return
        if job.attempts >= policy.max_attempts:
            await give_up(exc)
            return
        now = self.clock.now()
        due = next_attempt_at(
            now, backoff_delay(job.attempts, policy, self.rng), exc.retry_after, policy.retry_after_cap
        )
        assert due is not None
        await self.store.retry_job(job, due, f"{exc.code} status={exc.status_code}", now)

    async def _defer(self, job: Job, exc: errors.ProviderError, policy: BackoffPolicy) -> None:
        """Rate limited: wait what the provider asked (else the backoff cap); the attempt does not count."""
        now = self.clock.now()
        wait = exc.retry_after if exc.retry_after is not None else policy.cap
        due = now + timedelta(seconds=min(wait, policy.retry_after_cap))
        await self.store.postpone_job(job, due, f"{exc.code} status=429 (rate limited)", now)

    async def _bury(self, job: Job, exc: errors.ProviderError) -> None:
        await self._bury_with(job, f"{exc.code} status={exc.status_code}")

    async def _bury_with(self, job: Job, error: str) -> None:
        now = self.clock.now()
        alert = self.alerts.job_buried(job, error, now) if self.alerts else []
        await self.store.bury_job(job, error, now, alert)  # the alert is queued with the burial, or not at all

    async def _owed(self, job: Job, reason: str) -> None:
        """The job's subject is missing, or not in the state committed with the job: its work is still owed, so
        the job is never just finished. It looks again after a backoff; after ``OWED_RECHECKS`` claims it is
        buried, which lists it with the dead jobs and sends the ``job.buried`` alert."""
        now = self.clock.now()
        error = f"not as expected: {reason}"
        fields = {"job_id": job.id, "kind": job.kind.value, "ref": job.ref, "reason": reason, "attempts": job.attempts}
        if job.attempts < OWED_RECHECKS:
            log.warning("job subject not as expected; looking again later", extra=fields)
            due = now + timedelta(seconds=backoff_delay(job.attempts, _RECHECK_BACKOFF, self.rng))
            await self.store.retry_job(job, due, error, now)
            return
        log.error("job subject not as expected; job buried", extra=fields)
        await self._bury_with(job, error)


def deliveries_for(settings: Settings, run: Run, now: datetime, rng: random.Random) -> list[Delivery]:
    """One delivery per configured sink that wants the run in its status."""
    return [
        Delivery(
            id=new_id("dlv", now, rng),
            run_id=run.id,
            sink=sink.name,
            state=DeliveryState.PENDING,
            created_at=now,
            updated_at=now,
        )
        for sink in settings.sinks.values()
        if sink.wants(run.flow, run.status)
    ]


def _missing_reason(review: Review | None, run: Run | None) -> str:
    if review is None:
        return "review not found"
    if run is None:
        return "run not found"
    if review.state != ReviewState.DECIDED:
        return f"review {review.state} at its resume"
    return "run has no provider run id"


def unnamed_pause(snapshot: RunSnapshot) -> bool:
    """A PENDING snapshot that does not say where the run waits (Sohar's Get Run never does)."""
    return snapshot.status == RunStatus.PENDING and (snapshot.pending is None or snapshot.pending.key is None)


def named(snapshot: RunSnapshot, state: str | None) -> RunSnapshot:
    """The snapshot with its pause point named ``state`` (the latest one stored for its status), when it
    does not name one itself."""
    if state is None or not unnamed_pause(snapshot):
        return snapshot
    pending = replace(snapshot.pending, key=state) if snapshot.pending else PendingInput(key=state)
    return replace(snapshot, pending=pending)


async def _bounded(call: Awaitable[T], config: SinkConfig) -> T:
    """A sink call under the sink's ``timeout``, whatever its kind (a timeout is a transient failure)."""
    if config.policy.timeout is None:
        return await call
    try:
        async with asyncio.timeout(config.policy.timeout):
            return await call
    except TimeoutError:
        raise errors.TransientSinkError(f"sink {config.name}: timed out after {config.policy.timeout:g} s") from None
