"""The stream follower: for providers that push over a stream instead of webhooks (inference.sh SSE).

Every ``scan_interval`` seconds (or when woken) it looks for live runs of each streaming provider and follows
each one's stream in its own task, up to ``max_runs`` per provider. A message whose status differs from the
last one seen queues a FETCH_RUN job, so every change goes through the normal fetch -> lifecycle -> store path
(the stream is a fast trigger, the provider's GET is the truth). A stream that drops is reopened after a
jittered, doubling delay; after ``reconnects`` drops in a row without progress, or when the stream is refused
(4xx), the run falls back to polling: one fetch now, then the provider's ``poll_interval`` timer.

Each stream connection is a client span in the run's stored trace (its ``traceparent``), like the worker's
provider calls, so the stream request carries the trace onward.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Mapping
from typing import Any

from opentelemetry.trace import SpanKind

from gateway.core.retry import BackoffPolicy, backoff_delay
from gateway.domain import errors
from gateway.domain.model import TERMINAL_RUN_STATUSES, JobKind, Run, RunStatus
from gateway.domain.ports import Clock, NewJob, PushKind, RunFilter, Store
from gateway.domain.streaming import StreamSource
from gateway.observability import tracing

log = logging.getLogger("gateway.follower")
LIVE_STATUSES = (RunStatus.CREATED, RunStatus.IN_PROGRESS, RunStatus.UNKNOWN, RunStatus.PENDING)


def streaming_sources(providers: Mapping[str, Any]) -> dict[str, StreamSource]:
    """The providers that push over a stream and can be followed."""
    return {
        name: provider
        for name, provider in providers.items()
        if provider.capabilities.push is PushKind.STREAM
        and hasattr(provider, "stream_run")
        and hasattr(provider, "stream_policy")
    }


class StreamFollower:
    def __init__(
        self,
        *,
        store: Store,
        providers: Mapping[str, Any],
        clock: Clock,
        rng: random.Random,
        wake_dispatcher: Callable[[], None] = lambda: None,
        tracer: tracing.Tracing | None = None,
    ) -> None:
        self.store = store
        self.tracing = tracer or tracing.Tracing(tracing.TracingSettings())
        self.sources = streaming_sources(providers)
        self.clock = clock
        self.rng = rng
        self.wake_dispatcher = wake_dispatcher
        self._tasks: dict[str, asyncio.Task[None]] = {}  # run id -> its follower
        self._polled: set[str] = set()  # runs that fell back to polling
        self._wake = asyncio.Event()
        self._loop: asyncio.Task[None] | None = None

    @property
    def following(self) -> set[str]:
        return set(self._tasks)

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        if self.sources and self._loop is None:
            self._loop = asyncio.create_task(self._run(), name="gateway-stream-follower")

    async def stop(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
            self._loop = None
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def idle(self) -> None:
        """Wait until every followed stream has ended (used by tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)

    async def scan(self) -> int:
        """Start following live runs that are not followed yet; returns how many were started."""
        started = 0
        live_ids: set[str] = set()
        for name, source in self.sources.items():
            live = await self._live_runs(name, source.stream_policy.max_runs)
            live_ids.update(run.id for run in live)
            busy = sum(1 for task in self._tasks.values() if task.get_name().startswith(f"{name}:"))
            for run in live:
                if busy >= source.stream_policy.max_runs:
                    break
                if run.id in self._tasks or run.id in self._polled:
                    continue
                self._spawn(name, source, run)
                busy += 1
                started += 1
        self._polled &= live_ids
        return started

    async def _live_runs(self, provider: str, limit: int) -> list[Run]:
        runs: list[Run] = []
        for status in LIVE_STATUSES:
            found = await self.store.list_runs(RunFilter(provider=provider, status=status, limit=limit))
            runs.extend(run for run in found if run.provider_run_id)
        return runs

    def _spawn(self, name: str, source: StreamSource, run: Run) -> None:
        task = asyncio.create_task(self._follow(source, run), name=f"{name}:{run.id}")
        self._tasks[run.id] = task
        task.add_done_callback(lambda _: self._tasks.pop(run.id, None))

    async def _run(self) -> None:
        interval = min(source.stream_policy.scan_interval for source in self.sources.values())
        while True:
            try:
                await self.scan()
            except Exception:
                log.exception("stream scan failed; retrying")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=interval)

    async def _follow(self, source: StreamSource, run: Run) -> None:
        policy = source.stream_policy
        backoff = BackoffPolicy(base=policy.reconnect_delay, cap=policy.max_delay)
        last, drops = run.status, 0
        while True:
            try:
                seen = await self._read(source, run, last)
            except errors.TransientProviderError as exc:
                log.info("stream dropped", extra={"run_id": run.id, "error": exc.message})
                seen = None
            except errors.ProviderError as exc:
                log.warning("stream refused; polling instead", extra={"run_id": run.id, "error": exc.message})
                await self._fall_back(run)
                return
            if seen in TERMINAL_RUN_STATUSES:
                return
            drops = 0 if seen is not None and seen != last else drops + 1
            last = seen or last
            if drops > policy.reconnects or await self._finished(run.id):
                await self._fall_back(run)
                return
            await asyncio.sleep(backoff_delay(max(drops - 1, 0), backoff, self.rng))

    async def _read(self, source: StreamSource, run: Run, last: RunStatus) -> RunStatus | None:
        """Read one connection of the stream; the last status it carried (None when it carried none)."""
        assert run.provider_run_id is not None
        seen: RunStatus | None = None
        attributes = {"gateway.provider": run.provider}
        with self.tracing.span("provider stream_run", run.traceparent, kind=SpanKind.CLIENT, attributes=attributes):
            stream = source.stream_run(run.provider_run_id)
            try:
                async for snapshot in stream:
                    seen = snapshot.status
                    if seen != last:
                        last = seen
                        await self._fetch(run.id)
                    if seen in TERMINAL_RUN_STATUSES:
                        break
            finally:
                close = getattr(stream, "aclose", None)
                if close is not None:
                    await close()
        return seen

    async def _finished(self, run_id: str) -> bool:
        current = await self.store.get_run(run_id)
        return current is None or current.is_terminal

    async def _fall_back(self, run: Run) -> None:
        self._polled.add(run.id)
        if not await self._finished(run.id):
            await self._fetch(run.id)

    async def _fetch(self, run_id: str) -> None:
        now = self.clock.now()
        await self.store.enqueue(NewJob(kind=JobKind.FETCH_RUN, ref=run_id, due_at=now, data={"cause": "stream"}), now)
        self.wake_dispatcher()
