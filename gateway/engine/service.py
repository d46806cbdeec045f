"""Request-side use cases: accept events and notifications, retry starts, replay deliveries.
(Reviews are claimed and decided through ``gateway.desk``.)

Each reads state, asks the pure core what to do, and writes the result in one store transaction.
Slow work (provider and sink calls) is never done here: it is queued as jobs for the dispatcher.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from gateway.config.settings import RouteSettings, Settings
from gateway.core import lifecycle, routing
from gateway.core.ids import encode_time, new_id
from gateway.domain import errors
from gateway.domain.model import (
    JSON,
    CloudEvent,
    Delivery,
    DeliveryState,
    JobKind,
    Run,
    RunStatus,
)
from gateway.domain.ports import (
    Clock,
    EventRecord,
    NewJob,
    NewRun,
    NotificationOutcome,
    Provider,
    ReplayQuery,
    RunChange,
    Store,
)
from gateway.engine import starts
from gateway.engine.jobs import deliveries_for

PROVIDER_RUN_ID = re.compile(r"[!-~]{1,200}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Submitted:
    record: EventRecord
    created: bool  # False when (source, id) was seen before: the first answer is returned


class Gateway:
    def __init__(
        self,
        *,
        settings: Settings,
        store: Store,
        providers: Mapping[str, Provider],
        clock: Clock,
        rng: random.Random,
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.providers = providers
        self.clock = clock
        self.rng = rng
        self.wake = wake

    # events ---------------------------------------------------------------------------------------

    async def submit_event(self, source: str, event: CloudEvent, *, traceparent: str | None = None) -> Submitted:
        """Store the event and one queued run per matching route; the same (source, id) again starts nothing.

        No read first: ``insert_event`` returns the stored first answer when (source, id) is known."""
        now = self.clock.now()
        event_id = new_id("evt", now, self.rng)
        document = routing.event_document(event)
        routes = [r for r in self.settings.routes_for(source, event.type) if routing.matches(r.when, document)]
        runs = [self._new_run(event_id, source, event, route, document, traceparent) for route in routes]
        response = {
            "event_id": event_id,
            "runs": [{"id": n.run.id, "route": n.run.route, "status": n.run.status.value} for n in runs],
        }
        record = EventRecord(
            id=event_id, source=source, ce_id=event.id, received_at=now, response=response, traceparent=traceparent
        )
        stored = await self.store.insert_event(record, event, runs)
        if stored.id == event_id and runs:
            self.wake()
        return Submitted(record=stored, created=stored.id == event_id)

    def _new_run(
        self,
        event_id: str,
        source: str,
        event: CloudEvent,
        route: RouteSettings,
        document: JSON,
        traceparent: str | None,
    ) -> NewRun:
        now = self.clock.now()
        flow = self.settings.flows[route.flow]
        if route.input is not None:
            flow_input = routing.render(route.input, document)
        else:
            flow_input = event.data if isinstance(event.data, dict) else {"data": event.data}
        run = Run(
            id=new_id("run", now, self.rng),
            event_id=event_id,
            route=route.name,
            flow=flow.name,
            provider=flow.provider,
            template=flow.template,
            status=RunStatus.QUEUED,
            idempotency_key=idempotency_key(source, event.id, route.name, now),
            created_at=now,
            updated_at=now,
            input=flow_input if isinstance(flow_input, dict) else {"value": flow_input},
            traceparent=traceparent,
        )
        return NewRun(run=run, job_data={})

    # notifications --------------------------------------------------------------------------------

    async def accept_notification(
        self, provider_name: str, body: bytes, headers: Mapping[str, str]
    ) -> NotificationOutcome:
        provider = self.providers.get(provider_name)
        if provider is None:
            raise errors.NotFound(f"no provider named {provider_name!r}")
        now = self.clock.now()
        notification = await provider.parse_notification(body, headers, now)
        if notification is None:
            return NotificationOutcome(duplicate=False, run_id=None, ignored=True)
        outcome = await self.store.record_notification(notification, now)
        if outcome.run_id is not None:
            self.wake()
        return outcome

    # runs -----------------------------------------------------------------------------------------

    async def get_run(self, run_id: str) -> Run:
        run = await self.store.get_run(run_id)
        if run is None:
            raise errors.NotFound(f"no run {run_id}")
        return run

    async def retry_start(self, run_id: str) -> Run:
        """Queue the start of a run that failed to start, or was held, again, with the same idempotency key."""
        run = await self.get_run(run_id)
        now = self.clock.now()
        try:
            moved, step = lifecycle.transition(run, RunStatus.QUEUED, cause="operator:retry", now=now)
        except errors.InvalidTransition:
            raise errors.Conflict(
                f"run {run_id} is {run.status}; only FAILED_TO_START or HELD runs can be retried"
            ) from None
        if run.status == RunStatus.HELD:
            await starts.forget_sending(self.store, run.id, now)
        change = RunChange(
            run=moved,
            expected_version=run.version,
            transitions=[step],
            jobs=[NewJob(kind=JobKind.START_RUN, ref=run.id, due_at=now)],
        )
        return await self._change(run_id, change, now)

    async def abandon_start(self, run_id: str, who: str) -> Run:
        """Give up on a held start: the run ends FAILED_TO_START (sinks that want that status are told)."""
        run = await self._held(run_id)
        now = self.clock.now()
        moved, step = starts.abandoned(run, who, now)
        deliveries = deliveries_for(self.settings, moved, now, self.rng)
        change = RunChange(run=moved, expected_version=run.version, transitions=[step], deliveries=deliveries)
        return await self._change(run_id, change, now)

    async def adopt_start(self, run_id: str, provider_run_id: str, who: str) -> Run:
        """A held run is the provider run an operator found (in GET /v1/notifications/orphans, or at the
        provider): record its id, attach the notifications kept for it, and fetch it."""
        if not PROVIDER_RUN_ID.fullmatch(provider_run_id):
            raise errors.InvalidInput("provider_run_id must be 1 to 200 visible ASCII characters")
        run = await self._held(run_id)
        if await self.store.get_run_by_provider_id(run.provider, provider_run_id) is not None:
            raise errors.Conflict(f"provider run {provider_run_id} already belongs to another run")
        now = self.clock.now()
        moved, step = starts.adopted(run, provider_run_id, who, now)
        fetch = NewJob(kind=JobKind.FETCH_RUN, ref=run.id, due_at=now, data={"cause": "adopt"})
        change = RunChange(
            run=moved, expected_version=run.version, transitions=[step], jobs=[fetch], attach_orphans=True
        )
        return await self._change(run_id, change, now)

    async def _held(self, run_id: str) -> Run:
        run = await self.get_run(run_id)
        if run.status != RunStatus.HELD:
            raise errors.Conflict(f"run {run_id} is {run.status}; only a HELD run can be adopted or abandoned")
        return run

    async def _change(self, run_id: str, change: RunChange, now: datetime) -> Run:
        if not await self.store.apply_run_change(change, now):
            raise errors.Conflict(f"run {run_id} changed; try again")
        self.wake()
        return await self.get_run(run_id)

    async def request_cancel(self, run_id: str) -> Run:
        """Queue a cancel as a durable job. Conflict for a finished run; UnsupportedOperation (409) when the
        run's provider cannot cancel."""
        run = await self.get_run(run_id)
        if run.is_terminal:
            raise errors.Conflict(f"run {run_id} is {run.status}; only live runs can be cancelled")
        if run.status == RunStatus.HELD:  # the provider run, if any, is not known: cancelling it is not possible
            raise errors.Conflict(f"run {run_id} is HELD; adopt it first, or abandon it")
        provider = self.providers.get(run.provider)
        if provider is None or not provider.capabilities.can_cancel:
            raise errors.UnsupportedOperation(f"provider {run.provider!r} has no cancel operation")
        now = self.clock.now()
        await self.store.enqueue(NewJob(kind=JobKind.CANCEL_RUN, ref=run.id, due_at=now), now)
        self.wake()
        return run

    # deliveries -----------------------------------------------------------------------------------

    async def retry_delivery(self, delivery_id: str) -> Delivery:
        delivery = await self.store.get_delivery(delivery_id)
        if delivery is None:
            raise errors.NotFound(f"no delivery {delivery_id}")
        if delivery.state == DeliveryState.PENDING:
            raise errors.Conflict(f"delivery {delivery_id} is already pending")
        requeued = await self.store.requeue_delivery(delivery_id, self.clock.now())
        assert requeued is not None
        self.wake()
        return requeued

    async def replay_deliveries(self, query: ReplayQuery) -> list[Delivery]:
        """Send finished deliveries again, each with its own delivery id (D10)."""
        if query.state == DeliveryState.PENDING:
            raise errors.InvalidInput("only DEAD or DELIVERED deliveries can be replayed")
        replayed = await self.store.replay_deliveries(query, self.clock.now())
        if replayed:
            self.wake()
        return replayed


def idempotency_key(source: str, ce_id: str, route: str, received_at: datetime) -> str:
    """The key sent to the provider on every start attempt of this (event, route) (D3). Written once, with the
    run; it starts with the time (so its unique index is appended to, not written at random pages on a big
    store) and ends with a digest of (source, event id, route)."""
    digest = hashlib.sha256(f"{source}\x1f{ce_id}\x1f{route}".encode()).hexdigest()
    return f"gw-{encode_time(received_at)}{digest[:30]}"
