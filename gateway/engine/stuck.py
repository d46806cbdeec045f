"""Stuck runs: states the pipeline should never leave a run in, found by query and repaired where that is safe.

* ``pending_without_review``: PENDING with no OPEN/DECIDED review and none resumed, expired or closed since
  it paused (the review the pause opens was lost).
  Repair: open the review the pause should have opened.
* ``finished_without_deliveries``: finished in a status some configured sink wants, with no delivery at all.
  Repair: create the missing deliveries (one per wanting sink; existing ones are kept).
  A sink added later therefore also receives finished runs that no sink took before; runs that went to
  another sink are not touched.
* ``queued_without_start``: QUEUED with no start job. Repair: queue the start (same idempotency key, D3).

Every repair is one store transaction guarded by the run's version: a run that moved meanwhile is skipped.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from gateway.config.settings import Settings
from gateway.core import review as review_rules
from gateway.core.ids import new_id
from gateway.domain.model import (
    TERMINAL_RUN_STATUSES,
    Delivery,
    DeliveryState,
    JobKind,
    Review,
    ReviewState,
    Run,
)
from gateway.domain.ports import Clock, NewJob, RunChange, Store

PENDING_WITHOUT_REVIEW = "pending_without_review"
FINISHED_WITHOUT_DELIVERIES = "finished_without_deliveries"
QUEUED_WITHOUT_START = "queued_without_start"


@dataclass(frozen=True, slots=True, kw_only=True)
class StuckRun:
    run: Run
    problem: str
    sinks: tuple[str, ...] = ()  # for finished_without_deliveries: the sinks that want the run

    def as_dict(self) -> dict[str, object]:
        return {
            "run_id": self.run.id,
            "problem": self.problem,
            "status": self.run.status.value,
            "flow": self.run.flow,
            "provider": self.run.provider,
            "sinks": list(self.sinks),
        }


class StuckRuns:
    def __init__(self, *, settings: Settings, store: Store, clock: Clock, rng: random.Random) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.rng = rng

    async def find(self, limit: int = 100) -> list[StuckRun]:
        found = [
            StuckRun(run=r, problem=PENDING_WITHOUT_REVIEW) for r in await self.store.pending_without_review(limit)
        ]
        found += [StuckRun(run=r, problem=QUEUED_WITHOUT_START) for r in await self.store.queued_without_start(limit)]
        return found + await self._undelivered(limit)

    async def repair(self, limit: int = 100) -> list[StuckRun]:
        """Repair what was found; returns the runs repaired."""
        return [stuck for stuck in await self.find(limit) if await self._repair(stuck)]

    async def _undelivered(self, limit: int) -> list[StuckRun]:
        sinks = list(self.settings.sinks.values())
        statuses = sorted({s for sink in sinks for s in sink.on} & TERMINAL_RUN_STATUSES)
        flows = None if any("*" in sink.flows for sink in sinks) else sorted({f for s in sinks for f in s.flows})
        runs = await self.store.finished_without_deliveries(statuses=statuses, flows=flows, limit=limit)
        found = []
        for run in runs:
            wanting = tuple(sink.name for sink in sinks if sink.wants(run.flow, run.status))
            if wanting:
                found.append(StuckRun(run=run, problem=FINISHED_WITHOUT_DELIVERIES, sinks=wanting))
        return found

    async def _repair(self, stuck: StuckRun) -> bool:
        now = self.clock.now()
        run = stuck.run
        fix: dict[str, Any] = {}
        if stuck.problem == PENDING_WITHOUT_REVIEW:
            fix["open_review"] = self._review(run)
        elif stuck.problem == FINISHED_WITHOUT_DELIVERIES:
            fix["deliveries"] = [self._delivery(run, sink) for sink in stuck.sinks]
        else:
            fix["jobs"] = [NewJob(kind=JobKind.START_RUN, ref=run.id, due_at=now)]
        return await self.store.apply_run_change(RunChange(run=run, expected_version=run.version, **fix), now)

    def _review(self, run: Run) -> Review:
        """The review the pause should have opened (as the job handlers build it)."""
        now = self.clock.now()
        flow = self.settings.flows.get(run.flow)
        key = run.pending.key if run.pending else None
        configured = flow.inputs.get(key or "", flow.default_input) if flow else None
        return Review(
            id=new_id("rev", now, self.rng),
            run_id=run.id,
            flow=run.flow,
            state=ReviewState.OPEN,
            request=review_rules.merge_request(run.pending, configured),
            created_at=now,
            updated_at=now,
            gathered=run.output,
        )

    def _delivery(self, run: Run, sink: str) -> Delivery:
        now = self.clock.now()
        return Delivery(
            id=new_id("dlv", now, self.rng),
            run_id=run.id,
            sink=sink,
            state=DeliveryState.PENDING,
            created_at=now,
            updated_at=now,
        )
