"""Live pages: one Server-Sent Events stream per open desk page, fed by one store watcher per process.

The watcher reads the tails of the audit trail (every claim, release, decision, SLA step) and of the run
timeline once a second while at least one page listens, and tells each stream the ids that changed; the page
then fetches itself and swaps the changed parts in. Reading the store (not in-process signals) means a change
made by another replica shows too. Events carry ids only, never payloads. A page without the stream (no
script, a proxy that buffers) falls back to refreshing itself on a timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from starlette.responses import Response, StreamingResponse

from gateway.store.db import Database
from gateway.web.ui import Ctx, cookie_name

log = logging.getLogger("gateway.desk")
POLL_SECONDS = 1.0
HEARTBEAT_SECONDS = 15.0
RETRY_MS = 3000
_QUIET_ACTIONS = frozenset({"viewed_payload"})  # reading changes nothing on the page
_BATCH = 500
_FROM = re.compile(r"([0-9]{1,18})\.([0-9]{1,18})")  # "<audit seq>.<run transition id>"


@dataclass(frozen=True, slots=True)
class Change:
    reviews: tuple[str, ...] = ()
    runs: tuple[str, ...] = ()

    def message(self) -> str:
        data = json.dumps({"reviews": list(self.reviews), "runs": list(self.runs)})
        return f"event: change\ndata: {data}\n\n"


@dataclass(slots=True)
class ChangeFeed:
    db: Database
    poll_seconds: float = POLL_SECONDS
    listeners: set[asyncio.Queue[Change | None]] = field(default_factory=set)
    task: asyncio.Task[None] | None = None
    closed: bool = False

    @contextlib.asynccontextmanager
    async def listen(self) -> AsyncIterator[asyncio.Queue[Change | None]]:
        queue: asyncio.Queue[Change | None] = asyncio.Queue(maxsize=100)
        if self.closed:
            queue.put_nowait(None)
        self.listeners.add(queue)
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._watch())
        try:
            yield queue
        finally:
            self.listeners.discard(queue)

    def close(self) -> None:
        """End every stream (the server is shutting down)."""
        self.closed = True
        if self.task is not None:
            self.task.cancel()
        self._end_streams()

    def _end_streams(self) -> None:
        for queue in list(self.listeners):
            _offer(queue, None)

    async def _watch(self) -> None:
        try:
            seq, step = await self.ends()
            while self.listeners and not self.closed:
                await asyncio.sleep(self.poll_seconds)
                seq, step, change = await self.since(seq, step)
                if change.reviews or change.runs:
                    for queue in list(self.listeners):
                        _offer(queue, change)
        except Exception as exc:  # the store failed: end the streams, the pages reconnect and start a new watch
            log.warning("live feed stopped", extra={"error": type(exc).__name__})
            self._end_streams()

    async def ends(self) -> tuple[int, int]:
        """Where the audit trail and the run timeline end now."""
        async with self.db.read() as tx:
            audit = await tx.fetchone("SELECT COALESCE(MAX(seq), 0) AS n FROM audit_log")
            steps = await tx.fetchone("SELECT COALESCE(MAX(id), 0) AS n FROM run_transitions")
        return (audit["n"] if audit else 0), (steps["n"] if steps else 0)

    async def since(self, seq: int, step: int) -> tuple[int, int, Change]:
        """What changed after those ends, and the new ends."""
        async with self.db.read() as tx:
            records = await tx.fetchall(
                "SELECT seq, action, object FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?", (seq, _BATCH)
            )
            steps = await tx.fetchall(
                "SELECT id, run_id FROM run_transitions WHERE id > ? ORDER BY id LIMIT ?", (step, _BATCH)
            )
        reviews = {
            row["object"].removeprefix("review:")
            for row in records
            if row["object"].startswith("review:") and row["action"] not in _QUIET_ACTIONS
        }
        runs = {row["run_id"] for row in steps}
        seq = records[-1]["seq"] if records else seq
        step = steps[-1]["id"] if steps else step
        return seq, step, Change(reviews=tuple(sorted(reviews)), runs=tuple(sorted(runs)))


def _offer(queue: asyncio.Queue[Change | None], change: Change | None) -> None:
    """A page that does not keep up loses changes, not the server's memory: it refetches on the next one."""
    with contextlib.suppress(asyncio.QueueFull):
        queue.put_nowait(change)


def feed(ctx: Ctx) -> ChangeFeed:
    state = ctx.request.app.state
    found = getattr(state, "live", None)
    if not isinstance(found, ChangeFeed):
        found = state.live = ChangeFeed(ctx.services.store.db)
    return found


async def position(ctx: Ctx) -> str:
    """Where the change tails end now. A live page reads this before its data and hands it to its stream
    (``/ui/live?from=``), which first reports what changed since: nothing falls between the page and the stream."""
    seq, step = await feed(ctx).ends()
    return f"{seq}.{step}"


async def stream(ctx: Ctx) -> Response:
    """GET /ui/live: the change stream of one page. It ends when the login does or the server stops."""
    changes = feed(ctx)
    secret = ctx.request.cookies.get(cookie_name(ctx.services), "")
    start = _FROM.fullmatch(ctx.request.query_params.get("from", ""))

    async def events() -> AsyncIterator[str]:
        async with changes.listen() as queue:
            yield f"retry: {RETRY_MS}\nevent: hello\ndata: {{}}\n\n"
            if start is not None:
                missed = (await changes.since(int(start.group(1)), int(start.group(2))))[2]
                if missed.reviews or missed.runs:
                    yield missed.message()
            while True:
                try:
                    change = await asyncio.wait_for(queue.get(), timeout=HEARTBEAT_SECONDS)
                except TimeoutError:
                    if not await ctx.parts.gatekeeper.session_alive(secret):
                        return
                    yield ": still here\n\n"
                    continue
                if change is None:
                    return
                yield change.message()

    headers = {"X-Accel-Buffering": "no"}  # nginx: pass events on as they come
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)
