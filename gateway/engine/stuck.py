"""Stuck runs: states the pipeline should never leave a run in, found by query and repaired where that is safe.

* ``pending_without_review``: PENDING with no OPEN/DECIDED review and none resumed, expired or closed since
  it paused (the review the pause opens was lost).
  Repair: open the review the pause should have opened.
* ``finished_without_deliveries``: finished in a status some configured sink wants, with no delivery at all.
  Repair: create the missing deliveries (one per wanting sink; existing ones are kept).
  A sink added later therefore also receives finished runs that no sink took before; runs that went to
  another sink are not touched.
* ``queued_without_start``: QUEUED with no start job. Repair: queue the start (same idempotency key, D3).
* ``decided_without_resume``: a DECIDED review with no resume job (the job is written with the decision and
  finished with the review's next state, so the decision would never reach the provider).
  Repair: queue the resume again (jobs are unique per kind and review: never two).
* ``delivery_without_job``: a PENDING delivery with no deliver job. Repair: queue the delivery again (same
  delivery id, so a receiver that saw an earlier attempt can dedupe).
* ``start_held``: HELD after an ambiguous start. Not repaired: an operator adopts, retries or abandons it.

Each run repair is one store transaction guarded by the run's version: a run that moved meanwhile is skipped.
A job queued again for owed work is an upsert of that job: a job that came back meanwhile is not doubled.
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
DECIDED_WITHOUT_RESUME = "decided_without_resume"
DELIVERY_WITHOUT_JOB = "delivery_without_job"
START_HELD = "start_held"
PROBLEMS = (
    PENDING_WITHOUT_REVIEW,
    FINISHED_WITHOUT_DELIVERIES,
    QUEUED_WITHOUT_START,
    DECIDED_WITHOUT_RESUME,
    DELIVERY_WITHOUT_JOB,
    START_HELD,
)
_OWED_JOB = {DECIDED_WITHOUT_RESUME: JobKind.RESUME_RUN, DELIVERY_WITHOUT_JOB: JobKind.DELIVER}


@dataclass(frozen=True, slots=True, kw_only=True)
class StuckRun:
    run: Run
    problem: str
    sinks: tuple[str, ...] = ()  # for finished_without_deliveries: the sinks that want the run
    owed: tuple[str, ...] = ()  # the reviews (decided_without_resume) or deliveries (delivery_without_job)

    def as_dict(self) -> dict[str, object]:
        return {
            "run_id": self.run.id,
            "problem": self.problem,
            "status": self.run.status.value,
            "flow": self.run.flow,
            "provider": self.run.provider,
            "sinks": list(self.sinks),
            "owed": list(self.owed),
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
        found += [StuckRun(run=r, problem=START_HELD) for r in await self.store.held_starts(limit)]
        found += _owing(DECIDED_WITHOUT_RESUME, await self.store.decided_without_resume(limit))
        found += _owing(DELIVERY_WITHOUT_JOB, await self.store.pending_deliveries_without_job(limit))
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
        if stuck.problem == START_HELD:
            return False
        if stuck.problem in _OWED_JOB:
            for ref in stuck.owed:
                await self.store.enqueue(NewJob(kind=_OWED_JOB[stuck.problem], ref=ref, due_at=now), now)
            return True
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


def _owing(problem: str, owed: list[tuple[Run, str]]) -> list[StuckRun]:
    """One entry per run, naming every review or delivery it is owed."""
    refs: dict[str, list[str]] = {}
    runs: dict[str, Run] = {}
    for run, ref in owed:
        runs.setdefault(run.id, run)
        refs.setdefault(run.id, []).append(ref)
    return [StuckRun(run=runs[run_id], problem=problem, owed=tuple(refs[run_id])) for run_id in runs]
