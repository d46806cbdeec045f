"""The Reminix workflows sandbox: the same flow templates, run by the same engine, seen through Reminix's API.

An agent name is a template id. A ``callback`` state pauses the run (``paused``) with a ``pendingAction`` built
from the state (step = state id, ``action_type``, ``message``, ``options``, ``input_schema``, ``assignee``).
Statuses: running, paused, completed, failed. There is no push: clients poll ``GET /v1/workflow-runs/{id}``.
``synchronous`` (default, as the docs suggest) runs start and resume calls until the run pauses or ends;
otherwise they answer ``running`` and the sandbox scheduler advances the run every ``step_delay``.
``response_shape`` picks which of the two documented start/resume shapes is answered ("api" or "concepts").
A cancelled (DELETEd) run reads ``failed`` with the error "cancelled" (the real status after DELETE is unknown).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from gateway.core.config_types import ParseContext, Secret
from gateway.domain import errors
from gateway.domain.model import JSON
from gateway.sandbox import engine
from gateway.sandbox.bounded import Bounded
from gateway.sandbox.stats import Stats
from gateway.sandbox.template_emulator import Surroundings, TemplateEmulator
from gateway.sandbox.templates import CallbackState

SHAPES = ("api", "concepts")
_KEYS = {"enabled", "api_key_env", "project", "response_shape", "synchronous"}
_STATUS = {
    engine.FlowStatus.CREATED: "running",
    engine.FlowStatus.IN_PROGRESS: "running",
    engine.FlowStatus.PENDING: "paused",
    engine.FlowStatus.COMPLETE: "completed",
    engine.FlowStatus.ERROR: "failed",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class ReminixSandboxSettings:
    api_key: Secret = field(repr=False)
    project: str | None = None  # the X-Project a personal access token must name
    response_shape: str = "api"
    synchronous: bool = True


def parse_reminix(data: Mapping[str, Any], ctx: ParseContext) -> ReminixSandboxSettings | None:
    """The ``[sandbox.reminix]`` table; None when it is absent or not enabled."""
    key = "sandbox.reminix"
    ctx.unknown_keys(key, data, _KEYS)
    if not ctx.boolean(f"{key}.enabled", data.get("enabled"), default=bool(data)):
        return None
    api_key = ctx.secret(f"{key}.api_key_env", data.get("api_key_env")) or Secret("")
    project = ctx.string(f"{key}.project", data.get("project"), required=False)
    if api_key.reveal().startswith("reminix_pat_") and project is None:
        ctx.problem(f"{key}.project", "is required with a personal access token (reminix_pat_...)")
    shape = ctx.string(f"{key}.response_shape", data.get("response_shape"), default="api") or "api"
    if shape not in SHAPES:
        ctx.problem(f"{key}.response_shape", f"must be one of {', '.join(SHAPES)}")
    return ReminixSandboxSettings(
        api_key=api_key,
        project=project,
        response_shape=shape,
        synchronous=ctx.boolean(f"{key}.synchronous", data.get("synchronous"), default=True),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowRun:
    id: str
    agent: str
    input: JSON
    state: engine.RunState
    created_at: datetime
    updated_at: datetime
    steps: tuple[JSON, ...] = ()  # the states left behind, as Reminix steps
    cancelled: bool = False


class ReminixEmulator(TemplateEmulator[ReminixSandboxSettings]):
    def __init__(self, settings: ReminixSandboxSettings, surroundings: Surroundings) -> None:
        super().__init__(settings, surroundings)
        self.stats = Stats()
        self._runs: Bounded[str, WorkflowRun] = Bounded()
        self._by_key: Bounded[str, str] = Bounded()

    def authenticate(self, authorization: str | None, project: str | None) -> None:
        scheme, _, token = (authorization or "").partition(" ")
        if not token.strip():
            raise errors.AuthError("missing_api_key")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode(), self.settings.api_key.reveal().encode()
        ):
            raise errors.AuthError("invalid_api_key")
        if token.startswith("reminix_pat_") and project != self.settings.project:
            raise errors.Forbidden("insufficient_permissions")

    def start(self, agent: str, input: JSON, idempotency_key: str | None) -> JSON:
        template = self.templates.get(agent)
        if template is None:
            raise errors.NotFound("agent_not_found")
        if idempotency_key is not None and idempotency_key in self._by_key:
            self.stats.creates_by_idempotency_key[idempotency_key] += 1
            return self.answer(self._by_key[idempotency_key])
        state = input.get("state", {})
        if not isinstance(input.get("task"), str) or not isinstance(state, dict):
            raise errors.InvalidInput("missing_required_field")
        now = self._clock.now()
        run = WorkflowRun(
            id=f"wfr_{self._rng.getrandbits(96):024x}",
            agent=agent,
            input=input,
            state=engine.start(template, state),
            created_at=now,
            updated_at=now,
        )
        self._runs[run.id] = run
        self.stats.runs += 1
        if idempotency_key is not None:
            self._by_key[idempotency_key] = run.id
            self.stats.creates_by_idempotency_key[idempotency_key] += 1
        self._proceed(run.id)
        return self.answer(run.id)

    def resume(self, run_id: str, body: JSON) -> JSON:
        run = self._get(run_id)
        state = self.templates[run.agent].states[run.state.state_id]
        if run.cancelled or run.state.status is not engine.FlowStatus.PENDING or not isinstance(state, CallbackState):
            raise errors.BadRequest("invalid_request")
        value = _resume_value(body, state)
        if state.options is not None and value not in state.options:
            raise errors.InvalidInput("invalid_field_value")
        try:
            resumed = engine.resume(self.templates[run.agent], run.state, value)
        except errors.InvalidInput:
            raise errors.InvalidInput("invalid_field_value") from None
        self._save(run, resumed)
        self.stats.updates_by_run[run.id] += 1
        self._proceed(run.id)
        return self.answer(run.id)

    def cancel(self, run_id: str) -> None:
        run = self._get(run_id)
        if run.state.status in (engine.FlowStatus.COMPLETE, engine.FlowStatus.ERROR) or run.cancelled:
            raise errors.BadRequest("invalid_request")
        self._runs[run_id] = replace(run, cancelled=True, updated_at=self._clock.now())

    def answer(self, run_id: str) -> JSON:
        """A start/resume answer in the configured shape."""
        run = self._get(run_id)
        status, state, action = self._view(run)
        if self.settings.response_shape == "concepts":
            output = {"status": status, "steps": state["steps"], "result": state["result"], "pendingAction": action}
            return {"output": output, "run_id": run.id}
        shaped: JSON = {"run_id": run.id, "status": status, "state": state}
        if action is not None:
            shaped["pendingAction"] = action
        shaped["execution"] = {"id": f"exe_{run.id[4:16]}", "type": "agent_invoke", "status": "success"}
        return shaped

    def record(self, run_id: str) -> JSON:
        """The GET record (camelCase, ``id``)."""
        run = self._get(run_id)
        status, state, action = self._view(run)
        return {
            "id": run.id,
            "projectId": self.settings.project or "proj_sandbox",
            "agentName": run.agent,
            "identity": None,
            "status": status,
            "input": run.input,
            "state": state,
            "pendingAction": action,
            "context": {},
            "createdAt": _time(run.created_at),
            "updatedAt": _time(run.updated_at),
        }

    def _view(self, run: WorkflowRun) -> tuple[str, JSON, JSON | None]:
        template = self.templates[run.agent]
        flow = run.state
        status = "failed" if run.cancelled else _STATUS[flow.status]
        steps = [*run.steps, {"name": flow.state_id, "status": _step_status(status)}]
        state: JSON = {"steps": steps, "result": engine.output(template, flow) if status == "completed" else None}
        if status == "failed":
            state["error"] = "cancelled" if run.cancelled else "a step failed"
        callback = template.states[flow.state_id]
        action = _action(callback) if status == "paused" and isinstance(callback, CallbackState) else None
        return status, state, action

    def _proceed(self, run_id: str) -> None:
        if self.settings.synchronous:
            while self._advance(run_id):
                pass
        else:
            self._schedule(self._step, run_id)

    async def _step(self, run_id: str) -> None:
        if self._advance(run_id):
            self._schedule(self._step, run_id)

    def _advance(self, run_id: str) -> bool:
        """One engine step; True while the run keeps running."""
        run = self._runs[run_id]
        if run.cancelled:
            return False
        state = engine.advance(self.templates[run.agent], run.state)
        if state == run.state:
            return False
        self._save(run, state)
        return state.status is engine.FlowStatus.IN_PROGRESS

    def _save(self, run: WorkflowRun, state: engine.RunState) -> None:
        steps = run.steps
        if state.state_id != run.state.state_id and run.state.status is not engine.FlowStatus.CREATED:
            steps = (*steps, {"name": run.state.state_id, "status": "completed"})
        self._runs[run.id] = replace(run, state=state, steps=steps, updated_at=self._clock.now())

    def _get(self, run_id: str) -> WorkflowRun:
        run = self._runs.get(run_id)
        if run is None:
            raise errors.NotFound("not_found")
        return run


def _resume_value(body: JSON, state: CallbackState) -> Any:
    """The step's input from either documented body: ``{"input": {"resume": {"step", "input"}}}`` or
    ``{"input": {...}}`` (where a pause with options reads the choice from ``input.decision``)."""
    given = body.get("input")
    if not isinstance(given, dict):
        raise errors.InvalidInput("missing_required_field")
    resume = given.get("resume")
    if isinstance(resume, dict):
        if resume.get("step") != state.id:
            raise errors.InvalidInput("invalid_field_value")
        if "input" not in resume:
            raise errors.InvalidInput("missing_required_field")
        return resume["input"]
    if state.options is not None:
        return given.get("decision")
    return given


def _action(state: CallbackState) -> JSON:
    action: JSON = {
        "step": state.id,
        "type": state.action_type,
        "message": state.message or f"Input needed at step {state.id}",
    }
    if state.options is not None:
        action["options"] = list(state.options)
    if state.input_schema is not None:
        action["inputSchema"] = dict(state.input_schema)
    if state.assignee is not None:
        action["assignee"] = state.assignee
    return action


def _step_status(status: str) -> str:
    return {"running": "pending", "paused": "paused", "completed": "completed", "failed": "failed"}[status]


def _time(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")
