"""The reconciler: a safety net for lost status news (D11), the poller of providers without push, and the
repairer of stuck runs.

Each pass queues a FETCH_RUN for
* any started, live run with no news for ``[worker] reconcile_after`` seconds (a lost webhook, a dropped stream);
* runs of a provider whose push kind is ``poll`` that are CREATED / IN_PROGRESS / UNKNOWN with no news for that
  provider's ``poll_interval`` (paused runs of such providers wait for a person: they fall under the first rule).
A run whose fetch is already queued or running is left alone, so a rate-limited fetch keeps its later due time.
Several gateway processes may run passes at once: fetch jobs coalesce per run.
Before its first pass it runs the startup sweep (``gateway.engine.sweep``): every run in flight is fetched soon.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from gateway.config.settings import WorkerSettings
from gateway.domain.model import JobKind, Run, RunStatus
from gateway.domain.ports import Clock, NewJob, Provider, PushKind, Store
from gateway.engine.stuck import StuckRuns
from gateway.engine.sweep import startup_sweep

log = logging.getLogger("gateway.reconciler")

LIVE = (RunStatus.CREATED, RunStatus.IN_PROGRESS, RunStatus.PENDING, RunStatus.UNKNOWN)
POLLED = (RunStatus.CREATED, RunStatus.IN_PROGRESS, RunStatus.UNKNOWN)
DEFAULT_POLL_INTERVAL = 5.0
BATCH = 200


@dataclass(frozen=True, slots=True, kw_only=True)
class Pass:
    quiet: int  # fetches queued because a run had no news for reconcile_after
    polled: int  # fetches queued for runs of poll-only providers
    repaired: int  # stuck runs repaired


def poll_interval(provider: Provider) -> float | None:
    """How often to poll this provider's live runs; None for providers that push."""
    if provider.capabilities.push != PushKind.POLL:
        return None
    value = getattr(provider, "poll_interval", DEFAULT_POLL_INTERVAL)
    return float(value) if isinstance(value, int | float) else DEFAULT_POLL_INTERVAL


@dataclass(eq=False, kw_only=True)
class Reconciler:
    settings: WorkerSettings
    store: Store
    providers: Mapping[str, Provider]
    stuck: StuckRuns
    clock: Clock
    wake: Callable[[], None] = lambda: None
    _task: asyncio.Task[None] | None = field(default=None, init=False)

    @property
    def every(self) -> float:
        """Seconds between passes: reconcile_every, or less when a polled provider asks for it."""
        intervals = [i for p in self.providers.values() if (i := poll_interval(p)) is not None]
        return min([self.settings.reconcile_every, *intervals])

    async def run_once(self) -> Pass:
        now = self.clock.now()
        quiet = await self.store.quiet_runs(
            statuses=LIVE, before=now - timedelta(seconds=self.settings.reconcile_after), providers=None, limit=BATCH
        )
        await self._fetch(quiet, "reconcile")
        polled = 0
        for name, provider in self.providers.items():
            interval = poll_interval(provider)
            if interval is None:
                continue
            due = await self.store.quiet_runs(
                statuses=POLLED, before=now - timedelta(seconds=interval), providers=[name], limit=BATCH
            )
            polled += await self._fetch(due, "poll")
        repaired = len(await self.stuck.repair()) if self.settings.repair_stuck else 0
        if quiet or polled or repaired:
            self.wake()
        return Pass(quiet=len(quiet), polled=polled, repaired=repaired)

    async def _fetch(self, runs: list[Run], cause: str) -> int:
        now = self.clock.now()
        for run in runs:
            await self.store.enqueue(NewJob(kind=JobKind.FETCH_RUN, ref=run.id, due_at=now, data={"cause": cause}), now)
        return len(runs)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="gateway-reconciler")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self) -> None:
        try:
            await startup_sweep(self.store, self.clock, self.settings.startup_sweep_rate)
            self.wake()
        except Exception:
            log.exception("startup sweep failed; the reconciler still covers quiet runs")
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception("reconciler pass failed; trying again next time")
            await asyncio.sleep(self.every)
