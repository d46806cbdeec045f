"""The work loop: claim due jobs under a lease, run them with bounded concurrency, sleep until woken."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
from datetime import datetime, timedelta

from gateway.config.settings import WorkerSettings
from gateway.core.retry import BackoffPolicy, backoff_delay
from gateway.domain.model import Job
from gateway.domain.ports import Clock, Store
from gateway.engine.jobs import Handlers
from gateway.observability.logs import masked_message

log = logging.getLogger("gateway.dispatcher")
_UNEXPECTED_BACKOFF = BackoffPolicy(base=2.0, cap=300.0)


class Dispatcher:
    def __init__(
        self, *, store: Store, handlers: Handlers, settings: WorkerSettings, clock: Clock, rng: random.Random
    ) -> None:
        self.store = store
        self.handlers = handlers
        self.settings = settings
        self.clock = clock
        self.rng = rng
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{rng.getrandbits(32):08x}"
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(settings.concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self._running: dict[asyncio.Task[None], Job] = {}
        self._loop: asyncio.Task[None] | None = None

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        if self._loop is None:
            self._loop = asyncio.create_task(self._run(), name="gateway-dispatcher")

    async def stop(self) -> None:
        """Stop claiming; give running jobs ``shutdown_grace`` seconds to finish, then cancel the rest and give
        their leases back, so a restarted worker takes them at once instead of after ``lease_seconds``."""
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
            self._loop = None
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=self.settings.shutdown_grace)
        unfinished = [self._running[task] for task in self._tasks if not task.done()]
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if unfinished:
            released = await self.store.release_jobs(unfinished, self.clock.now())
            log.info("shutdown: leases released", extra={"unfinished": len(unfinished), "released": released})

    async def _run(self) -> None:
        while True:
            try:
                claimed = await self.run_once()
            except Exception:
                log.exception("dispatcher loop failed; retrying")
                claimed = 0
            if claimed == 0:
                await self._sleep()

    async def run_once(self) -> int:
        """Claim what is due now and start it; returns how many jobs were claimed."""
        free = self.settings.concurrency - len(self._tasks)
        if free < max(1, self.settings.concurrency // 4):  # claim in batches, not one job per finished job
            await asyncio.wait(self._tasks, return_when=asyncio.FIRST_COMPLETED)
            return 1
        jobs = await self.store.claim_jobs(
            self.owner, self.clock.now(), self.settings.lease_seconds, min(free, self.settings.batch_size)
        )
        for job in jobs:
            task = asyncio.create_task(self._execute(job))
            self._tasks.add(task)
            self._running[task] = job
            task.add_done_callback(self._forget)
        return len(jobs)

    def _forget(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._running.pop(task, None)

    async def drain(self) -> None:
        """Run until nothing is due and nothing is in flight (used by tests and the CLI)."""
        while True:
            claimed = await self.run_once()
            if self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)
                continue
            if claimed == 0:
                return

    async def _sleep(self) -> None:
        timeout = self.settings.poll_interval
        due = await self.store.next_due()
        if due is not None:
            timeout = max(0.0, min(timeout, (due - self.clock.now()).total_seconds()))
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=timeout)

    async def _execute(self, job: Job) -> None:
        deadline = self.settings.lease_seconds * 0.8  # finish (or give up) well inside the lease
        try:
            async with asyncio.timeout(deadline):
                await self.handlers.handle(job)
        except Exception as exc:
            log.error(
                "job failed unexpectedly; retrying later",
                exc_info=exc,
                extra={"job_id": job.id, "kind": job.kind.value, "ref": job.ref, "attempts": job.attempts},
            )
            await self._retry_later(job, f"{type(exc).__name__}: {masked_message(exc)}")
        self._wake.set()

    async def _retry_later(self, job: Job, reason: str) -> None:
        """Queue the job again after a backoff. If even that fails, its lease runs out and it is claimed again."""
        now: datetime = self.clock.now()
        due = now + timedelta(seconds=backoff_delay(job.attempts, _UNEXPECTED_BACKOFF, self.rng))
        try:
            await self.store.retry_job(job, due, f"unexpected: {reason}", now)
        except Exception as exc:
            log.error(
                "could not queue a failed job again; its lease will expire",
                exc_info=exc,
                extra={
                    "job_id": job.id,
                    "kind": job.kind.value,
                    "ref": job.ref,
                    "lease_seconds": self.settings.lease_seconds,
                },
            )
