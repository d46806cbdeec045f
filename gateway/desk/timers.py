"""The desk's durable jobs: track a new review, fire its SLA / expiry / lease timers, send alerts.

Timers are rows in the job queue, so they survive restarts. Each firing re-reads the item and acts only
when the timer still matters (a claimed item has met its claim SLA; a decided one has met every SLA).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from gateway.config.desk import BreachAction, ReviewPolicy
from gateway.core import lifecycle
from gateway.core import review as review_rules
from gateway.core.ids import new_id
from gateway.desk.service import Desk, answerable
from gateway.desk.sla import BREACHES, CLAIM_TIMERS, WARNINGS, Timer, parse_ref
from gateway.domain import audit, errors
from gateway.domain.desk import SLA_ORDER, Item, SlaState
from gateway.domain.model import JSON, Delivery, DeliveryState, Job, JobKind, ReviewState, RunStatus
from gateway.domain.ports import Provider, RunChange
from gateway.store.queue_sql import ItemChange
from gateway.store.sqlstore import SqlStore

log = logging.getLogger("gateway.desk")
SYSTEM = "system"


class DeskJobs:
    def __init__(self, *, desk: Desk, store: SqlStore, providers: dict[str, Provider]) -> None:
        self.desk = desk
        self.store = store
        self.providers = providers
        self.clock = desk.clock

    def handlers(self) -> dict[JobKind, Callable[[Job], Awaitable[None]]]:
        return {
            JobKind.REVIEW_OPENED: self.opened,
            JobKind.REVIEW_TIMER: self.timer,
            JobKind.ALERT: self.desk.alerts.send,
        }

    async def opened(self, job: Job) -> None:
        item = await self.desk.queue.get_item(job.ref)
        if item is not None and not item.tracked:
            await self.desk.track(item, self.clock.now())
        await self.store.finish_job(job, self.clock.now())

    async def timer(self, job: Job) -> None:
        parsed = parse_ref(job.ref)
        item = await self.desk.queue.get_item(parsed[0]) if parsed else None
        now = self.clock.now()
        if parsed is None or item is None or not item.tracked:
            await self.store.finish_job(job, now)
            return
        timer = parsed[1]
        if timer == Timer.LEASE:
            await self._lease(job, item, now)
            return
        change = self._fire(timer, item, now)
        if change is None:
            await self.store.finish_job(job, now)
            return
        if not await self.desk.queue.apply(replace(change, finish_job=job), now):
            await self.store.retry_job(job, now, "conflict: item changed", now)
            return
        self.desk.wake()
        if timer in BREACHES and self._policy(item).sla.on_breach.action == "fail_run":
            await self._fail_run(item, now)

    def _fire(self, timer: Timer, item: Item, now: datetime) -> ItemChange | None:
        if not item.is_open or (timer in CLAIM_TIMERS and item.first_claimed_at is not None):
            return None
        if timer == Timer.EXPIRE:
            entry = audit.AuditEntry(actor=SYSTEM, action="expired", object=f"review:{item.id}")
            return ItemChange(
                review_id=item.id,
                expected_version=item.version,
                set={"claimed_by": None, "claimed_at": None, "claim_expires_at": None},
                review_state=ReviewState.EXPIRED,
                audit=[entry],
            )
        if timer in WARNINGS:
            return self._warn(timer, item, now)
        return self._breach(timer, item, now)

    def _warn(self, timer: Timer, item: Item, now: datetime) -> ItemChange | None:
        if SLA_ORDER[item.sla_state] >= SLA_ORDER[SlaState.WARNING]:
            return None
        entry = audit.AuditEntry(
            actor=SYSTEM, action="sla_warning", object=f"review:{item.id}", details={"timer": timer.value}
        )
        warned = replace(item, sla_state=SlaState.WARNING)
        return ItemChange(
            review_id=item.id,
            expected_version=item.version,
            set={"sla_state": SlaState.WARNING},
            audit=[entry],
            jobs=self.desk.alerts.job("review.sla_warning", warned, now, timer=timer.value),
        )

    def _breach(self, timer: Timer, item: Item, now: datetime) -> ItemChange | None:
        if item.sla_state == SlaState.BREACHED:
            return None
        action = self._policy(item).sla.on_breach
        obj = f"review:{item.id}"
        entries = [
            audit.AuditEntry(
                actor=SYSTEM, action="sla_breached", object=obj, details={"timer": timer.value, "action": action.action}
            )
        ]
        fields: dict[str, Any] = {"sla_state": SlaState.BREACHED}
        decide = None
        priority = item.priority
        if action.action == "escalate":
            priority = action.priority if action.priority is not None else item.priority
            fields.update({"priority": priority, "escalated_to": action.group})
            details = {"group": action.group, "priority": priority}
            entries.append(audit.AuditEntry(actor=SYSTEM, action="escalated", object=obj, details=details))
        elif action.action == "default_decision":
            decide = self._default_decision(item, action, entries)
        breached = replace(item, sla_state=SlaState.BREACHED, priority=priority)
        if decide is not None:
            fields.update({"claimed_by": None, "claimed_at": None, "claim_expires_at": None})
        return ItemChange(
            review_id=item.id,
            expected_version=item.version,
            set=fields,
            decide=decide,
            audit=entries,
            jobs=self.desk.alerts.job("review.sla_breached", breached, now, timer=timer.value, action=action.action),
        )

    def _default_decision(
        self, item: Item, action: BreachAction, entries: list[audit.AuditEntry]
    ) -> tuple[JSON, str] | None:
        value = action.input or {}
        problems = review_rules.validate_any(answerable(self.desk.settings, item.review), value)
        obj = f"review:{item.id}"
        if problems:
            entries.append(audit.AuditEntry(actor=SYSTEM, action="default_decision_refused", object=obj))
            return None
        details = {"input_digest": audit.digest(value), "via": "sla.default_decision"}
        entries.append(audit.AuditEntry(actor=f"{SYSTEM}:sla", action="decided", object=obj, details=details))
        return dict(value), f"{SYSTEM}:sla"

    async def _lease(self, job: Job, item: Item, now: datetime) -> None:
        """A claim's lease ran out: free the item (or wait longer when activity renewed it)."""
        if item.claimed_by is None or item.claim_expires_at is None:
            await self.store.finish_job(job, now)
            return
        if item.claim_expires_at > now:
            await self.desk.queue.reschedule(job, item.claim_expires_at, now)
            return
        entry = audit.AuditEntry(
            actor=SYSTEM, action="claim_expired", object=f"review:{item.id}", details={"operator": item.claimed_by}
        )
        change = ItemChange(
            review_id=item.id,
            expected_version=item.version,
            set={"claimed_by": None, "claimed_at": None, "claim_expires_at": None},
            audit=[entry],
            finish_job=job,
        )
        if not await self.desk.queue.apply(change, now):
            await self.store.retry_job(job, now, "conflict: item changed", now)

    async def _fail_run(self, item: Item, now: datetime) -> None:
        """SLA breach with ``fail_run``: the gateway stops waiting and ends the run as ERROR."""
        run = await self.store.get_run(item.review.run_id)
        if run is None or run.status != RunStatus.PENDING:
            return
        provider = self.providers.get(run.provider)
        if provider is not None and provider.capabilities.can_cancel and run.provider_run_id:
            try:
                await provider.cancel_run(run.provider_run_id)
            except errors.ProviderError as exc:
                log.warning("cancel after SLA breach failed", extra={"run_id": run.id, "error": exc.code})
        moved, step = lifecycle.transition(
            run, RunStatus.ERROR, cause=f"review:{item.id}", now=now, detail="sla_breached"
        )
        moved = replace(moved, error={"code": "review_sla_breached", "message": "the review was not decided in time"})
        change = RunChange(
            run=moved,
            expected_version=run.version,
            transitions=[step],
            close_reviews=True,
            deliveries=self._deliveries(moved.id, moved.flow, now),
        )
        if await self.store.apply_run_change(change, now):
            entry = audit.AuditEntry(
                actor=SYSTEM, action="run_failed", object=f"review:{item.id}", details={"run_id": run.id}
            )
            await self.desk.access.audit([entry], now)
            self.desk.wake()

    def _deliveries(self, run_id: str, flow: str, now: datetime) -> list[Delivery]:
        return [
            Delivery(
                id=new_id("dlv", now, self.desk.alerts.rng),
                run_id=run_id,
                sink=sink.name,
                state=DeliveryState.PENDING,
                created_at=now,
                updated_at=now,
            )
            for sink in self.desk.settings.sinks.values()
            if sink.wants(flow, RunStatus.ERROR)
        ]

    def _policy(self, item: Item) -> ReviewPolicy:
        return self.desk.settings.desk.policy(item.review.flow)
