"""The inference.sh emulator: flow runs over the sandbox templates, numeric statuses, cancel, a per-key rate
limit with ``X-RateLimit-*`` headers, and change signals the SSE stream waits on.

A flow id is a template id. Statuses: 1 pending (created), 2 running, 3 completed, 4 failed, 5 cancelled.
A template that pauses at a callback state stays running (2): flow runs take no input after they start.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hmac
from dataclasses import dataclass, replace
from datetime import datetime

from gateway.domain import errors
from gateway.domain.model import JSON
from gateway.sandbox import engine
from gateway.sandbox.bounded import Bounded
from gateway.sandbox.more_config import InferenceShSandbox
from gateway.sandbox.template_emulator import Surroundings, TemplateEmulator

CANCELLED = 5
FINISHED = frozenset({3, 4, CANCELLED})
_CODES = {
    engine.FlowStatus.CREATED: 1,
    engine.FlowStatus.IN_PROGRESS: 2,
    engine.FlowStatus.PENDING: 2,
    engine.FlowStatus.COMPLETE: 3,
    engine.FlowStatus.ERROR: 4,
}
WINDOW = 60.0


@dataclass(frozen=True, slots=True, kw_only=True)
class InfRun:
    id: str
    flow: str
    state: engine.RunState
    input: JSON
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    cancelled_at: datetime | None = None
    version: int = 0


@dataclass(slots=True, kw_only=True)
class _Window:
    start: datetime
    used: int = 0


@dataclass(slots=True, kw_only=True)
class InfStats:
    runs: int = 0
    cancels: int = 0
    streams: int = 0
    rate_limited: int = 0

    def as_dict(self) -> JSON:
        return dataclasses.asdict(self)


class InfEmulator(TemplateEmulator[InferenceShSandbox]):
    def __init__(self, settings: InferenceShSandbox, surroundings: Surroundings) -> None:
        super().__init__(settings, surroundings)
        self.stats = InfStats()
        self._runs: Bounded[str, InfRun] = Bounded()
        self._changed: Bounded[str, asyncio.Event] = Bounded()
        self._window: _Window | None = None

    def authenticate(self, authorization: str | None) -> None:
        scheme, _, token = (authorization or "").partition(" ")
        expected = self.settings.api_key.reveal().encode()
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected):
            raise errors.AuthError("invalid API key")

    def spend(self) -> dict[str, str]:
        """Count one request against the key's window; the rate-limit headers to send. Raises RateLimited."""
        limit = self.settings.rate_limit
        if not limit:
            return {}
        now = self._clock.now()
        if self._window is None or (now - self._window.start).total_seconds() >= WINDOW:
            self._window = _Window(start=now)
        window = self._window
        reset = window.start.timestamp() + WINDOW
        if window.used >= limit:
            self.stats.rate_limited += 1
            raise errors.RateLimited("rate limit exceeded", retry_after=max(1.0, reset - now.timestamp()))
        window.used += 1
        return {"X-RateLimit-Remaining": str(limit - window.used), "X-RateLimit-Reset": str(int(reset))}

    def create(self, flow: str, input: JSON) -> JSON:
        template = self.templates.get(flow)
        if template is None:
            raise errors.NotFound(f"flow {flow} not found")
        now = self._clock.now()
        run = InfRun(
            id=f"flowrun_{self._rng.getrandbits(64):016x}",
            flow=flow,
            state=engine.start(template, input),
            input=dict(input),
            created_at=now,
            updated_at=now,
        )
        self._runs[run.id] = run
        self.stats.runs += 1
        self._schedule_step(run.id)
        return self.flow_run(run.id)

    def cancel(self, run_id: str) -> None:
        run = self._get(run_id)
        if _code(run) in FINISHED:
            raise errors.Conflict("the flow run is not running")
        now = self._clock.now()
        self._save(replace(run, cancelled_at=now, finished_at=now, updated_at=now))
        self.stats.cancels += 1

    def flow_run(self, run_id: str) -> JSON:
        run = self._get(run_id)
        code = _code(run)
        body: JSON = {
            "id": run.id,
            "short_id": run.id[-8:],
            "created_at": _iso(run.created_at),
            "updated_at": _iso(run.updated_at),
            "user_id": "user_sandbox",
            "team_id": "team_sandbox",
            "visibility": "private",
            "flow_id": run.flow,
            "flow_version_id": f"{run.flow}@1",
            "task_id": f"task_{run.id[-16:]}",
            "status": code,
            "input": run.input,
            "fail_on_error": True,
            "output": engine.output(self.templates[run.flow], run.state) if code == 3 else None,
            "node_tasks": {},
        }
        for name, when in (
            ("flow_run_started", run.started_at),
            ("flow_run_finished", run.finished_at),
            ("flow_run_cancelled", run.cancelled_at),
        ):
            if when is not None:
                body[name] = _iso(when)
        if code == 4:
            body["error"] = "; ".join(f"{e['error']} at {e['state']}" for e in run.state.errors)
        return body

    def version(self, run_id: str) -> int:
        return self._get(run_id).version

    async def wait_change(self, run_id: str, version: int, timeout: float) -> bool:
        """Wait until the run's version moves past ``version``; False after ``timeout`` seconds."""
        if self._get(run_id).version != version:
            return True
        event = self._changed.setdefault(run_id, asyncio.Event())
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def _get(self, run_id: str) -> InfRun:
        run = self._runs.get(run_id)
        if run is None:
            raise errors.NotFound(f"flow run {run_id} not found")
        return run

    def _save(self, run: InfRun) -> None:
        self._runs[run.id] = replace(run, version=run.version + 1)
        event = self._changed.pop(run.id, None)
        if event is not None:
            event.set()

    def _schedule_step(self, run_id: str) -> None:
        self._schedule(self._step, run_id)

    async def _step(self, run_id: str) -> None:
        run = self._runs[run_id]
        if run.cancelled_at is not None:
            return
        state = engine.advance(self.templates[run.flow], run.state)
        if state == run.state:
            return
        now = self._clock.now()
        finished = state.status in {engine.FlowStatus.COMPLETE, engine.FlowStatus.ERROR}
        self._save(
            replace(
                run,
                state=state,
                updated_at=now,
                started_at=run.started_at or now,
                finished_at=now if finished else None,
            )
        )
        if state.status is engine.FlowStatus.IN_PROGRESS:
            self._schedule_step(run_id)


def _code(run: InfRun) -> int:
    return CANCELLED if run.cancelled_at is not None else _CODES[run.state.status]


def _iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")
