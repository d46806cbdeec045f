"""The startup sweep: a worker that starts fetches every run that was in flight, soon.

Webhooks sent while the gateway was down are lost once the provider stops retrying (TransactionLink after about a
minute). Without the sweep such a run would wait for the reconciler's ``reconcile_after`` (15 minutes by default).
Every started, live run gets a fetch, spread out at ``[worker] startup_sweep_rate`` fetches per second so a large
backlog does not hit the providers at once. Fetch jobs coalesce per run, so several workers starting together
queue one fetch per run.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from gateway.domain.model import JobKind, RunStatus
from gateway.domain.ports import Clock, NewJob, RunFilter, Store

log = logging.getLogger("gateway.sweep")
IN_FLIGHT = (RunStatus.CREATED, RunStatus.IN_PROGRESS, RunStatus.PENDING, RunStatus.UNKNOWN)
PAGE = 500


async def startup_sweep(store: Store, clock: Clock, rate: float) -> int:
    """Queue a fetch for every started, live run; returns how many were queued (0 when ``rate`` is 0)."""
    if rate <= 0:
        return 0
    start = clock.now()
    queued = 0
    for status in IN_FLIGHT:
        before: str | None = None
        while True:
            runs = await store.list_runs(RunFilter(status=status, before=before, limit=PAGE))
            for run in runs:
                if run.provider_run_id is None:
                    continue
                due = start + timedelta(seconds=queued / rate)
                data = {"cause": "startup"}
                await store.enqueue(NewJob(kind=JobKind.FETCH_RUN, ref=run.id, due_at=due, data=data), clock.now())
                queued += 1
            if len(runs) < PAGE:
                break
            before = runs[-1].id
    if queued:
        log.info("startup sweep queued fetches", extra={"runs": queued, "seconds": round(queued / rate, 1)})
    return queued
