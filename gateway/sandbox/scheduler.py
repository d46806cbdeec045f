"""The sandbox's one background task: runs jobs when they fall due, in the order they were scheduled."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

Job = Callable[[], Awaitable[None]]


class Scheduler:
    """Due times are taken from the event loop's monotonic clock, so delays are real seconds."""

    def __init__(self) -> None:
        self._queue: list[tuple[float, int, Job]] = []
        self._order = itertools.count()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None

    def schedule(self, delay: float, job: Job) -> None:
        due = asyncio.get_running_loop().time() + delay
        heapq.heappush(self._queue, (due, next(self._order), job))
        self._idle.clear()
        self._wake.set()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="sandbox-scheduler")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def run_until_idle(self) -> None:
        """Wait until no job is due or scheduled (jobs scheduled with a delay are waited for)."""
        if self._task is None:
            raise RuntimeError("the sandbox scheduler is not started")
        await self._idle.wait()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._queue:
                self._idle.set()
                await self._sleep(None)
                continue
            wait = self._queue[0][0] - loop.time()
            if wait > 0:
                await self._sleep(wait)
                continue
            _, _, job = heapq.heappop(self._queue)
            try:
                await job()
            except Exception:
                log.exception("sandbox job failed")

    async def _sleep(self, timeout: float | None) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)
